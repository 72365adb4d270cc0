import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket } from 'ws';
import { WebSocketNodeEndpoint } from './ws-node-connection.ts';
import type { NodeConnection } from './node-connection.ts';
import { Reassembler } from '../core/chunks.ts';
import { concatBytes } from '../core/concat.ts';

/** A real endpoint on a loopback port and one real client: the coordinator's side of the connection and its inbox. */
async function connected(): Promise<{ conn: NodeConnection; next: () => Promise<Buffer>; close: () => void }> {
  let conn: NodeConnection | null = null;
  const endpoint = new WebSocketNodeEndpoint(1 << 20, (c) => {
    conn = c;
    return { control: () => {}, frame: () => {}, invalid: () => {}, closed: () => {} };
  });
  const server = createServer();
  server.on('upgrade', (req, socket, head) => endpoint.handleUpgrade(req, socket, head));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const ws = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/v1/ws`);
  const inbox: Buffer[] = [];
  const waiting: ((b: Buffer) => void)[] = [];
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    assert.equal(isBinary, true);
    const w = waiting.shift();
    if (w) w(data);
    else inbox.push(data);
  });
  await new Promise((resolve) => ws.on('open', resolve));
  while (!conn) await new Promise((r) => setImmediate(r));
  return {
    conn,
    next: () => (inbox.length ? Promise.resolve(inbox.shift()!) : new Promise((resolve) => waiting.push(resolve))),
    close: () => {
      ws.terminate();
      endpoint.close();
      server.close();
    },
  };
}

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) % 251);

test('a frame sent in parts arrives as one message, the bytes sendFrame sends for the joined frame', async () => {
  const { conn, next, close } = await connected();
  try {
    const parts = [bytes(413, 1), bytes(31_400, 2), bytes(0, 3), bytes(5, 4)];
    for (let round = 0; round < 3; round++) {
      conn.sendFrameParts(parts.slice(0, 2 + round));
      conn.sendFrame(concatBytes(parts.slice(0, 2 + round)));
      const [split, whole] = [await next(), await next()];
      assert.ok(split.equals(whole), `round ${round}: ${split.length} vs ${whole.length} bytes`);
      assert.ok(split.equals(Buffer.from(concatBytes(parts.slice(0, 2 + round)))));
    }
  } finally {
    close();
  }
});

test('a frame in parts longer than one chunk is joined and chunked, and reassembles to the same bytes', async () => {
  process.env.EDGEFED_CHUNK_BYTES = '1000';
  const { conn, next, close } = await connected();
  delete process.env.EDGEFED_CHUNK_BYTES;
  try {
    const parts = [bytes(300, 5), bytes(2500, 6)];
    conn.sendFrameParts(parts);
    const reassembler = new Reassembler(1 << 20);
    let frame: Uint8Array | null = null;
    let messages = 0;
    while (!frame) {
      frame = reassembler.push(new Uint8Array(await next()));
      messages++;
    }
    assert.equal(messages, 3, 'three chunks of at most 1,000 bytes');
    assert.ok(Buffer.from(frame).equals(Buffer.from(concatBytes(parts))));
  } finally {
    close();
  }
});
