import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fc from 'fast-check';
// Before 'ws', as the coordinator imports it.
import { unmaskInPlace, wsMasking, xorMask } from './ws-mask.js';
import { WebSocket, WebSocketServer } from 'ws';

/** ws's own byte-wise loop, the reference. */
function naiveMask(source: Uint8Array, mask: Uint8Array, output: Uint8Array, offset: number, length: number) {
  for (let i = 0; i < length; i++) output[offset + i] = source[i] ^ mask[i & 3];
}

test('xorMask gives the byte-wise loop bytes at every length, alignment and output offset', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 0, maxLength: 300 }),
      fc.uint8Array({ minLength: 4, maxLength: 4 }),
      fc.nat(7),
      fc.nat(7),
      fc.nat(14),
      (data, mask, srcShift, outShift, offset) => {
        const src = new Uint8Array(data.length + srcShift);
        src.set(data, srcShift);
        const source = src.subarray(srcShift);
        const mine = new Uint8Array(outShift + offset + data.length + 3).subarray(outShift);
        const ref = new Uint8Array(mine.length);
        xorMask(source, mask, mine, offset, data.length);
        naiveMask(source, mask, ref, offset, data.length);
        assert.deepEqual(mine, ref);
        assert.deepEqual(source, data, 'the source is left as it was');
      },
    ),
  );
});

test('unmaskInPlace undoes a mask in place, from any byte offset', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 200 }),
      fc.uint8Array({ minLength: 4, maxLength: 4 }),
      fc.nat(5),
      (d, m, s) => {
        const buffer = new Uint8Array(d.length + s).subarray(s);
        naiveMask(d, m, buffer, 0, d.length);
        unmaskInPlace(buffer, m);
        assert.deepEqual(buffer, d);
      },
    ),
  );
});

test('ws uses it where Node has no masking of its own, and a 31 KB message crosses intact both ways', async () => {
  const hooks = http as unknown as { websocketUnmask?: unknown };
  assert.equal(wsMasking, hooks.websocketUnmask === unmaskInPlace ? 'word-wise' : 'node');
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((r) => wss.once('listening', r));
  wss.on('connection', (ws) => ws.on('message', (data: Buffer) => ws.send(data)));
  const payload = Uint8Array.from({ length: 31_001 }, (_, i) => (i * 7919) % 256);
  const ws = new WebSocket(`ws://127.0.0.1:${(wss.address() as { port: number }).port}`);
  try {
    await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
    const echoed = new Promise<Buffer>((r) => ws.once('message', (d: Buffer) => r(d)));
    ws.send(payload);
    assert.deepEqual(new Uint8Array(await echoed), payload);
  } finally {
    ws.terminate();
    await new Promise((r) => wss.close(r));
  }
});
