// Integer inference (int8-net.ts) against two oracles: a naive float64 reference of the same quantised
// arithmetic (dequantise everything, compute in float64, quantise each layer's output), which it must match
// exactly; and the float model on the engine, trained on real MNIST, which it must follow within a stated
// tolerance. Then the quantisation parameters as properties.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { activationQuant, Int8Runner, int8UnsupportedReason, quantizeNet, type Int8Net } from './int8-net.js';
import { Rng } from './rng.js';
import { loadMnist } from '../data/mnist.js';
import { subset } from '../data/types.js';
import { builtinModel, initialWeights, tensorSpecs, type ModelSpec } from '../model/spec.js';
import { trainedMnistModel } from '../../test/support/mnist-trained.js';

/**
 * The reference: every tensor as float64 reals (scale x (q - zero point)), layers computed by the textbook
 * formula with explicit padding, each hidden output quantised with the layer's stored output scale.
 */
function naiveInt8(net: Int8Net, x: Float32Array, n: number): Float64Array {
  const size = net.inputShape.reduce((a, b) => a * b, 1);
  const out = new Float64Array(n * net.outputSize);
  const q = (v: number, s: number, z: number) => Math.min(127, Math.max(-128, Math.round(v / s) + z));
  for (let s = 0; s < n; s++) {
    let scale = net.input.scale;
    let zero = net.input.zeroPoint;
    let cur = Array.from(x.subarray(s * size, (s + 1) * size), (v) => q(v, scale, zero));
    for (const op of net.ops) {
      if (op.type === 'maxpool2d') {
        const [h, w, c] = op.inShape;
        const p = op.poolSize;
        const next: number[] = [];
        for (let y = 0; y < Math.floor(h / p); y++)
          for (let xx = 0; xx < Math.floor(w / p); xx++)
            for (let ch = 0; ch < c; ch++) {
              let m = -Infinity;
              for (let dy = 0; dy < p; dy++)
                for (let dx = 0; dx < p; dx++) m = Math.max(m, cur[((y * p + dy) * w + xx * p + dx) * c + ch]);
              next.push(m);
            }
        cur = next;
        continue;
      }
      const real = (v: number) => scale * (v - zero);
      const wReal = (i: number, ch: number) => op.kernel[i] * op.weightScales[ch];
      const bReal = (ch: number) => op.bias[ch] * scale * op.weightScales[ch];
      const y: number[] = [];
      if (op.type === 'dense') {
        for (let j = 0; j < op.units; j++) {
          let sum = bReal(j);
          for (let i = 0; i < op.inputSize; i++) sum += real(cur[i]) * wReal(i * op.units + j, j);
          y.push(sum);
        }
      } else {
        const [h, w, c] = op.inShape;
        const k = op.kernelSize;
        const pad = op.padding === 'same' ? Math.floor((k - 1) / 2) : 0;
        const oh = op.padding === 'same' ? h : h - k + 1;
        const ow = op.padding === 'same' ? w : w - k + 1;
        const at = (yy: number, xx: number, ch: number) =>
          yy < 0 || yy >= h || xx < 0 || xx >= w ? 0 : real(cur[(yy * w + xx) * c + ch]);
        for (let oy = 0; oy < oh; oy++)
          for (let ox = 0; ox < ow; ox++)
            for (let f = 0; f < op.filters; f++) {
              let sum = bReal(f);
              for (let ky = 0; ky < k; ky++)
                for (let kx = 0; kx < k; kx++)
                  for (let ch = 0; ch < c; ch++)
                    sum += at(oy + ky - pad, ox + kx - pad, ch) * wReal(((ky * k + kx) * c + ch) * op.filters + f, f);
              y.push(sum);
            }
      }
      const act = op.activation === 'relu' ? y.map((v) => Math.max(0, v)) : y;
      if (!op.output) {
        let v = act;
        if (op.activation === 'softmax') {
          const m = Math.max(...v);
          const e = v.map((t) => Math.exp(t - m));
          const total = e.reduce((a, b) => a + b, 0);
          v = e.map((t) => t / total);
        }
        out.set(v, s * net.outputSize);
        break;
      }
      scale = op.output.scale;
      zero = op.output.zeroPoint;
      cur = act.map((v) => q(v, scale, zero));
    }
  }
  return out;
}

function randomModel(spec: ModelSpec, seed: number): Float32Array {
  const rng = new Rng(seed);
  const w = initialWeights(tensorSpecs(spec), rng);
  // Non-zero biases, so their int32 path is exercised.
  let offset = 0;
  for (const t of tensorSpecs(spec)) {
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (t.shape.length === 1) for (let i = 0; i < size; i++) w[offset + i] = rng.uniform(-0.2, 0.2);
    offset += size;
  }
  return w;
}

describe('int8 inference against a float64 reference of the same arithmetic', () => {
  const cases: [string, ModelSpec][] = [
    ['mlp (flatten, dense relu, dense softmax)', builtinModel('mlp', [6, 5, 1], 4)],
    [
      'conv same + pool + conv valid + dense',
      {
        ...builtinModel('cnn', [9, 9, 2], 3),
        layers: [
          { type: 'conv2d', name: 'c1', filters: 4, kernelSize: 3, activation: 'relu', padding: 'same' },
          { type: 'maxpool2d', name: 'p1', poolSize: 2 },
          { type: 'conv2d', name: 'c2', filters: 5, kernelSize: 2, activation: 'linear', padding: 'valid' },
          { type: 'flatten', name: 'f' },
          { type: 'dense', name: 'out', units: 3, activation: 'softmax' },
        ],
      },
    ],
    [
      'regression (linear output)',
      { ...builtinModel('mlp', [7], 0), layers: [{ type: 'dense', name: 'out', units: 2, activation: 'linear' }] },
    ],
  ];
  for (const [name, spec] of cases) {
    it(`${name}: outputs equal the reference within 1e-9 (float64 rounding only)`, () => {
      const rng = new Rng(11);
      const size = spec.inputShape.reduce((a, b) => a * b, 1);
      const calibration = Float32Array.from({ length: 40 * size }, () => rng.uniform(-1, 2));
      const net = quantizeNet({
        inputShape: spec.inputShape,
        layers: spec.layers,
        weights: randomModel(spec, 5),
        calibration,
        calibrationSamples: 40,
      });
      const x = Float32Array.from({ length: 25 * size }, () => rng.uniform(-1.5, 2.5)); // beyond the range too
      const ours = new Int8Runner(net).predict(x, 25);
      const ref = naiveInt8(net, x, 25);
      // Both sides round the same integers; float32 output storage bounds the difference.
      for (let i = 0; i < ref.length; i++)
        assert.ok(Math.abs(ours[i] - ref[i]) <= 1e-6 * Math.max(1, Math.abs(ref[i])), `${i}: ${ours[i]} vs ${ref[i]}`);
    });
  }
});

describe('int8 inference against the float model (real MNIST)', () => {
  const d = loadMnist();
  const test = subset(
    d.test,
    Array.from({ length: 1000 }, (_, i) => i),
  );
  it('seed MLP: same class on >= 99% of 1,000 test images, probabilities within 0.05, accuracy within 0.5 points', async (t) => {
    const { spec, weights, trainer } = await trainedMnistModel('mlp', 6000);
    const calibration = subset(
      d.train,
      Array.from({ length: 500 }, (_, i) => 10_000 + i * 7),
    );
    const net = quantizeNet({ ...spec, weights, calibration: calibration.x, calibrationSamples: calibration.n });
    const int8 = new Int8Runner(net).predict(test.x, test.n);
    const float = await trainer.predict(weights, test.x, test.n);
    trainer.dispose();
    let same = 0;
    let rightInt8 = 0;
    let rightFloat = 0;
    let worst = 0;
    const argmax = (p: Float32Array, i: number) => {
      let b = 0;
      for (let j = 1; j < 10; j++) if (p[i * 10 + j] > p[i * 10 + b]) b = j;
      return b;
    };
    for (let i = 0; i < test.n; i++) {
      const [a, b] = [argmax(int8, i), argmax(float, i)];
      same += a === b ? 1 : 0;
      rightInt8 += a === test.y[i] ? 1 : 0;
      rightFloat += b === test.y[i] ? 1 : 0;
      for (let j = 0; j < 10; j++) worst = Math.max(worst, Math.abs(int8[i * 10 + j] - float[i * 10 + j]));
    }
    t.diagnostic(`same class ${same}/1000, accuracy int8 ${rightInt8} float ${rightFloat}, max |dp| ${worst}`);
    assert.ok(rightFloat > 800, `the float model learned (${rightFloat}/1000)`);
    // Tolerances: int8 rounding moves a probability by a few 1e-3 on most images; 0.05 and 1% of classes
    // flipped leave room for the rare near-tie while catching a wrong scale or zero point (those flip most).
    assert.ok(same >= 990, `int8 and float agree on ${same}/1000`);
    assert.ok(worst <= 0.05, `largest probability difference ${worst}`);
    assert.ok(rightFloat - rightInt8 <= 5, `int8 loses ${(rightFloat - rightInt8) / 10} points`);
  });
});

describe('quantisation parameters', () => {
  it('property: the activation range maps into [-128, 127], 0 is exact, the ends within half a step', () => {
    fc.assert(
      fc.property(
        fc.float({ min: -50, max: 50, noNaN: true }),
        fc.float({ min: -50, max: 50, noNaN: true }),
        (a, b) => {
          const [lo, hi] = [Math.min(a, b), Math.max(a, b)];
          const { scale, zeroPoint } = activationQuant(lo, hi);
          if (!(scale > 0) || zeroPoint < -128 || zeroPoint > 127) return false;
          const back = (v: number) =>
            scale * (Math.min(127, Math.max(-128, Math.round(v / scale) + zeroPoint)) - zeroPoint);
          if (back(0) !== 0) return false;
          return (
            Math.abs(back(Math.min(lo, 0)) - Math.min(lo, 0)) <= scale / 2 + 1e-6 &&
            Math.abs(back(Math.max(hi, 0)) - Math.max(hi, 0)) <= scale / 2 + 1e-6
          );
        },
      ),
      { seed: 7, numRuns: 300 },
    );
  });
  it('names the layer int8 cannot run, and refuses an empty or misshapen calibration set', () => {
    assert.match(
      int8UnsupportedReason([24, 4], builtinModel('gru', [24, 4], 0).layers) ?? '',
      /layer 'gru' is gru; int8 serving runs Dense, Conv2D, MaxPool2D, Flatten and Dropout only/,
    );
    const spec = builtinModel('mlp', [4], 2);
    const weights = initialWeights(tensorSpecs(spec), new Rng(1));
    assert.throws(
      () => quantizeNet({ ...spec, weights, calibration: new Float32Array(0), calibrationSamples: 0 }),
      /calibration set is empty/,
    );
    assert.throws(
      () => quantizeNet({ ...spec, weights, calibration: new Float32Array(10), calibrationSamples: 2 }),
      /calibration data has 5 features per sample, the model takes 4/,
    );
  });
});
