import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeLayout } from '../core/params.ts';
import { Rng } from '../core/rng.ts';
import { encodeFrame, FrameError, type WireTensor } from '../core/wire.ts';
import { compressVector, decompressVector, parseCompression, type CompressionSpec } from '../core/compress-update.ts';
import { compressedToTensors } from './compressed-tensors.ts';
import { decodeMessage, encodeCompressedTrainReply, encodeTrainReply } from './messages.ts';

const layout = makeLayout([
  { name: 'dense/kernel', shape: [40, 5] },
  { name: 'dense/bias', shape: [5] },
]);
const rng = new Rng(11);
const x = Float32Array.from({ length: 205 }, () => rng.normal());
const head = { round: 3, nodeId: 2, numExamples: 50, steps: 4, metrics: { loss: 0.5, accuracy: 0.8 } };

function frameWith(spec: unknown, tensors: WireTensor[]): Uint8Array {
  return encodeFrame(
    'train_result',
    { round: 3, node: 2, numExamples: 50, steps: 4, metrics: { loss: 0.5, accuracy: 0.8 }, compression: spec },
    tensors,
  );
}

function expectCode(frame: Uint8Array, code: string, re: RegExp): void {
  assert.throws(
    () => decodeMessage(layout, frame),
    (e: unknown) => e instanceof FrameError && e.code === code && re.test(e.message),
    `${code} ${re}`,
  );
}

test('compressed train replies round-trip through the frame for every kind, and are smaller than float32', () => {
  const plain = encodeTrainReply(layout, { ...head, vector: x }).length;
  for (const text of ['fp16', 'int8', 'int8-block:16', 'topk:0.05']) {
    const spec = parseCompression(text);
    const parts = compressVector(spec, layout, x, new Rng(1));
    const frame = encodeCompressedTrainReply(layout, head, spec, parts);
    const msg = decodeMessage(layout, frame);
    assert.equal(msg.type, 'train_result');
    if (msg.type !== 'train_result') return;
    assert.deepEqual(msg.reply.compression, spec);
    assert.deepEqual(msg.reply.vector, decompressVector(spec, layout, parts));
    assert.equal(msg.reply.numExamples, 50);
    assert.ok(frame.length < plain, `${text}: ${frame.length} bytes, float32 ${plain}`);
  }
  const msg = decodeMessage(layout, encodeTrainReply(layout, { ...head, vector: x }));
  assert.ok(msg.type === 'train_result' && msg.reply.compression === undefined);
});

test('compressed frames that do not match the layout or the spec are refused with a FrameError', () => {
  const tensorsOf = (spec: CompressionSpec) => compressedToTensors(layout, compressVector(spec, layout, x, new Rng(1)));
  const int8 = parseCompression('int8-block:16');
  const topk = parseCompression('topk:0.05');
  const fp16 = parseCompression('fp16');
  expectCode(frameWith({ ...int8, kind: 'zip' }, tensorsOf(int8)), 'bad_field', /kind must be/);
  expectCode(frameWith('int8', tensorsOf(int8)), 'bad_field', /not an object/);
  expectCode(frameWith(parseCompression('none'), tensorsOf(int8)), 'bad_field', /none has no compressed tensors/);
  expectCode(frameWith(int8, tensorsOf(int8).slice(0, 3)), 'bad_tensors', /dense\/bias#scales is missing/);
  expectCode(
    frameWith(int8, [...tensorsOf(int8), { name: 'extra', dtype: 'float32', shape: [1], data: new Float32Array(1) }]),
    'bad_tensors',
    /expected 4 compressed tensors, got 5/,
  );
  expectCode(frameWith(int8, tensorsOf(int8).reverse()), 'bad_tensors', /expected 'dense\/kernel'/);
  expectCode(frameWith(fp16, tensorsOf(int8)), 'bad_tensors', /is int8, expected float16/);
  expectCode(
    frameWith(
      int8,
      tensorsOf(int8).map((t, i) => (i === 0 ? { ...t, shape: [200] } : t)),
    ),
    'bad_tensors',
    /shape \[200\], expected \[40,5\]/,
  );
  expectCode(frameWith(parseCompression('int8-block:8'), tensorsOf(int8)), 'bad_tensors', /scales, expected 25/);
  const ts = tensorsOf(topk);
  (ts[0].data as Int32Array)[9] = 200;
  expectCode(frameWith(topk, ts), 'bad_tensors', /index 200 is outside \[0, 200\)/);
  const sorted = tensorsOf(topk);
  (sorted[0].data as Int32Array)[1] = (sorted[0].data as Int32Array)[0];
  expectCode(frameWith(topk, sorted), 'bad_tensors', /ascending and unique/);
  const scales = tensorsOf(int8);
  (scales[1].data as Float32Array)[0] = Infinity;
  expectCode(frameWith(int8, scales), 'bad_tensors', /scales must be finite/);
  // A plain float32 layout under a compression header is refused too.
  expectCode(
    frameWith(fp16, [
      { name: 'dense/kernel', dtype: 'float32', shape: [40, 5], data: x.slice(0, 200) },
      { name: 'dense/bias', dtype: 'float32', shape: [5], data: x.slice(200) },
    ]),
    'bad_tensors',
    /is float32, expected float16/,
  );
});
