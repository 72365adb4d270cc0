// The sequence layers of SeqNet (Conv1D, GRU, LSTM, GlobalAveragePooling1D, LayerNormalization,
// Embedding) against: an independent float64 reference written from the Keras definitions (gradients by
// central finite differences, so backpropagation through time is checked), stock tfjs gradients of the
// same model and weights, and the tfjs Keras format both ways (our saved model in stock tfjs; a user's
// tfjs model.json trained on the engine). On the JS kernels, and native and wasm when built.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as stockTf from '@tensorflow/tfjs';
import type { Kernels } from './kernels.js';
import { jsKernels } from './kernels-js.js';
import { SeqNet, seqUnsupportedReason, type SeqLayer, type SeqNetSpec } from './seqnet.js';
import { FlatOptimizer } from './optimizer.js';
import { Rng } from '../core/rng.js';
import { initialWeights, tensorSpecs, type ModelSpec } from '../model/spec.js';
import { ensureTfjs, setModelWeights } from '../model/tfjs.js';
import type { Dataset } from '../data/types.js';
import { prng, rand } from '../../test/support/kernels.js';
import {
  assertTfjsWeightLayout,
  checkAgainstFiniteDifferences,
  checkStockModelOnEngine,
  KERNELS,
  maxAbsDiff,
  prod,
  randomCase,
  stockPredictionsOfSaved,
  tfjsGradient,
  tfjsModelOf,
  tfjsPredictionDiff,
  type Case,
} from '../../test/support/seqnet-checks.js';

// ---------- an independent float64 reference, one example at a time, from the Keras definitions ----------

type Vec = number[];
type Seq = number[][]; // [step][feature]
type RnnLayer = Extract<SeqLayer, { returnSequences: boolean }>;

/** Kinks a finite difference must not cross: ReLU signs and hardSigmoid's clip region, in visit order. */
let pattern: number[] = [];

function fn(name: string, v: number): number {
  switch (name) {
    case 'relu':
      pattern.push(v > 0 ? 1 : 0);
      return Math.max(0, v);
    case 'tanh':
      return Math.tanh(v);
    case 'sigmoid':
      return 1 / (1 + Math.exp(-v));
    case 'hardSigmoid': {
      const y = 0.2 * v + 0.5;
      pattern.push(y <= 0 ? 0 : y >= 1 ? 2 : 1);
      return Math.min(1, Math.max(0, y));
    }
    default:
      return v;
  }
}

/** w[off + r * cols + c] as a reader of the flat weights. */
const at = (w: ArrayLike<number>, off: number, cols: number) => (r: number, c: number) => w[off + r * cols + c];

/** The kernel [F, G] and recurrent kernel [U, G] readers and bias offset of G = gates * U columns at off. */
function recurrentWeights(w: ArrayLike<number>, off: number, F: number, U: number, gates: number) {
  const G = gates * U;
  return { K: at(w, off, G), R: at(w, off + F * G, G), bias: off + F * G + U * G, used: F * G + U * G + G };
}

/** Column col of the gates before activation: bias + x K + hIn R. */
function gateInput(
  w: ArrayLike<number>,
  bias: number,
  K: (r: number, c: number) => number,
  R: (r: number, c: number) => number,
  x: Vec,
  hIn: Vec,
  col: number,
): number {
  let s = w[bias + col];
  for (let f = 0; f < x.length; f++) s += x[f] * K(f, col);
  for (let u = 0; u < hIn.length; u++) s += hIn[u] * R(u, col);
  return s;
}

function gruRef(l: RnnLayer, xs: Seq, w: ArrayLike<number>, off: number): { out: Seq; used: number } {
  const U = l.units;
  const { K, R, bias, used } = recurrentWeights(w, off, xs[0].length, U, 3);
  let h: Vec = new Array(U).fill(0);
  const out: Seq = [];
  for (const x of xs) {
    const gate = (g: number, j: number, hIn: Vec) => gateInput(w, bias, K, R, x, hIn, g * U + j);
    const z = h.map((_, j) => fn(l.recurrentActivation, gate(0, j, h)));
    const r = h.map((_, j) => fn(l.recurrentActivation, gate(1, j, h)));
    const rh = h.map((v, j) => r[j] * v);
    const hh = h.map((_, j) => fn(l.activation, gate(2, j, rh)));
    h = h.map((v, j) => z[j] * v + (1 - z[j]) * hh[j]);
    out.push(h);
  }
  return { out: l.returnSequences ? out : [h], used };
}

function lstmRef(l: RnnLayer, xs: Seq, w: ArrayLike<number>, off: number): { out: Seq; used: number } {
  const U = l.units;
  const { K, R, bias, used } = recurrentWeights(w, off, xs[0].length, U, 4);
  let h: Vec = new Array(U).fill(0);
  let c: Vec = new Array(U).fill(0);
  const out: Seq = [];
  for (const x of xs) {
    const pre = (g: number, j: number) => gateInput(w, bias, K, R, x, h, g * U + j);
    const i = h.map((_, j) => fn(l.recurrentActivation, pre(0, j)));
    const f = h.map((_, j) => fn(l.recurrentActivation, pre(1, j)));
    const cc = h.map((_, j) => fn(l.activation, pre(2, j)));
    const o = h.map((_, j) => fn(l.recurrentActivation, pre(3, j)));
    c = c.map((v, j) => f[j] * v + i[j] * cc[j]);
    h = c.map((v, j) => o[j] * fn(l.activation, v));
    out.push(h);
  }
  return { out: l.returnSequences ? out : [h], used };
}

/** Forward one example; a is [step][feature] (rank-1 activations are one step). */
function referenceExample(spec: SeqNetSpec, w: ArrayLike<number>, x: Float32Array): Vec {
  let a: Seq;
  let rank = spec.inputShape.length;
  if (rank === 1) a = [Array.from(x)];
  else
    a = Array.from({ length: spec.inputShape[0] }, (_, t) =>
      Array.from(x.subarray(t * spec.inputShape[1], (t + 1) * spec.inputShape[1])),
    );
  let off = 0;
  for (const l of spec.layers) {
    switch (l.type) {
      case 'embedding': {
        const ids = a[0];
        a = ids.map((id) => Array.from({ length: l.outputDim }, (_, j) => w[off + id * l.outputDim + j]));
        off += l.inputDim * l.outputDim;
        rank = 2;
        break;
      }
      case 'conv1d': {
        const T = a.length,
          C = a[0].length,
          k = l.kernelSize;
        const pad = l.padding === 'same' ? Math.floor((k - 1) / 2) : 0;
        const outT = l.padding === 'same' ? T : T - k + 1;
        const kernel = at(w, off, l.filters); // [k, cin, filters] as (j * C + ci) x filters
        a = Array.from({ length: outT }, (_, t) =>
          Array.from({ length: l.filters }, (_, f) => {
            let s = w[off + k * C * l.filters + f];
            for (let j = 0; j < k; j++) {
              const src = t + j - pad;
              if (src < 0 || src >= T) continue;
              for (let ci = 0; ci < C; ci++) s += a[src][ci] * kernel(j * C + ci, f);
            }
            return fn(l.activation, s);
          }),
        );
        off += k * C * l.filters + l.filters;
        break;
      }
      case 'gru':
      case 'lstm': {
        const r = l.type === 'gru' ? gruRef(l, a, w, off) : lstmRef(l, a, w, off);
        a = r.out;
        off += r.used;
        rank = l.returnSequences ? 2 : 1;
        break;
      }
      case 'globalavgpool1d':
        a = [a[0].map((_, f) => a.reduce((s, row) => s + row[f], 0) / a.length)];
        rank = 1;
        break;
      case 'layernorm': {
        const F = a[0].length;
        a = a.map((row) => {
          const mean = row.reduce((s, v) => s + v, 0) / F;
          const v = row.reduce((s, x) => s + (x - mean) ** 2, 0) / F;
          return row.map((x, j) => (w[off + j] * (x - mean)) / Math.sqrt(v + l.epsilon) + w[off + F + j]);
        });
        off += 2 * F;
        break;
      }
      case 'flatten':
        a = [a.flat()];
        rank = 1;
        break;
      case 'dense': {
        assert.equal(rank, 1);
        const fanIn = a[0].length;
        const row = a[0];
        a = [
          Array.from({ length: l.units }, (_, j) => {
            let s = w[off + fanIn * l.units + j];
            for (let p = 0; p < fanIn; p++) s += row[p] * w[off + p * l.units + j];
            return l.activation === 'softmax' ? s : fn(l.activation, s);
          }),
        ];
        off += fanIn * l.units + l.units;
        break;
      }
      default:
        throw new Error(`reference has no ${l.type}`);
    }
  }
  return a[0];
}

function reference(
  spec: SeqNetSpec,
  w: ArrayLike<number>,
  x: Float32Array,
  y: Int32Array | Float32Array,
  m: number,
): { loss: number; pattern: number[] } {
  pattern = [];
  const inSize = prod(spec.inputShape);
  let loss = 0;
  for (let b = 0; b < m; b++) {
    const out = referenceExample(spec, w, x.subarray(b * inSize, (b + 1) * inSize));
    const n = out.length;
    if (spec.loss === 'mse') {
      for (let j = 0; j < n; j++) loss += (out[j] - y[b * n + j]) ** 2 / n;
    } else {
      const max = Math.max(...out);
      const sum = out.reduce((s, v) => s + Math.exp(v - max), 0);
      loss += max + Math.log(sum) - out[y[b]];
    }
  }
  return { loss: loss / m, pattern };
}

// ---------- test networks ----------

const rnn = (
  type: 'gru' | 'lstm',
  name: string,
  units: number,
  returnSequences: boolean,
  recurrentActivation: 'sigmoid' | 'hardSigmoid' = 'sigmoid',
  activation: 'tanh' | 'relu' = 'tanh',
): SeqLayer => ({ type, name, units, activation, recurrentActivation, returnSequences });
const dense = (name: string, units: number, activation: 'softmax' | 'linear' | 'relu'): SeqLayer => ({
  type: 'dense',
  name,
  units,
  activation,
});

const NETS: [string, SeqNetSpec, number][] = [
  [
    '[5,3] conv1d 4x3 same relu, gru 6 sequences, lstm 4, dense softmax 3',
    {
      inputShape: [5, 3],
      loss: 'sparse_categorical_crossentropy',
      layers: [
        { type: 'conv1d', name: 'c1', filters: 4, kernelSize: 3, activation: 'relu', padding: 'same' },
        rnn('gru', 'g1', 6, true),
        rnn('lstm', 'l1', 4, false),
        dense('out', 3, 'softmax'),
      ],
    },
    0,
  ],
  [
    '[6,2] layernorm, lstm 5 sequences hardSigmoid, global average pool, dense linear (mse)',
    {
      inputShape: [6, 2],
      loss: 'mse',
      layers: [
        { type: 'layernorm', name: 'ln', epsilon: 1e-3 },
        rnn('lstm', 'l1', 5, true, 'hardSigmoid'),
        { type: 'globalavgpool1d', name: 'gap' },
        dense('out', 1, 'linear'),
      ],
    },
    0,
  ],
  [
    '[7] embedding 10x4, conv1d 3x2 valid tanh, gru 5 hardSigmoid, layernorm, dense softmax 2',
    {
      inputShape: [7],
      loss: 'sparse_categorical_crossentropy',
      layers: [
        { type: 'embedding', name: 'emb', inputDim: 10, outputDim: 4 },
        { type: 'conv1d', name: 'c1', filters: 3, kernelSize: 2, activation: 'tanh', padding: 'valid' },
        rnn('gru', 'g1', 5, false, 'hardSigmoid'),
        { type: 'layernorm', name: 'ln', epsilon: 1e-3 },
        dense('out', 2, 'softmax'),
      ],
    },
    10,
  ],
  [
    '[4,3] gru 3 sequences relu, flatten, dense relu 4, dense linear 2 (mse)',
    {
      inputShape: [4, 3],
      loss: 'mse',
      layers: [
        rnn('gru', 'g1', 3, true, 'sigmoid', 'relu'),
        { type: 'flatten', name: 'flatten' },
        dense('d', 4, 'relu'),
        dense('out', 2, 'linear'),
      ],
    },
    0,
  ],
];

const EPS = 1e-5;
/**
 * |fd - g| <= ABS + REL |g|: the reference is float64 (central difference error ~1e-10), the engine
 * float32 (rounding through T steps of recurrences: worst seen ~1e-6, printed below). Gradient entries are
 * 1e-3..1e-1, so a wrong gate order, a missing recurrent term or an off-by-one step fails by far more.
 */
const ABS = 2e-5;
const REL = 2e-3;

function checkGradient(k: Kernels, c: Case, what: string): number {
  const net = new SeqNet(c.spec, k);
  const g = new Float32Array(net.numParams).fill(NaN);
  const r = net.gradient(c.w, c.x, c.y, c.m, g);
  const lossAt = (w: ArrayLike<number>) => reference(c.spec, w, c.x, c.y, c.m);
  const tol = { eps: EPS, abs: ABS, rel: REL, minNonZero: 1 / 3 };
  return checkAgainstFiniteDifferences(c, g, r.loss / c.m, net.stateStart, lossAt, tol, what).worst;
}

for (const [kname, k] of KERNELS) {
  describe(`sequence layers: gradient vs finite differences (${kname} kernels)`, () => {
    for (const [what, spec, vocab] of NETS) {
      it(what, (t) => {
        const worst = checkGradient(k, randomCase(spec, 3, 11, vocab), what);
        t.diagnostic(`worst |fd - g| ${worst.toExponential(2)}`);
      });
    }
    it('the gradient is the mean of the per-example gradients (m = 4 vs four m = 1 calls)', () => {
      const [, spec, vocab] = NETS[0];
      const c = randomCase(spec, 4, 5, vocab);
      const net = new SeqNet(spec, k);
      const g = new Float32Array(net.numParams);
      net.gradient(c.w, c.x, c.y, 4, g);
      const sum = new Float64Array(net.numParams);
      const gi = new Float32Array(net.numParams);
      const inSize = prod(spec.inputShape);
      for (let b = 0; b < 4; b++) {
        net.gradient(c.w, c.x.subarray(b * inSize), (c.y as Int32Array).subarray(b), 1, gi);
        for (let i = 0; i < gi.length; i++) sum[i] += gi[i] / 4;
      }
      assert.ok(maxAbsDiff(g, sum) < 1e-6);
    });
  });
}

describe('sequence layer specs', () => {
  it('lays weights out as tfjs does (names, shapes, order)', () => assertTfjsWeightLayout(NETS));
  const base = NETS[0][1];
  const bad: [string, SeqNetSpec, RegExp][] = [
    ['a gru on a rank-1 input', { ...base, inputShape: [15] }, /needs a \[steps, features\] input/],
    [
      'an unknown recurrent activation',
      { ...base, layers: [rnn('gru', 'g', 3, false, 'relu' as never), dense('o', 2, 'softmax')] },
      /recurrent activation 'relu'.*not supported/,
    ],
    [
      'an embedding after another layer',
      {
        ...base,
        layers: [
          rnn('gru', 'g', 3, true),
          { type: 'embedding', name: 'e', inputDim: 3, outputDim: 2 },
          dense('o', 2, 'softmax'),
        ],
      },
      /must be the first layer/,
    ],
    [
      'a conv1d kernel longer than the sequence',
      {
        ...base,
        layers: [
          { type: 'conv1d', name: 'c', filters: 2, kernelSize: 9, activation: 'relu', padding: 'valid' },
          { type: 'flatten', name: 'f' },
          dense('o', 2, 'softmax'),
        ],
      },
      /kernel 9 is longer than its 5 steps/,
    ],
    [
      'layernorm epsilon 0',
      {
        ...base,
        layers: [{ type: 'layernorm', name: 'ln', epsilon: 0 }, rnn('gru', 'g', 3, false), dense('o', 2, 'softmax')],
      },
      /needs epsilon > 0/,
    ],
  ];
  for (const [what, spec, re] of bad)
    it(`rejects ${what}`, () => assert.match(seqUnsupportedReason(spec) ?? 'accepted', re));
  it('an embedding index out of range is a clear error naming the example and step', () => {
    const [, spec] = NETS[2];
    const net = new SeqNet(spec, jsKernels);
    const x = new Float32Array(14).fill(1);
    x[9] = 10;
    assert.throws(
      () => net.forward(new Float32Array(net.numParams), x, 2),
      /input 9 \(example 1, step 2\) is 10; indices must be whole numbers from 0 to 9/,
    );
  });
});

// ---------- against stock tfjs ----------

describe('sequence layers against tfjs (tfjs-cpu)', () => {
  for (const [what, spec, vocab] of NETS) {
    it(`same predictions and gradients: ${what}`, async (t) => {
      await ensureTfjs();
      const model = await tfjsModelOf(spec);
      try {
        const c = randomCase(spec, 8, 21, vocab);
        setModelWeights(model, c.w);
        const net = new SeqNet(spec, jsKernels);
        const pdiff = tfjsPredictionDiff(model, net, c);
        const g = new Float32Array(net.numParams);
        net.gradient(c.w, c.x, c.y, c.m, g);
        const tg = tfjsGradient(model, spec, c);
        const gdiff = maxAbsDiff(g, tg);
        t.diagnostic(`max |engine - tfjs|: predictions ${pdiff.toExponential(2)}, gradients ${gdiff.toExponential(2)}`);
        // float32 both, sums in another order: 1e-5 absolute is ~100x the rounding seen
        assert.ok(pdiff <= 1e-5, `predictions differ by ${pdiff}`);
        assert.ok(gdiff <= 1e-5 + 1e-4 * Math.max(...Array.from(tg, Math.abs)), `gradients differ by ${gdiff}`);
      } finally {
        model.dispose();
      }
    });
  }
});

// ---------- the tfjs Keras format, both ways ----------

const root = mkdtempSync(join(tmpdir(), 'edgefed-seq-layers-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** A toy sequence task: does the sum of the sequence's first feature exceed 0? */
function toyData(n: number, T: number, F: number, seed: number): Dataset {
  const r = prng(seed);
  const x = rand(n * T * F, r);
  const y = Int32Array.from({ length: n }, (_, b) => {
    let s = 0;
    for (let t = 0; t < T; t++) s += x[(b * T + t) * F];
    return s > 0 ? 1 : 0;
  });
  return { source: 'toy', n, featureShape: [T, F], x, y, numClasses: 2 };
}

describe('tfjs Keras format round trip with sequence layers', () => {
  it('a GRU / LSTM model trained by the engine loads in stock tfjs and predicts within 1e-5', async (t) => {
    await ensureTfjs();
    const spec: ModelSpec = {
      name: 'seq',
      inputShape: [8, 2],
      loss: 'sparse_categorical_crossentropy',
      optimizer: { name: 'adam', lr: 0.01 },
      layers: [
        { type: 'conv1d', name: 'c1', filters: 4, kernelSize: 3, activation: 'relu', padding: 'same' },
        { type: 'layernorm', name: 'ln', epsilon: 1e-3 },
        rnn('gru', 'g1', 8, true, 'hardSigmoid'),
        rnn('lstm', 'l1', 6, true, 'hardSigmoid'),
        { type: 'globalavgpool1d', name: 'gap' },
        dense('out', 2, 'softmax'),
      ],
    };
    const data = toyData(256, 8, 2, 4);
    const w0 = initialWeights(tensorSpecs(spec), new Rng(1));
    const net = new SeqNet(spec, jsKernels);
    const w = Float32Array.from(w0);
    const g = new Float32Array(net.numParams);
    const opt = new FlatOptimizer(spec.optimizer, jsKernels, net.numParams);
    for (let epoch = 0; epoch < 3; epoch++) {
      for (let b = 0; b < 256; b += 32) {
        net.gradient(w, data.x.subarray(b * 16, (b + 32) * 16), (data.y as Int32Array).subarray(b, b + 32), 32, g);
        opt.step(w, g);
      }
    }
    const ev = net.evaluate(w, data.x, data.y, 256);
    assert.ok(ev.correct / 256 > 0.7, `the engine learned the toy task (accuracy ${ev.correct / 256})`);
    const theirs = await stockPredictionsOfSaved(spec, w, mkdtempSync(join(root, 'saved-')), data.x, 256);
    const diff = maxAbsDiff(theirs, net.predict(w, data.x, 256));
    t.diagnostic(`accuracy ${ev.correct / 256}; max |stock tfjs - engine| probability ${diff.toExponential(2)}`);
    assert.ok(diff <= 1e-5, `predictions differ by ${diff}`);
  });

  it("a user's stock tfjs model.json (embedding, conv1d, lstm, gru) trains on the engine", async () => {
    const user = stockTf.sequential();
    user.add(stockTf.layers.embedding({ name: 'emb', inputDim: 12, outputDim: 4, inputShape: [6] }));
    user.add(stockTf.layers.conv1d({ name: 'conv', filters: 5, kernelSize: 3, padding: 'valid', activation: 'relu' }));
    user.add(stockTf.layers.lstm({ name: 'lstm', units: 6, returnSequences: true }));
    user.add(stockTf.layers.gru({ name: 'gru', units: 4 }));
    user.add(stockTf.layers.dense({ name: 'out', units: 3, activation: 'softmax' }));
    try {
      const r = prng(9);
      const n = 64;
      const x = Float32Array.from({ length: n * 6 }, () => Math.floor(r() * 12));
      const y = Int32Array.from({ length: n }, (_, b) => x[b * 6] % 3);
      const data: Dataset = { source: 'user-seq', n, featureShape: [6], x, y, numClasses: 3 };
      const types = ['embedding', 'conv1d', 'lstm', 'gru', 'dense'];
      await checkStockModelOnEngine(user, mkdtempSync(join(root, 'user-')), types, data);
    } finally {
      user.dispose();
    }
  });
});
