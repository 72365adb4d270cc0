// Why a node's connection ended, as the coordinator counts it (edgefed_node_disconnects_total{cause}) and as
// the node reads it (the close code): a silent node is closed for its missing heartbeats, a node that leaves
// is counted as leaving, a frame before the hello is refused by name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { WebSocket } from 'ws';
import { startCoordinator, type Coordinator } from '../src/coordinator/server.js';
import { CLOSE, makeHello } from '../src/net/node-protocol.js';
import { disconnectLabel } from '../src/coordinator/disconnects.js';

async function coordinator(): Promise<Coordinator> {
  return startCoordinator({
    port: 0,
    db: ':memory:',
    auth: false,
    heartbeatMs: 200,
    logger: pino({ level: 'silent' }),
  });
}

/** Opens a node connection; `hello` says whether to answer the challenge. Resolves once welcomed or closed. */
function node(url: string, name: string, hello: boolean) {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/v1/ws`);
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  const welcomed = new Promise<void>((resolve) =>
    ws.on('message', (data, binary) => {
      if (binary) return;
      const msg = JSON.parse(String(data)) as { type: string; challenge?: string };
      if (msg.type === 'challenge' && hello)
        ws.send(JSON.stringify(makeHello(msg.challenge!, { name, resources: {}, tags: {} })));
      if (msg.type === 'challenge' && !hello) ws.send(new Uint8Array([1, 2, 3]));
      if (msg.type === 'welcome') resolve();
    }),
  );
  return { ws, closed, welcomed };
}

async function causes(c: Coordinator): Promise<Record<string, number>> {
  const text = (await c.metrics.text()).body;
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^edgefed_node_disconnects_total\{cause="([^"]+)"\} (\d+)/gm)) out[m[1]] = Number(m[2]);
  return out;
}

test('a node that stops heartbeating is closed with the heartbeat-timeout code and counted by cause', async () => {
  const c = await coordinator();
  try {
    const silent = node(c.url, 'silent', true);
    await silent.welcomed;
    const { code, reason } = await silent.closed;
    assert.equal(code, CLOSE.heartbeatTimeout);
    assert.match(reason, /no heartbeat/);
    const leaving = node(c.url, 'leaving', true);
    await leaving.welcomed;
    leaving.ws.close(1000, 'bye');
    await leaving.closed;
    const early = node(c.url, 'early', false);
    assert.equal((await early.closed).code, CLOSE.helloFirst);
    // The close event reaches the session after the peer's; wait for the counts rather than for time.
    let seen: Record<string, number> = {};
    for (let i = 0; i < 100 && Object.keys(seen).length < 3; i++) {
      seen = await causes(c);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(seen, { heartbeat_timeout: 1, node_closed: 1, hello_first: 1 });
  } finally {
    await c.close();
  }
});

test('close causes map to fixed labels, never to what the node sent', () => {
  assert.equal(disconnectLabel({ by: 'coordinator', code: CLOSE.noHello, reason: 'no hello' }), 'hello_timeout');
  assert.equal(disconnectLabel({ by: 'coordinator', code: 0, reason: 'terminated' }), 'terminated');
  assert.equal(disconnectLabel({ by: 'coordinator', code: 4999, reason: 'x' }), 'coordinator_other');
  assert.equal(disconnectLabel({ by: 'node', code: 1006, reason: '' }), 'connection_lost');
  assert.equal(disconnectLabel({ by: 'node', code: 4321, reason: 'label="injected"' }), 'node_closed_other');
  assert.equal(
    disconnectLabel({ by: 'socket_error', code: 0, reason: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' }),
    'socket_error_max_payload',
  );
  assert.equal(disconnectLabel({ by: 'socket_error', code: 0, reason: 'anything else' }), 'socket_error');
  assert.equal(disconnectLabel(undefined), 'unknown');
});
