// int8 models (`edgefed quantize`) exported as QDQ ONNX and run by onnxruntime-node: the seed MLP and the
// McMahan CNN, trained briefly on MNIST and quantised with calibration, predict the classes the int8
// network (core/int8-net.ts) predicts on 1,000 test images, with the figures printed; the file's weights
// are about a quarter of the float export's. Then `edgefed export` on an int8 folder, and its bad inputs.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadMnist } from '../../data/mnist.js';
import { subset } from '../../data/types.js';
import { Rng } from '../../core/rng.js';
import { builtinModel, initialWeights, tensorSpecs } from '../spec.js';
import { trainBriefly } from './brief-training.js';
import { saveTfjsModel } from '../tfjs.js';
import { quantizeModel } from '../quantize-model.js';
import { Int8Runner, type Int8Net } from '../../core/int8-net.js';
import { int8ModelFiles, writeInt8Files, INT8_MODEL_FILE, INT8_WEIGHTS_FILE } from '../int8-files.js';
import { exportOnnx, onnxGraph } from './export.js';
import { exportInt8Onnx, int8OnnxGraph } from './int8.js';
import type { OnnxGraph } from './proto.js';

const ort = createRequire(import.meta.url)('onnxruntime-node') as typeof import('onnxruntime-node');
const CLI = fileURLToPath(new URL('../../../bin/edgefed.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'edgefed-int8-onnx-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function runOnnx(bytes: Uint8Array, x: Float32Array, dims: number[], optimize: boolean): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes, optimize ? {} : { graphOptimizationLevel: 'disabled' });
  try {
    return (await session.run({ input: new ort.Tensor('float32', x, dims) })).output.data as Float32Array;
  } finally {
    await session.release();
  }
}

/** How many rows have the same argmax, and the largest |a - b| over all values. */
function compare(a: Float32Array, b: Float32Array, classes: number): { agree: number; maxDiff: number } {
  assert.equal(a.length, b.length);
  const argmax = (v: Float32Array, r: number) => {
    let best = 0;
    for (let j = 1; j < classes; j++) if (v[r * classes + j] > v[r * classes + best]) best = j;
    return best;
  };
  let agree = 0;
  let maxDiff = 0;
  for (let r = 0; r < a.length / classes; r++) {
    if (argmax(a, r) === argmax(b, r)) agree++;
    for (let j = 0; j < classes; j++) maxDiff = Math.max(maxDiff, Math.abs(a[r * classes + j] - b[r * classes + j]));
  }
  return { agree, maxDiff };
}

const initializerBytes = (g: OnnxGraph) => g.initializers.reduce((s, t) => s + t.raw.length, 0);

const firstRows = (n: number) => Array.from({ length: n }, (_, i) => i);
const mnist = loadMnist();
const [train, test] = [subset(mnist.train, firstRows(512)), subset(mnist.test, firstRows(1000))];

/**
 * The float model trained briefly on MNIST and its int8 network, calibrated on the images it trained on (the CNN
 * on its 128: its calibration pass costs as much per image as its int8 forward, and what is checked here is
 * that ONNX Runtime runs the int8 network as we do, whatever the calibration set).
 */
const trained = new Map<string, Promise<{ weights: Float32Array; net: Int8Net }>>();
function trainedInt8(name: 'mlp' | 'cnn'): Promise<{ weights: Float32Array; net: Int8Net }> {
  if (!trained.has(name)) trained.set(name, trainAndQuantize(name));
  return trained.get(name)!;
}

async function trainAndQuantize(name: 'mlp' | 'cnn'): Promise<{ weights: Float32Array; net: Int8Net }> {
  const spec = builtinModel(name, [28, 28, 1], 10);
  const data =
    name === 'cnn'
      ? subset(
          train,
          Array.from({ length: 128 }, (_, i) => i),
        )
      : train;
  const weights = await trainBriefly(spec, data);
  return { weights, net: quantizeModel(spec, weights, data, data.n).net };
}

describe('int8 models as QDQ ONNX in onnxruntime-node', () => {
  for (const name of ['mlp', 'cnn'] as const) {
    it(`${name}: ONNX Runtime predicts the int8 network's classes on 1,000 MNIST test images; weights a quarter of the float file's`, async (t) => {
      const spec = builtinModel(name, [28, 28, 1], 10);
      const { weights, net } = await trainedInt8(name);
      const ours = new Int8Runner(net).predict(test.x, test.n);
      const bytes = exportInt8Onnx(net, name);
      const floatBytes = exportOnnx(spec, weights);
      const dims = [test.n, 28, 28, 1];
      const fused = compare(ours, await runOnnx(bytes, test.x, dims, true), 10);
      const written = compare(ours, await runOnnx(bytes, test.x, dims, false), 10);
      const int8Weights = initializerBytes(int8OnnxGraph(net));
      const floatWeights = initializerBytes(onnxGraph(spec, weights));
      t.diagnostic(
        `classes agree ${fused.agree}/1000 with ORT's fused integer kernels (max |p diff| ${fused.maxDiff.toExponential(2)}), ` +
          `${written.agree}/1000 as written (max |p diff| ${written.maxDiff.toExponential(2)}); ` +
          `file ${bytes.length} bytes vs ${floatBytes.length} float (${(bytes.length / floatBytes.length).toFixed(3)}), ` +
          `weights ${int8Weights} vs ${floatWeights} bytes (${(int8Weights / floatWeights).toFixed(3)})`,
      );
      // Rounding differs only where a requantised value sits within float32 error of a .5 tie (see README).
      assert.ok(fused.agree >= 995 && written.agree >= 995, "ONNX Runtime predicts the int8 network's classes");
      assert.ok(fused.maxDiff < 1e-2 && written.maxDiff < 1e-2, 'probabilities move by a few quanta at most');
      assert.ok(int8Weights <= 0.26 * floatWeights, 'int8 weights are about a quarter of the float ones');
    });
  }
});

/** `edgefed export ARGS` in a child process, as a user runs it. */
function edgefedExport(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'export', ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A copy of the int8 folder with `change` applied to one of its files. */
function brokenCopy(from: string, name: string, file: string, change: (b: Buffer) => Buffer | string): string {
  const to = join(dir, name);
  mkdirSync(to);
  for (const f of [INT8_MODEL_FILE, INT8_WEIGHTS_FILE]) copyFileSync(join(from, f), join(to, f));
  writeFileSync(join(to, file), change(readFileSync(join(to, file))));
  return to;
}

describe('edgefed export on an int8 model folder', () => {
  it('writes the QDQ file exportInt8Onnx writes; a corrupt or unwritable int8 folder gets one line and exit 2', async () => {
    const { weights, net } = await trainedInt8('mlp');
    const folder = join(dir, 'mlp-int8');
    mkdirSync(folder);
    const info = { model: 'mlp', floatSha256: '', floatParameters: weights.length, loss: 'x' };
    writeInt8Files(
      folder,
      int8ModelFiles(net, { ...info, calibration: { data: 'mnist', samples: 512, method: 'min/max' } }),
    );
    const out = join(dir, 'mlp-int8.onnx');
    const ok = edgefedExport(['--model', folder, '--format', 'onnx', '--out', out]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /wrote .*mlp-int8\.onnx \(\d+ bytes, ONNX opset 17, int8 model \(QDQ/);
    assert.deepEqual(new Uint8Array(readFileSync(out)), exportInt8Onnx(net, 'int8'));

    const never = join(dir, 'never.onnx');
    const flipped = brokenCopy(folder, 'flipped', INT8_WEIGHTS_FILE, (b) => {
      b[b.length >> 1] ^= 0xff;
      return b;
    });
    const manifest = JSON.parse(readFileSync(join(folder, INT8_MODEL_FILE), 'utf8'));
    manifest.layers[0].type = 'avgpool2d';
    const cases: [string, RegExp][] = [
      [flipped, /int8-weights\.bin: (cannot read the int8 weights|the weights do not match the sha256)/],
      [
        brokenCopy(folder, 'truncated', INT8_MODEL_FILE, (b) => b.subarray(0, 40)),
        /int8-model\.json: not a readable int8 model manifest/,
      ],
      [
        brokenCopy(folder, 'no-weights-entry', INT8_MODEL_FILE, () => '{"format":"edgefed-int8/1"}'),
        /int8-model\.json is not a complete int8 manifest/,
      ],
      [
        brokenCopy(folder, 'avgpool', INT8_MODEL_FILE, () => JSON.stringify(manifest)),
        /layer 0 \('dense1', avgpool2d\): int8 ONNX export writes dense, conv2d, maxpool2d layers/,
      ],
    ];
    for (const [model, message] of cases) {
      const r = edgefedExport(['--model', model, '--format', 'onnx', '--out', never]);
      assert.equal(r.code, 2, `${model}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
      assert.ok(!existsSync(never), 'nothing written');
    }
  });
});

describe('edgefed export on a float model folder', () => {
  it('a layer the exporter cannot write (a Conv2D with elu) gets one line naming it, exit 2, no file', async () => {
    const spec = builtinModel('cnn', [28, 28, 1], 10);
    const folder = join(dir, 'elu');
    await saveTfjsModel(spec, initialWeights(tensorSpecs(spec), new Rng(1)), folder);
    const json = JSON.parse(readFileSync(join(folder, 'model.json'), 'utf8'));
    json.modelTopology.config.layers[0].config.activation = 'elu';
    writeFileSync(join(folder, 'model.json'), JSON.stringify(json));
    const out = join(dir, 'elu.onnx');
    const r = edgefedExport(['--model', folder, '--format', 'onnx', '--out', out]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /model\.json: ONNX export covers the models the engine trains; .* activation 'elu' on layer 'conv1'/,
    );
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    assert.ok(!existsSync(out), 'nothing written');
  });
});
