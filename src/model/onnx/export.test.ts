// ONNX export against onnxruntime-node: the exported file of each model the engine trains (MLP and the
// McMahan CNN trained briefly on MNIST; sequence models with every sequence layer) runs in ONNX Runtime
// and gives the engine's own predictions within 1e-5 (1,000 MNIST test images for MLP and CNN).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { loadMnist } from '../../data/mnist.js';
import { subset } from '../../data/types.js';
import { Rng } from '../../core/rng.js';
import { builtinModel, initialWeights, tensorSpecs, type ModelSpec } from '../spec.js';
import { EngineTrainer } from '../engine-trainer.js';
import { SeqNet } from '../../nn/seqnet.js';
import { jsKernels } from '../../nn/kernels-js.js';
import { getKernels } from '../../nn/kernels-select.js';
import { exportOnnx } from './export.js';
import { ProtoWriter } from './proto.js';
import { trainBriefly } from './brief-training.js';
import { dequantize, dequantizeWeights, quantizePerChannel, quantizeWeights } from '../../core/quantize.js';

const ort = createRequire(import.meta.url)('onnxruntime-node') as typeof import('onnxruntime-node');

async function runOnnx(bytes: Uint8Array, x: Float32Array, dims: number[], optimize = true): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes, optimize ? {} : { graphOptimizationLevel: 'disabled' });
  try {
    const out = await session.run({ input: new ort.Tensor('float32', x, dims) });
    return out.output.data as Float32Array;
  } finally {
    await session.release();
  }
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

describe('protobuf writer', () => {
  it('writes varints, negative int64 as ten bytes, fixed32 floats and nested messages as protobuf does', () => {
    assert.deepEqual(Array.from(new ProtoWriter().int(1, 300).finish()), [0x08, 0xac, 0x02]);
    assert.deepEqual(
      Array.from(new ProtoWriter().int(2, -1).finish()),
      [0x10, 255, 255, 255, 255, 255, 255, 255, 255, 255, 1],
    );
    assert.deepEqual(Array.from(new ProtoWriter().float(3, 1).finish()), [0x1d, 0, 0, 0x80, 0x3f]);
    assert.deepEqual(
      Array.from(new ProtoWriter().message(4, new ProtoWriter().string(1, 'ab')).finish()),
      [0x22, 4, 0x0a, 2, 97, 98],
    );
  });
});

describe('ONNX export in onnxruntime-node', () => {
  const d = loadMnist();
  const train = subset(
    d.train,
    Array.from({ length: 512 }, (_, i) => i),
  );
  const test = subset(
    d.test,
    Array.from({ length: 1000 }, (_, i) => i),
  );
  for (const name of ['mlp', 'cnn'] as const) {
    it(`${name} trained on MNIST: ONNX Runtime predicts the engine's probabilities within 1e-5 on 1,000 test images`, async (t) => {
      const spec = builtinModel(name, [28, 28, 1], 10);
      const trainer = new EngineTrainer(spec, getKernels());
      const w0 = initialWeights(tensorSpecs(spec), new Rng(2));
      const { weights } = await trainer.train(
        w0,
        name === 'cnn'
          ? subset(
              train,
              Array.from({ length: 128 }, (_, i) => i),
            )
          : train,
        { epochs: 1, batchSize: 32, optimizer: spec.optimizer, proxMu: 0, seed: 1 },
      );
      const ours = await trainer.predict(weights, test.x, test.n);
      const theirs = await runOnnx(exportOnnx(spec, weights), test.x, [test.n, 28, 28, 1]);
      const diff = maxAbsDiff(ours, theirs);
      t.diagnostic(`max |onnxruntime - engine| probability ${diff.toExponential(2)}`);
      assert.ok(diff <= 1e-5, `predictions differ by ${diff}`);
    });
  }

  it("mobilenet (depthwise, separable, batch norm, global average pool) trained a few steps on MNIST: ONNX Runtime predicts the engine's probabilities within 1e-5 on 1,000 test images", async (t) => {
    const spec = builtinModel('mobilenet', [28, 28, 1], 10);
    const trainer = new EngineTrainer(spec, getKernels());
    // A few steps move the moving statistics away from (0, 1), so inference-form batch norm is exercised.
    const few = subset(
      train,
      Array.from({ length: 96 }, (_, i) => i),
    );
    const weights = await trainBriefly(spec, few, 3);
    const ours = await trainer.predict(weights, test.x, test.n);
    const theirs = await runOnnx(exportOnnx(spec, weights), test.x, [test.n, 28, 28, 1]);
    const diff = maxAbsDiff(ours, theirs);
    t.diagnostic(`max |onnxruntime - engine| probability ${diff.toExponential(2)}`);
    assert.ok(diff <= 1e-5, `predictions differ by ${diff}`);
  });

  type Padding = 'same' | 'valid';
  type Act = 'relu' | 'linear' | 'sigmoid' | 'tanh';
  const depthwise = (name: string, k: number, dm: number, s: number, padding: Padding, act: Act, useBias: boolean) =>
    ({
      type: 'depthwiseconv2d',
      name,
      kernelSize: k,
      depthMultiplier: dm,
      strides: s,
      padding,
      activation: act,
      useBias,
    }) as const;
  const separable = (name: string, filters: number, k: number, s: number, padding: Padding, act: Act) =>
    ({ type: 'separableconv2d', name, filters, kernelSize: k, strides: s, padding, activation: act }) as const;
  const imageModel = (name: string, inputShape: number[], loss: ModelSpec['loss'], layers: ModelSpec['layers']) =>
    ({ name, inputShape, loss, optimizer: { name: 'adam', lr: 0.01 }, layers }) as ModelSpec;
  const visionModels: [string, ModelSpec][] = [
    [
      'depthwise (multiplier 2, valid, stride 2, bias, tanh), batch norm, separable (same, stride 2, sigmoid), ' +
        'conv2d, batch norm, global average pool, dense with batch norm, dense softmax',
      imageModel('vision-a', [11, 9, 3], 'sparse_categorical_crossentropy', [
        depthwise('dw', 3, 2, 2, 'valid', 'tanh', true),
        { type: 'batchnorm', name: 'bn1', momentum: 0.9, epsilon: 1e-3 },
        separable('sep', 5, 2, 2, 'same', 'sigmoid'),
        { type: 'conv2d', name: 'c', filters: 4, kernelSize: 3, activation: 'relu', padding: 'same' },
        { type: 'batchnorm', name: 'bn2', momentum: 0.99, epsilon: 1e-2 },
        { type: 'globalavgpool2d', name: 'gap' },
        { type: 'dense', name: 'd', units: 6, activation: 'relu' },
        { type: 'batchnorm', name: 'bn3', momentum: 0.9, epsilon: 1e-3 },
        { type: 'dense', name: 'out', units: 3, activation: 'softmax' },
      ]),
    ],
    [
      'depthwise (same, stride 1, no bias, relu), maxpool, separable (valid, linear), flatten, dense linear',
      imageModel('vision-b', [10, 10, 2], 'mse', [
        depthwise('dw', 5, 1, 1, 'same', 'relu', false),
        { type: 'maxpool2d', name: 'p', poolSize: 2 },
        separable('sep', 3, 3, 1, 'valid', 'linear'),
        { type: 'flatten', name: 'f' },
        { type: 'dense', name: 'out', units: 2, activation: 'linear' },
      ]),
    ],
  ];
  for (const [what, spec] of visionModels) {
    it(`vision model (${what}): ONNX Runtime predicts the engine's outputs within 1e-5`, async (t) => {
      const r = new Rng(6);
      const w = initialWeights(tensorSpecs(spec), r);
      // Biases, gammas, betas and moving statistics away from 0 and 1; a moving variance may go below 0,
      // which both the engine and the export read as 0.
      for (let i = 0; i < w.length; i++) w[i] += r.uniform(-0.3, 0.3);
      const n = 200;
      const size = spec.inputShape.reduce((a, b) => a * b, 1);
      const x = Float32Array.from({ length: n * size }, () => r.uniform(-2, 2));
      const ours = new SeqNet(spec, jsKernels).predict(w, x, n);
      const theirs = await runOnnx(exportOnnx(spec, w), x, [n, ...spec.inputShape]);
      const diff = maxAbsDiff(ours, theirs);
      t.diagnostic(`max |onnxruntime - engine| ${diff.toExponential(2)}`);
      assert.ok(diff <= 1e-5, `outputs differ by ${diff}`);
    });
  }

  const rnn = (
    type: 'gru' | 'lstm',
    name: string,
    units: number,
    returnSequences: boolean,
    recurrentActivation: 'sigmoid' | 'hardSigmoid',
  ) => ({ type, name, units, activation: 'tanh' as const, recurrentActivation, returnSequences });
  const seqModels: [string, ModelSpec, number][] = [
    [
      'conv1d, layernorm, gru (sequences), lstm, dense softmax',
      {
        name: 'seq-a',
        inputShape: [12, 3],
        loss: 'sparse_categorical_crossentropy',
        optimizer: { name: 'adam', lr: 0.01 },
        layers: [
          { type: 'conv1d', name: 'c', filters: 5, kernelSize: 4, activation: 'relu', padding: 'same' },
          { type: 'layernorm', name: 'ln', epsilon: 1e-3 },
          rnn('gru', 'g', 8, true, 'hardSigmoid'),
          rnn('lstm', 'l', 6, false, 'sigmoid'),
          { type: 'dense', name: 'out', units: 3, activation: 'softmax' },
        ],
      },
      0,
    ],
    [
      'embedding, conv1d valid, lstm (sequences, hardSigmoid), global average pool, dense linear',
      {
        name: 'seq-b',
        inputShape: [10],
        loss: 'mse',
        optimizer: { name: 'adam', lr: 0.01 },
        layers: [
          { type: 'embedding', name: 'e', inputDim: 20, outputDim: 4 },
          { type: 'conv1d', name: 'c', filters: 3, kernelSize: 3, activation: 'tanh', padding: 'valid' },
          rnn('lstm', 'l', 7, true, 'hardSigmoid'),
          { type: 'globalavgpool1d', name: 'gap' },
          { type: 'dense', name: 'out', units: 2, activation: 'linear' },
        ],
      },
      20,
    ],
    ['the built-in gru forecaster', { ...builtinModel('gru', [24, 4], 0) }, 0],
  ];
  for (const [what, spec, vocab] of seqModels) {
    it(`sequence model (${what}): ONNX Runtime predicts the engine's outputs within 1e-5`, async (t) => {
      const r = new Rng(5);
      const w = initialWeights(tensorSpecs(spec), r);
      for (let i = 0; i < w.length; i++) w[i] += r.uniform(-0.2, 0.2); // biases and gammas away from 0 and 1
      const n = 200;
      const size = spec.inputShape.reduce((a, b) => a * b, 1);
      const x = Float32Array.from({ length: n * size }, () => (vocab > 0 ? r.int(vocab) : r.uniform(-2, 2)));
      const ours = new SeqNet(spec, jsKernels).predict(w, x, n);
      const theirs = await runOnnx(exportOnnx(spec, w), x, [n, ...spec.inputShape]);
      const diff = maxAbsDiff(ours, theirs);
      t.diagnostic(`max |onnxruntime - engine| ${diff.toExponential(2)}`);
      assert.ok(diff <= 1e-5, `outputs differ by ${diff}`);
    });
  }

  for (const [what, spec, vocab] of [
    ['the MNIST cnn', builtinModel('cnn', [28, 28, 1], 10), 0] as const,
    ...seqModels,
  ]) {
    it(`int8 (QDQ) export of ${what}: a quarter of the float file, and ONNX Runtime computes what the engine does with the int8 weights`, async (t) => {
      const r = new Rng(8);
      const w = initialWeights(tensorSpecs(spec), r);
      for (let i = 0; i < w.length; i++) w[i] += r.uniform(-0.05, 0.05);
      const n = 100;
      const size = spec.inputShape.reduce((a, b) => a * b, 1);
      const x = Float32Array.from({ length: n * size }, () => (vocab > 0 ? r.int(vocab) : r.uniform(-1, 1)));
      const int8 = exportOnnx(spec, w, { int8: true });
      const float = exportOnnx(spec, w);
      const ours = new SeqNet(spec, jsKernels).predict(dequantizeWeights(quantizeWeights(tensorSpecs(spec), w)), x, n);
      // Unoptimised, ONNX Runtime runs the graph as written (DequantizeLinear, then float ops): the engine's
      // numbers. Optimised, it fuses the QDQ pairs into integer kernels that also quantise activations
      // dynamically, which moves outputs by ~1e-3 (printed, bounded loosely).
      const exact = maxAbsDiff(ours, await runOnnx(int8, x, [n, ...spec.inputShape], false));
      const fused = maxAbsDiff(ours, await runOnnx(int8, x, [n, ...spec.inputShape]));
      t.diagnostic(
        `file ${int8.length} bytes vs ${float.length} float (${(int8.length / float.length).toFixed(3)}); ` +
          `max |onnxruntime - engine| ${exact.toExponential(2)} as written, ${fused.toExponential(2)} with ORT's fused integer kernels`,
      );
      assert.ok(exact <= 1e-5, `outputs differ by ${exact}`);
      assert.ok(fused <= 2e-2, `ORT's integer kernels differ by ${fused}`);
      if (spec.name === 'cnn')
        assert.ok(int8.length <= 0.26 * float.length, 'weights dominate the cnn file: about a quarter');
    });
  }

  it('int8 (QDQ, weight-only) export of the mobilenet: depthwise kernels get one scale per output channel, and ONNX Runtime computes what the engine does with those weights', async (t) => {
    const spec = builtinModel('mobilenet', [28, 28, 1], 10);
    const tensors = tensorSpecs(spec);
    const r = new Rng(9);
    const w = initialWeights(tensors, r);
    for (let i = 0; i < w.length; i++) w[i] += r.uniform(-0.05, 0.05);
    // The reference: every kernel per output channel; a depthwise kernel [k, k, c, dm] has c * dm of them
    // (its flat index modulo c * dm), not dm as its last axis would say.
    const reference = new Float32Array(w.length);
    let offset = 0;
    for (const s of tensors) {
      const size = s.shape.reduce((a, b) => a * b, 1);
      const v = w.subarray(offset, offset + size);
      const channels = s.name.endsWith('/depthwise_kernel') ? s.shape[2] * s.shape[3] : s.shape.at(-1)!;
      const q = s.shape.length < 2 ? { values: v } : quantizePerChannel(v, channels);
      reference.set(
        'values' in q ? q.values : dequantize({ name: s.name, shape: s.shape, kind: 'int8', ...q }),
        offset,
      );
      offset += size;
    }
    const n = 50;
    const x = test.x.subarray(0, n * 784);
    const ours = new SeqNet(spec, jsKernels).predict(reference, x, n);
    const int8 = exportOnnx(spec, w, { int8: true });
    const exact = maxAbsDiff(ours, await runOnnx(int8, x, [n, 28, 28, 1], false));
    const float = exportOnnx(spec, w);
    t.diagnostic(
      `file ${int8.length} bytes vs ${float.length} float (${(int8.length / float.length).toFixed(3)}); ` +
        `max |onnxruntime - engine| ${exact.toExponential(2)} as written`,
    );
    assert.ok(exact <= 1e-5, `outputs differ by ${exact}`);
  });

  it('refuses a model the engine does not run, and weights of the wrong length, saying why', () => {
    const mlp = builtinModel('mlp', [28, 28, 1], 10);
    assert.throws(() => exportOnnx(mlp, new Float32Array(10)), /weights have 10 values, the model needs 101770/);
    assert.throws(
      () =>
        exportOnnx(
          { ...mlp, layers: [{ type: 'dropout', name: 'bn:BatchNormalization', rate: NaN }, ...mlp.layers] },
          new Float32Array(101770),
        ),
      /ONNX export covers the models the engine trains; mlp is not one: dropout .* has rate NaN/,
    );
  });
});
