import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NetworkTransport, type NetworkTransportOptions } from './network-transport.js';
import type { LiveNode, Registry } from './registry.js';
import { encodeFrame } from '../core/wire.js';
import { unbindFrame } from '../core/identity.js';

/** A transport to one node whose connection keeps what it was sent (the reply is handed to its waiter by hand). */
function oneNode(): { transport: NetworkTransport; node: LiveNode; sent: Uint8Array[] } {
  const sent: Uint8Array[] = [];
  const node = {
    id: 1,
    waiter: null,
    seenNonces: new Set<string>(),
    configuredRun: 1,
    connection: { sendFrame: (frame: Uint8Array) => void sent.push(frame) },
  } as unknown as LiveNode;
  const registry = { get: (id: number) => (id === 1 ? node : undefined) } as unknown as Registry;
  const options = { registry, runId: 1, timeoutMs: 10_000, allowUnbound: false, configure: async () => {} };
  return { transport: new NetworkTransport(options as unknown as NetworkTransportOptions), node, sent };
}

test('a signed reply whose header round is an object without toString is refused with a clear error, not a throw', async () => {
  const { transport, node, sent } = oneNode();
  const reply = transport.request(1, encodeFrame('train', { round: 3, node: 1 }));
  await new Promise((r) => setImmediate(r));
  const { binding } = unbindFrame(sent[0]);
  const hostile = encodeFrame('train_result', { round: { toString: false }, node: 1 });
  assert.equal(node.waiter!.accept(hostile, binding), true, 'the reply answers the pending request');
  await assert.rejects(reply, /reply is for round \{"toString":false\}, the request was round 3/);
  assert.equal(node.waiter, null);
});
