import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeFrame, encodeFrame, readableFrame } from './wire.ts';

const weights = Float32Array.from({ length: 10 }, (_, i) => i / 3);
const frame = encodeFrame('train_result', { round: 1 }, [
  { name: 'w', dtype: 'float32', shape: [2, 4], data: weights.subarray(0, 8) },
  { name: 'b', dtype: 'float32', shape: [2], data: weights.subarray(8) },
]);

/** The frame at `offset` bytes into a larger buffer, as a received signed frame sits behind its binding. */
function within(offset: number): Uint8Array {
  const buffer = new Uint8Array(offset + frame.length);
  buffer.set(frame, offset);
  return buffer.subarray(offset);
}

test('an owned, aligned frame is read in place: its tensors are views into it', () => {
  const bytes = within(72);
  const readable = readableFrame(bytes, true);
  assert.equal(readable, bytes);
  const { tensors } = decodeFrame(readable);
  for (const t of tensors) assert.equal(t.data.buffer, bytes.buffer);
  assert.deepEqual([...tensors[0].data, ...tensors[1].data], [...weights]);
});

test('a misaligned or shared frame is copied once, aligned, and its tensors are views into the copy', () => {
  for (const [offset, owned] of [
    [73, true],
    [75, true],
    [72, false],
    [1, false],
  ] as const) {
    const bytes = within(offset);
    const readable = readableFrame(bytes, owned);
    assert.notEqual(readable.buffer, bytes.buffer, `offset ${offset} owned ${owned}: a copy`);
    assert.deepEqual(Buffer.from(readable), Buffer.from(frame));
    const { tensors } = decodeFrame(readable);
    for (const t of tensors) assert.equal(t.data.buffer, readable.buffer);
    assert.deepEqual([...tensors[0].data, ...tensors[1].data], [...weights]);
    bytes.fill(0); // the socket's buffer reused: the readable frame does not change
    assert.deepEqual([...decodeFrame(readable).tensors[1].data], [...weights.subarray(8)]);
  }
});
