// The compact vision layers of SeqNet (DepthwiseConv2D, SeparableConv2D, BatchNormalization,
// GlobalAveragePooling2D) against: an independent float64 reference written from the Keras definitions
// (gradients by central finite differences, BatchNormalization through its batch statistics), stock tfjs
// predictions, gradients and moving statistics for the same model and weights, and the tfjs Keras format
// both ways (our saved model in stock tfjs; a user's tfjs model.json trained on the engine). On the JS
// kernels, and native and wasm when built.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as stockTf from '@tensorflow/tfjs';
import type { Kernels } from './kernels.js';
import { jsKernels } from './kernels-js.js';
import { SeqNet, seqTensorSpecs, seqUnsupportedReason, type SeqLayer, type SeqNetSpec } from './seqnet.js';
import { Rng } from '../core/rng.js';
import { builtinModel, initialWeights, tensorSpecs, type ModelSpec } from '../model/spec.js';
import { ensureTfjs, setModelWeights, tf } from '../model/tfjs.js';
import { EngineTrainer } from '../model/engine-trainer.js';
import type { Dataset } from '../data/types.js';
import { prng, rand } from '../../test/support/kernels.js';
import {
  assertTfjsWeightLayout,
  checkAgainstFiniteDifferences,
  checkStockModelOnEngine,
  KERNELS,
  maxAbsDiff,
  prod,
  stockPredictionsOfSaved,
  tfjsGradient,
  tfjsModelOf,
  tfjsPredictionDiff,
  type Case as SeqNetCase,
} from '../../test/support/seqnet-checks.js';

// ---------- an independent float64 reference over the whole batch, from the Keras definitions ----------

/** A batch of activations: [m, ...shape] in NHWC order. */
interface Act {
  shape: number[];
  a: Float64Array;
}

/** ReLU signs in visit order: a finite difference must not cross one. */
let pattern: number[] = [];

function fn(name: string, v: number): number {
  if (name === 'relu') {
    pattern.push(v > 0 ? 1 : 0);
    return Math.max(0, v);
  }
  if (name === 'tanh') return Math.tanh(v);
  if (name === 'sigmoid') return 1 / (1 + Math.exp(-v));
  return v;
}

/** TensorFlow's 'same'/'valid' output size and leading pad for one spatial axis. */
function axis(n: number, k: number, s: number, padding: string): [number, number] {
  const out = padding === 'same' ? Math.ceil(n / s) : Math.ceil((n - k + 1) / s);
  const pad = padding === 'same' ? Math.floor(Math.max((out - 1) * s + k - n, 0) / 2) : 0;
  return [out, pad];
}

/** A k x k convolution where output channel o reads input channel `src(o)` only (depthwise) or all (full). */
function convRef(
  x: Act,
  k: number,
  s: number,
  padding: string,
  cout: number,
  weight: (i: number, j: number, ci: number, o: number) => number,
  depthwise: number,
): Act {
  const [m, h, w, c] = x.shape;
  const [oh, pt] = axis(h, k, s, padding);
  const [ow, pl] = axis(w, k, s, padding);
  const a = new Float64Array(m * oh * ow * cout);
  for (let b = 0; b < m; b++)
    for (let r = 0; r < oh; r++)
      for (let q = 0; q < ow; q++)
        for (let o = 0; o < cout; o++) {
          let sum = 0;
          for (let i = 0; i < k; i++)
            for (let j = 0; j < k; j++) {
              const ih = r * s + i - pt,
                iw = q * s + j - pl;
              if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
              const base = ((b * h + ih) * w + iw) * c;
              if (depthwise > 0) {
                const ci = Math.floor(o / depthwise);
                sum += x.a[base + ci] * weight(i, j, ci, o % depthwise);
              } else for (let ci = 0; ci < c; ci++) sum += x.a[base + ci] * weight(i, j, ci, o);
            }
          a[((b * oh + r) * ow + q) * cout + o] = sum;
        }
  return { shape: [m, oh, ow, cout], a };
}

function biasAct(x: Act, bias: ((o: number) => number) | null, act: string): Act {
  const c = x.shape[x.shape.length - 1];
  return { shape: x.shape, a: x.a.map((v, i) => fn(act, v + (bias ? bias(i % c) : 0))) };
}

/** Logits of the batch; with `training`, BatchNormalization uses batch statistics. */
function referenceLogits(
  spec: SeqNetSpec,
  w: ArrayLike<number>,
  x: Float32Array,
  m: number,
  training: boolean,
  stateStart?: number,
): Act {
  let a: Act = { shape: [m, ...spec.inputShape], a: Float64Array.from(x.subarray(0, m * prod(spec.inputShape))) };
  let off = 0;
  // moving statistics follow every trainable weight, in layer order
  let stateOff =
    stateStart ??
    seqTensorSpecs(spec)
      .filter((t) => !/moving_/.test(t.name))
      .reduce((s, t) => s + prod(t.shape), 0);
  const W = (o: number) => w[o];
  for (const l of spec.layers) {
    const c = a.shape[a.shape.length - 1];
    switch (l.type) {
      case 'conv2d': {
        const k = l.kernelSize,
          base = off;
        a = convRef(
          a,
          k,
          1,
          l.padding,
          l.filters,
          (i, j, ci, o) => W(base + ((i * k + j) * c + ci) * l.filters + o),
          0,
        );
        off += k * k * c * l.filters;
        const b0 = off;
        a = biasAct(a, (o) => W(b0 + o), l.activation);
        off += l.filters;
        break;
      }
      case 'depthwiseconv2d': {
        const k = l.kernelSize,
          dm = l.depthMultiplier,
          base = off;
        a = convRef(a, k, l.strides, l.padding, c * dm, (i, j, ci, q) => W(base + ((i * k + j) * c + ci) * dm + q), dm);
        off += k * k * c * dm;
        const b0 = off;
        a = biasAct(a, l.useBias ? (o) => W(b0 + o) : null, l.activation);
        if (l.useBias) off += c * dm;
        break;
      }
      case 'separableconv2d': {
        const k = l.kernelSize,
          d0 = off;
        a = convRef(a, k, l.strides, l.padding, c, (i, j, ci) => W(d0 + (i * k + j) * c + ci), 1);
        off += k * k * c;
        const p0 = off;
        a = convRef(a, 1, 1, 'valid', l.filters, (_i, _j, ci, o) => W(p0 + ci * l.filters + o), 0);
        off += c * l.filters;
        const b0 = off;
        a = biasAct(a, (o) => W(b0 + o), l.activation);
        off += l.filters;
        break;
      }
      case 'batchnorm': {
        const n = a.a.length / c;
        const mean = new Float64Array(c),
          v = new Float64Array(c);
        for (let j = 0; j < c; j++) {
          if (training) {
            for (let i = j; i < a.a.length; i += c) mean[j] += a.a[i] / n;
            for (let i = j; i < a.a.length; i += c) v[j] += (a.a[i] - mean[j]) ** 2 / n;
          } else {
            mean[j] = W(stateOff + j);
            v[j] = W(stateOff + c + j);
          }
        }
        const g0 = off;
        a = {
          shape: a.shape,
          a: a.a.map((x, i) => {
            const j = i % c;
            return (W(g0 + j) * (x - mean[j])) / Math.sqrt(v[j] + l.epsilon) + W(g0 + c + j);
          }),
        };
        off += 2 * c;
        stateOff += 2 * c;
        break;
      }
      case 'globalavgpool2d': {
        const [mm, h, ww] = a.shape;
        const out = new Float64Array(mm * c);
        for (let i = 0; i < a.a.length; i++) out[Math.floor(i / (h * ww * c)) * c + (i % c)] += a.a[i] / (h * ww);
        a = { shape: [mm, c], a: out };
        break;
      }
      case 'flatten':
        a = { shape: [a.shape[0], prod(a.shape.slice(1))], a: a.a };
        break;
      case 'dense': {
        const fanIn = a.shape[1],
          u = l.units;
        const out = new Float64Array(m * u);
        for (let b = 0; b < m; b++)
          for (let j = 0; j < u; j++) {
            let s = w[off + fanIn * u + j];
            for (let p = 0; p < fanIn; p++) s += a.a[b * fanIn + p] * w[off + p * u + j];
            out[b * u + j] = l.activation === 'softmax' ? s : fn(l.activation, s);
          }
        off += fanIn * u + u;
        a = { shape: [m, u], a: out };
        break;
      }
      default:
        throw new Error(`reference has no ${l.type}`);
    }
  }
  return a;
}

function referenceLoss(
  spec: SeqNetSpec,
  w: ArrayLike<number>,
  x: Float32Array,
  y: Int32Array,
  m: number,
  training: boolean,
): { loss: number; pattern: number[] } {
  pattern = [];
  const out = referenceLogits(spec, w, x, m, training);
  const n = out.shape[1];
  let loss = 0;
  for (let b = 0; b < m; b++) {
    const row = Array.from(out.a.subarray(b * n, (b + 1) * n));
    const max = Math.max(...row);
    loss += max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0)) - row[y[b]];
  }
  return { loss: loss / m, pattern };
}

// ---------- test networks ----------

const bn = (name: string, momentum = 0.99): SeqLayer => ({ type: 'batchnorm', name, momentum, epsilon: 1e-3 });
const out = (units: number): SeqLayer => ({ type: 'dense', name: 'out', units, activation: 'softmax' });

const NETS: [string, SeqNetSpec][] = [
  [
    '[6,6,2] depthwise 3x3 s2 dm2 same relu, batchnorm, separable 4 3x3 s1 same relu, batchnorm, gap2d, dense 3',
    {
      inputShape: [6, 6, 2],
      loss: 'sparse_categorical_crossentropy',
      layers: [
        {
          type: 'depthwiseconv2d',
          name: 'dw',
          kernelSize: 3,
          depthMultiplier: 2,
          strides: 2,
          padding: 'same',
          activation: 'relu',
          useBias: true,
        },
        bn('bn1'),
        {
          type: 'separableconv2d',
          name: 'sep',
          filters: 4,
          kernelSize: 3,
          strides: 1,
          padding: 'same',
          activation: 'relu',
        },
        bn('bn2', 0.9),
        { type: 'globalavgpool2d', name: 'gap' },
        out(3),
      ],
    },
  ],
  [
    '[5,5,1] conv 3x3 same tanh, batchnorm, depthwise 2x2 valid tanh no bias, separable 3 3x3 s2 valid linear, flatten',
    {
      inputShape: [5, 5, 1],
      loss: 'sparse_categorical_crossentropy',
      layers: [
        { type: 'conv2d', name: 'c', filters: 3, kernelSize: 3, activation: 'tanh', padding: 'same' },
        bn('bn'),
        {
          type: 'depthwiseconv2d',
          name: 'dw',
          kernelSize: 2,
          depthMultiplier: 1,
          strides: 1,
          padding: 'valid',
          activation: 'tanh',
          useBias: false,
        },
        {
          type: 'separableconv2d',
          name: 'sep',
          filters: 3,
          kernelSize: 3,
          strides: 2,
          padding: 'valid',
          activation: 'linear',
        },
        { type: 'flatten', name: 'f' },
        out(2),
      ],
    },
  ],
];

/** A case with class labels (every net here ends in softmax). */
interface Case extends SeqNetCase {
  y: Int32Array;
}

/** Random weights (moving variances positive) and data. */
function makeCase(spec: SeqNetSpec, m: number, seed: number): Case {
  const r = prng(seed);
  const specs = seqTensorSpecs(spec);
  const w = rand(
    specs.reduce((a, t) => a + prod(t.shape), 0),
    r,
    -0.8,
    0.8,
  );
  let o = 0;
  for (const t of specs) {
    if (t.name.endsWith('/moving_variance')) for (let i = 0; i < prod(t.shape); i++) w[o + i] = 0.5 + r();
    o += prod(t.shape);
  }
  const x = rand(m * prod(spec.inputShape), r);
  const outN = (spec.layers[spec.layers.length - 1] as { units: number }).units;
  return { spec, w, x, y: Int32Array.from({ length: m }, () => Math.floor(r() * outN)), m };
}

const EPS = 1e-5;
/** |fd - g| <= ABS + REL |g|: float64 reference (central differences ~1e-10) vs the float32 engine. */
const ABS = 2e-5;
const REL = 2e-3;

function checkGradient(k: Kernels, c: Case, training: boolean, what: string): number {
  const net = new SeqNet(c.spec, k);
  const g = new Float32Array(net.numParams).fill(NaN);
  const wEngine = Float32Array.from(c.w); // a training pass moves the moving statistics in these
  const r = net.gradient(wEngine, c.x, c.y, c.m, g, training ? new Rng(1) : undefined);
  const lossAt = (w: ArrayLike<number>) => referenceLoss(c.spec, w, c.x, c.y, c.m, training);
  const tol = { eps: EPS, abs: ABS, rel: REL, minNonZero: 0 };
  return checkAgainstFiniteDifferences(c, g, r.loss / c.m, net.stateStart, lossAt, tol, what).worst;
}

for (const [kname, k] of KERNELS) {
  describe(`vision layers: gradient vs finite differences (${kname} kernels)`, () => {
    for (const [what, spec] of NETS) {
      for (const training of [true, false]) {
        it(`${training ? 'training' : 'inference'} mode: ${what}`, (t) => {
          const worst = checkGradient(k, makeCase(spec, 4, 11), training, what);
          t.diagnostic(`worst |fd - g| ${worst.toExponential(2)}`);
        });
      }
    }
    it('a training pass moves the moving statistics as Keras does; an inference pass leaves them', () => {
      const [, spec] = NETS[0];
      const c = makeCase(spec, 5, 3);
      const net = new SeqNet(spec, k);
      const w = Float32Array.from(c.w);
      net.forward(w, c.x, c.m);
      assert.deepEqual(w, c.w);
      net.forward(w, c.x, c.m, new Rng(1));
      // bn1 normalises the depthwise output: its batch mean / variance from the reference's activations
      pattern = [];
      const act = referenceLogits({ ...spec, layers: [spec.layers[0]] }, c.w, c.x, c.m, true, 0);
      const C = 4;
      const n = act.a.length / C;
      const stateStart = net.stateStart;
      for (let j = 0; j < C; j++) {
        let mean = 0,
          v = 0;
        for (let i = j; i < act.a.length; i += C) mean += act.a[i] / n;
        for (let i = j; i < act.a.length; i += C) v += (act.a[i] - mean) ** 2 / n;
        const m0 = c.w[stateStart + j],
          v0 = c.w[stateStart + C + j];
        assert.ok(Math.abs(w[stateStart + j] - (0.99 * m0 + 0.01 * mean)) < 1e-6, `moving mean ${j}`);
        assert.ok(Math.abs(w[stateStart + C + j] - (0.99 * v0 + 0.01 * v)) < 1e-6, `moving variance ${j}`);
      }
    });
  });
}

describe('vision layer specs', () => {
  it('lays weights out as tfjs does (names, shapes, order: trainable, then moving statistics)', async () => {
    await assertTfjsWeightLayout([...NETS, ['mobilenet', builtinModel('mobilenet', [28, 28, 1], 10)]]);
  });
  it('the mobilenet model has a few hundred thousand parameters at most and runs on the engine', () => {
    const spec = builtinModel('mobilenet', [28, 28, 1], 10);
    assert.equal(seqUnsupportedReason(spec), null);
    const n = tensorSpecs(spec).reduce((a, t) => a + prod(t.shape), 0);
    assert.ok(n > 10_000 && n < 300_000, `${n} parameters`);
    assert.throws(() => builtinModel('mobilenet', [784], 10), /mobilenet model needs image inputs \[h, w, c\]/);
  });
  const base = NETS[0][1];
  const first = base.layers[0] as Extract<SeqLayer, { type: 'depthwiseconv2d' }>;
  const bad: [string, SeqNetSpec, RegExp][] = [
    ['a depthwise conv on a rank-1 input', { ...base, inputShape: [72] }, /needs an \[h, w, c\] input/],
    [
      'a depthwise kernel larger than its input',
      { ...base, layers: [{ ...first, kernelSize: 9, padding: 'valid' }, ...base.layers.slice(1)] },
      /kernel 9 is larger than its 6x6 input/,
    ],
    [
      'stride 0',
      { ...base, layers: [{ ...first, strides: 0 }, ...base.layers.slice(1)] },
      /positive integer kernel size, strides/,
    ],
    [
      'a softmax depthwise activation',
      { ...base, layers: [{ ...first, activation: 'softmax' }, ...base.layers.slice(1)] },
      /activation 'softmax' on depthwiseconv2d layer 'dw' is not supported/,
    ],
    [
      'batchnorm epsilon 0',
      {
        ...base,
        layers: [first, { type: 'batchnorm', name: 'b', momentum: 0.99, epsilon: 0 }, ...base.layers.slice(2)],
      },
      /epsilon > 0/,
    ],
    [
      'batchnorm momentum 2',
      {
        ...base,
        layers: [first, { type: 'batchnorm', name: 'b', momentum: 2, epsilon: 1e-3 }, ...base.layers.slice(2)],
      },
      /0 <= momentum <= 1/,
    ],
    [
      'gap2d on a vector',
      { ...base, layers: [{ type: 'flatten', name: 'f' }, { type: 'globalavgpool2d', name: 'g' }, out(2)] },
      /globalavgpool2d layer 'g' needs an \[h, w, c\] input/,
    ],
  ];
  for (const [what, spec, re] of bad)
    it(`rejects ${what}`, () => assert.match(seqUnsupportedReason(spec) ?? 'accepted', re));
});

// ---------- against stock tfjs ----------

const weightsOf = (model: tf.LayersModel): Float32Array =>
  Float32Array.from(model.weights.flatMap((w) => Array.from(w.read().dataSync())));

describe('vision layers against tfjs (tfjs-cpu)', () => {
  for (const [what, spec] of NETS) {
    it(`same predictions, training-mode gradients and moving statistics: ${what}`, async (t) => {
      await ensureTfjs();
      const model = await tfjsModelOf(spec);
      try {
        const c = makeCase(spec, 8, 21);
        setModelWeights(model, c.w);
        const net = new SeqNet(spec, jsKernels);
        const pdiff = tfjsPredictionDiff(model, net, c);
        const w = Float32Array.from(c.w);
        const g = new Float32Array(net.numParams);
        net.gradient(w, c.x, c.y, c.m, g, new Rng(1));
        const tg = tfjsGradient(model, spec, c); // its training pass moves tfjs's moving statistics too
        const gdiff = maxAbsDiff(g, tg);
        const sdiff = maxAbsDiff(w, weightsOf(model));
        t.diagnostic(
          `max |engine - tfjs|: predictions ${pdiff.toExponential(2)}, gradients ${gdiff.toExponential(2)}, ` +
            `weights after the training pass ${sdiff.toExponential(2)}`,
        );
        assert.ok(pdiff <= 1e-5, `predictions differ by ${pdiff}`);
        assert.ok(gdiff <= 1e-5 + 1e-4 * Math.max(...Array.from(tg, Math.abs)), `gradients differ by ${gdiff}`);
        assert.ok(sdiff <= 1e-6, `moving statistics differ by ${sdiff}`);
        assert.ok(maxAbsDiff(w, c.w) > 1e-4, 'the training pass moved the moving statistics');
      } finally {
        model.dispose();
      }
    });
  }
});

// ---------- the tfjs Keras format, both ways ----------

const root = mkdtempSync(join(tmpdir(), 'edgefed-vision-layers-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** A toy image task global pooling can learn: horizontal (0) or vertical (1) stripes, random phase, noise. */
function toyImages(n: number, s: number, seed: number): Dataset {
  const r = prng(seed);
  const x = new Float32Array(n * s * s);
  const y = Int32Array.from({ length: n }, () => (r() < 0.5 ? 0 : 1));
  for (let b = 0; b < n; b++) {
    const phase = r() * 2 * Math.PI;
    for (let i = 0; i < s; i++)
      for (let j = 0; j < s; j++) {
        const t = y[b] === 0 ? i : j;
        x[(b * s + i) * s + j] = 0.5 + 0.4 * Math.sin(phase + (t * Math.PI) / 2) + 0.2 * (r() - 0.5);
      }
  }
  return { source: 'toy-images', n, featureShape: [s, s, 1], x, y, numClasses: 2 };
}

describe('tfjs Keras format round trip with vision layers', () => {
  it('a MobileNet-style model trained by the engine loads in stock tfjs and predicts within 1e-5', async (t) => {
    await ensureTfjs();
    const spec: ModelSpec = { ...builtinModel('mobilenet', [12, 12, 1], 2), optimizer: { name: 'adam', lr: 0.01 } };
    const data = toyImages(256, 12, 4);
    const trainer = new EngineTrainer(spec, jsKernels);
    const w0 = initialWeights(tensorSpecs(spec), new Rng(1));
    const cfg = { epochs: 6, batchSize: 32, optimizer: spec.optimizer, proxMu: 0, seed: 1 };
    const { weights: w, metrics } = await trainer.train(w0, data, cfg);
    const ev = await trainer.evaluate(w, data);
    t.diagnostic(`training accuracy (batch statistics) ${metrics.accuracy}, evaluation ${ev.accuracy}`);
    assert.ok(ev.accuracy > 0.7, `the engine learned the toy task (accuracy ${ev.accuracy})`);
    const stateStart = new SeqNet(spec, jsKernels).stateStart;
    assert.ok(maxAbsDiff(w.subarray(stateStart), w0.subarray(stateStart)) > 1e-3, 'moving statistics moved');
    const theirs = await stockPredictionsOfSaved(spec, w, mkdtempSync(join(root, 'saved-')), data.x, 256);
    const diff = maxAbsDiff(theirs, await trainer.predict(w, data.x, 256));
    t.diagnostic(`accuracy ${ev.accuracy}; max |stock tfjs - engine| probability ${diff.toExponential(2)}`);
    assert.ok(diff <= 1e-5, `predictions differ by ${diff}`);
  });

  it("a user's stock tfjs model.json (depthwise, separable, batchnorm, gap2d) trains on the engine", async () => {
    const user = stockTf.sequential();
    user.add(
      stockTf.layers.depthwiseConv2d({
        name: 'dw',
        kernelSize: 3,
        depthMultiplier: 2,
        strides: 2,
        padding: 'same',
        activation: 'relu',
        inputShape: [8, 8, 1],
      }),
    );
    user.add(stockTf.layers.batchNormalization({ name: 'bn1' }));
    user.add(stockTf.layers.separableConv2d({ name: 'sep', filters: 6, kernelSize: 3, activation: 'relu' }));
    user.add(stockTf.layers.batchNormalization({ name: 'bn2', momentum: 0.9 }));
    user.add(stockTf.layers.globalAveragePooling2d({ name: 'gap' }));
    user.add(stockTf.layers.dense({ name: 'out', units: 2, activation: 'softmax' }));
    try {
      const types = ['depthwiseconv2d', 'batchnorm', 'separableconv2d', 'batchnorm', 'globalavgpool2d', 'dense'];
      await checkStockModelOnEngine(user, mkdtempSync(join(root, 'user-')), types, toyImages(64, 8, 9));
    } finally {
      user.dispose();
    }
  });
});
