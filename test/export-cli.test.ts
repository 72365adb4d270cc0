// `edgefed export --format onnx` as a user runs it: a model saved by EdgeFed (tfjs format) becomes an ONNX
// file that onnxruntime-node runs with the engine's predictions; bad flags fail with a clear message.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './helpers.js';
import { builtinModel, initialWeights, tensorSpecs } from '../src/model/spec.js';
import { saveTfjsModel } from '../src/model/tfjs.js';
import { SeqNet } from '../src/nn/seqnet.js';
import { jsKernels } from '../src/nn/kernels-js.js';
import { Rng } from '../src/core/rng.js';

const ort = createRequire(import.meta.url)('onnxruntime-node') as typeof import('onnxruntime-node');
const dir = mkdtempSync(join(tmpdir(), 'edgefed-export-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test("edgefed export --format onnx: a saved GRU forecaster runs in onnxruntime-node with the engine's outputs", async () => {
  const spec = builtinModel('gru', [24, 4], 0);
  const rng = new Rng(3);
  const w = initialWeights(tensorSpecs(spec), rng);
  await saveTfjsModel(spec, w, join(dir, 'model'));
  const out = join(dir, 'gru.onnx');
  const r = await runCli(['export', '--model', join(dir, 'model'), '--format', 'onnx', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout,
    /wrote .*gru\.onnx \(\d+ bytes, ONNX opset 17; input 'input' \[batch, 24, 4\], output 'output'\)/,
  );
  const x = Float32Array.from({ length: 50 * 96 }, () => rng.uniform(-2, 2));
  const session = await ort.InferenceSession.create(readFileSync(out));
  try {
    const res = await session.run({ input: new ort.Tensor('float32', x, [50, 24, 4]) });
    const ours = new SeqNet(spec, jsKernels).predict(w, x, 50);
    const theirs = res.output.data as Float32Array;
    assert.equal(theirs.length, 50);
    for (let i = 0; i < 50; i++)
      assert.ok(Math.abs(ours[i] - theirs[i]) <= 1e-5, `sample ${i}: ${ours[i]} vs ${theirs[i]}`);
  } finally {
    await session.release();
  }
  const int8 = join(dir, 'gru-int8.onnx');
  const q = await runCli(['export', '--model', join(dir, 'model'), '--int8', '--out', int8]);
  assert.equal(q.code, 0, q.stderr);
  assert.match(q.stdout, /int8 weights \(QDQ\)/);
  assert.ok(readFileSync(int8).length < 0.5 * readFileSync(out).length, 'int8 weights shrink the file');
  const qs = await ort.InferenceSession.create(readFileSync(int8));
  await qs.release();
});

test('edgefed export refuses an unknown format and a missing model, writing nothing', async () => {
  const out = join(dir, 'never.onnx');
  const bad = await runCli(['export', '--model', join(dir, 'model'), '--format', 'tflite', '--out', out]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /--format: 'tflite' is not one of onnx/);
  const missing = await runCli(['export', '--model', join(dir, 'nowhere'), '--out', out]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /nowhere\/model\.json: not a readable tfjs model\.json/);
  assert.ok(!existsSync(out));
});
