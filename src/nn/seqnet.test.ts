// SeqNet (the engine for conv / pool / dropout / dense networks) against: naive loops for its data
// movement (im2col, col2im, max pooling), central finite differences of an independent float64
// reference implementation for its gradients, and stock tfjs (tfjs-cpu) for training and prediction.
// Runs on the JS kernels, and on the native and wasm kernels when they are built.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Kernels } from './kernels.js';
import type { Activation } from './dense.js';
import { jsKernels } from './kernels-js.js';
import type { WasmKernels } from './kernels-wasm.js';
import { col2im, convGeom, im2col, maxPoolBackward, maxPoolForward, poolGeom, type ConvGeom } from './conv-ops.js';
import { SeqNet, seqTensorSpecs, seqUnsupportedReason, type SeqLayer, type SeqNetSpec } from './seqnet.js';
import { FlatOptimizer } from './optimizer.js';
import { Rng } from '../core/rng.js';
import { builtinModel, initialWeights, tensorSpecs, type ModelSpec } from '../model/spec.js';
import { buildTfjsModel, ensureTfjs, setModelWeights, tf } from '../model/tfjs.js';
import { TfjsTrainer } from '../model/tfjs-trainer.js';
import { loadMnist } from '../data/mnist.js';
import { subset } from '../data/types.js';
import { prng, rand, native } from '../../test/support/kernels.js';
import {
  checkAgainstFiniteDifferences,
  KERNELS,
  maxAbsDiff,
  prod,
  randomCase,
  wasm,
  type Case,
} from '../../test/support/seqnet-checks.js';

// ---------- helpers ----------

// ---------- an independent float64 reference: Keras semantics written out as direct loops ----------

interface RefResult {
  /** Mean loss over the batch. */
  loss: number;
  /** Output layer values before softmax. */
  logits: Float64Array;
  /** Every ReLU's on/off state and every pool window's argmax: a finite difference is valid only if these do not change. */
  pattern: number[];
}

function act(v: number, a: string): number {
  return a === 'relu' ? Math.max(0, v) : a === 'sigmoid' ? 1 / (1 + Math.exp(-v)) : a === 'tanh' ? Math.tanh(v) : v;
}

/** Dropout masks (0 or 1 / (1 - rate) in float32) as SeqNet draws them: layer by layer, element by element. */
function dropoutMasks(spec: SeqNetSpec, m: number, seed: number): Float64Array[] {
  const rng = new Rng(seed);
  const masks: Float64Array[] = [];
  let shape = [...spec.inputShape];
  for (const l of spec.layers) {
    if (l.type === 'flatten') shape = [prod(shape)];
    else if (l.type === 'dense') shape = [l.units];
    else if (l.type === 'conv2d')
      shape =
        l.padding === 'same'
          ? [shape[0], shape[1], l.filters]
          : [shape[0] - l.kernelSize + 1, shape[1] - l.kernelSize + 1, l.filters];
    else if (l.type === 'maxpool2d')
      shape = [Math.floor(shape[0] / l.poolSize), Math.floor(shape[1] / l.poolSize), shape[2]];
    else if (l.type === 'dropout' && l.rate > 0) {
      const mask = new Float64Array(m * prod(shape));
      const scale = Math.fround(1 / (1 - l.rate));
      for (let j = 0; j < mask.length; j++) mask[j] = rng.nextU32() >= l.rate * 4294967296 ? scale : 0;
      masks.push(mask);
    }
  }
  return masks;
}

function reference(
  spec: SeqNetSpec,
  w: ArrayLike<number>,
  x: Float32Array,
  y: Int32Array | Float32Array,
  m: number,
  masks: Float64Array[] | null,
): RefResult {
  let a = Float64Array.from(x.subarray(0, m * prod(spec.inputShape)));
  let shape = [...spec.inputShape];
  let off = 0;
  let drop = 0;
  const pattern: number[] = [];
  for (const l of spec.layers) {
    switch (l.type) {
      case 'flatten':
        shape = [prod(shape)];
        break;
      case 'dense': {
        const fanIn = shape[0];
        const out = new Float64Array(m * l.units);
        for (let b = 0; b < m; b++) {
          for (let j = 0; j < l.units; j++) {
            let s = w[off + fanIn * l.units + j];
            for (let p = 0; p < fanIn; p++) s += a[b * fanIn + p] * w[off + p * l.units + j];
            if (l.activation === 'relu') pattern.push(s > 0 ? 1 : 0);
            out[b * l.units + j] = l.activation === 'softmax' ? s : act(s, l.activation);
          }
        }
        off += fanIn * l.units + l.units;
        a = out;
        shape = [l.units];
        break;
      }
      case 'conv2d': {
        const [h, wd, c] = shape;
        const k = l.kernelSize;
        const F = l.filters;
        const pad = l.padding === 'same' ? Math.floor((k - 1) / 2) : 0; // TensorFlow: the odd pixel goes after
        const oh = l.padding === 'same' ? h : h - k + 1;
        const ow = l.padding === 'same' ? wd : wd - k + 1;
        const out = new Float64Array(m * oh * ow * F);
        for (let b = 0; b < m; b++) {
          for (let r = 0; r < oh; r++) {
            for (let q = 0; q < ow; q++) {
              for (let f = 0; f < F; f++) {
                let s = w[off + k * k * c * F + f];
                for (let i = 0; i < k; i++) {
                  for (let j = 0; j < k; j++) {
                    const ir = r + i - pad,
                      iq = q + j - pad;
                    if (ir < 0 || ir >= h || iq < 0 || iq >= wd) continue;
                    for (let ci = 0; ci < c; ci++)
                      s += a[((b * h + ir) * wd + iq) * c + ci] * w[off + ((i * k + j) * c + ci) * F + f];
                  }
                }
                if (l.activation === 'relu') pattern.push(s > 0 ? 1 : 0);
                out[((b * oh + r) * ow + q) * F + f] = act(s, l.activation);
              }
            }
          }
        }
        off += k * k * c * F + F;
        a = out;
        shape = [oh, ow, F];
        break;
      }
      case 'maxpool2d': {
        const [h, wd, c] = shape;
        const p = l.poolSize;
        const oh = Math.floor(h / p),
          ow = Math.floor(wd / p);
        const out = new Float64Array(m * oh * ow * c);
        for (let b = 0; b < m; b++) {
          for (let r = 0; r < oh; r++) {
            for (let q = 0; q < ow; q++) {
              for (let ci = 0; ci < c; ci++) {
                let best = -Infinity;
                let at = -1;
                for (let i = 0; i < p; i++) {
                  for (let j = 0; j < p; j++) {
                    const v = a[((b * h + r * p + i) * wd + q * p + j) * c + ci];
                    if (v > best) {
                      best = v;
                      at = i * p + j;
                    }
                  }
                }
                pattern.push(at);
                out[((b * oh + r) * ow + q) * c + ci] = best;
              }
            }
          }
        }
        a = out;
        shape = [oh, ow, c];
        break;
      }
      case 'dropout':
        if (l.rate > 0 && masks) {
          const mask = masks[drop++];
          a = a.map((v, i) => v * mask[i]);
        }
        break;
    }
  }
  const n = shape[0];
  let loss = 0;
  for (let b = 0; b < m; b++) {
    if (spec.loss === 'mse') {
      for (let j = 0; j < n; j++) loss += (a[b * n + j] - y[b * n + j]) ** 2 / n;
    } else {
      let max = -Infinity;
      for (let j = 0; j < n; j++) max = Math.max(max, a[b * n + j]);
      let sum = 0;
      for (let j = 0; j < n; j++) sum += Math.exp(a[b * n + j] - max);
      loss += max + Math.log(sum) - a[b * n + y[b]];
    }
  }
  return { loss: loss / m, logits: a, pattern };
}

// ---------- test networks ----------

const L = {
  conv: (
    name: string,
    filters: number,
    kernelSize: number,
    activation: Activation,
    padding: 'same' | 'valid',
  ): SeqLayer => ({ type: 'conv2d', name, filters, kernelSize, activation, padding }),
  pool: (name: string, poolSize: number): SeqLayer => ({ type: 'maxpool2d', name, poolSize }),
  dense: (name: string, units: number, activation: Activation): SeqLayer => ({
    type: 'dense',
    name,
    units,
    activation,
  }),
  flatten: { type: 'flatten', name: 'flatten' } as SeqLayer,
  dropout: (name: string, rate: number): SeqLayer => ({ type: 'dropout', name, rate }),
};

/** 6x6x2, conv 3x3x3 same relu, pool 2, conv 2x2x4 valid tanh, flatten, dense 3 softmax. */
const convNet: SeqNetSpec = {
  inputShape: [6, 6, 2],
  loss: 'sparse_categorical_crossentropy',
  layers: [
    L.conv('c1', 3, 3, 'relu', 'same'),
    L.pool('p1', 2),
    L.conv('c2', 4, 2, 'tanh', 'valid'),
    L.flatten,
    L.dense('out', 3, 'softmax'),
  ],
};

/** The same with dropout after the pool and a hidden dense layer with dropout. */
const dropNet = (rate: number): SeqNetSpec => ({
  inputShape: [6, 6, 2],
  loss: 'sparse_categorical_crossentropy',
  layers: [
    L.conv('c1', 3, 3, 'relu', 'same'),
    L.pool('p1', 2),
    L.dropout('d1', rate),
    L.conv('c2', 4, 2, 'tanh', 'valid'),
    L.flatten,
    L.dense('h', 5, 'relu'),
    L.dropout('d2', rate),
    L.dense('out', 3, 'softmax'),
  ],
});

/**
 * 5x7x1 (not square), conv 4x4x2 same sigmoid (even kernel: 1 pixel of padding before, 2 after),
 * conv 3x3x2 same linear, pool 2 (floor: 5x7 -> 2x3), flatten, dense 4 relu, dense 2 linear, mse.
 */
const mseNet: SeqNetSpec = {
  inputShape: [5, 7, 1],
  loss: 'mse',
  layers: [
    L.conv('c1', 2, 4, 'sigmoid', 'same'),
    L.conv('c2', 2, 3, 'linear', 'same'),
    L.pool('p1', 2),
    L.flatten,
    L.dense('h', 4, 'relu'),
    L.dense('out', 2, 'linear'),
  ],
};

/** Finite-difference step on the float64 reference; small enough that few probes cross a ReLU kink or a pool switch. */
const EPS = 1e-5;
/**
 * |fd - g| <= ABS + REL |g|. The reference is float64, so the central difference errs by ~1e-10; the
 * engine's float32 gradient by rounding: worst seen 5e-7 on these nets (diagnostics below), so ABS
 * leaves a margin of 20x. Gradient entries are 1e-3..1e-1, so a wrong index, sign or padding fails by
 * far more: checked by breaking conv-ops.ts / seqnet.ts on purpose (odd 'same' pixel before instead of
 * after, no conv activation backward, dropout backward without the mask, col2im overwriting instead
 * of accumulating, pool argmax left at the window corner, chunked kernel gradient not accumulated):
 * each fails here.
 */
const ABS = 1e-5;
const REL = 1e-3;

/**
 * SeqNet's gradient against central differences of the reference loss for every parameter (except those
 * whose +-EPS probe changes a ReLU state or a pool argmax: the loss has a kink there). Returns the worst error.
 */
function checkGradient(k: Kernels, c: Case, what: string, dropSeed?: number): { worst: number; skipped: number } {
  const net = new SeqNet(c.spec, k);
  const g = new Float32Array(net.numParams).fill(NaN); // gradient() must overwrite all of g
  const masks = dropSeed === undefined ? null : dropoutMasks(c.spec, c.m, dropSeed);
  const r = net.gradient(c.w, c.x, c.y, c.m, g, dropSeed === undefined ? undefined : new Rng(dropSeed));
  const lossAt = (w: ArrayLike<number>) => reference(c.spec, w, c.x, c.y, c.m, masks);
  const tol = { eps: EPS, abs: ABS, rel: REL, minNonZero: 1 / 2 };
  return checkAgainstFiniteDifferences(c, g, r.loss / c.m, net.stateStart, lossAt, tol, what);
}

// ---------- data movement against naive loops ----------

describe('im2col / col2im', () => {
  const geoms: [string, ConvGeom][] = [
    ['same, 3x3, 6x6x2', convGeom(6, 6, 2, 3, 'same')],
    ['same, even 4x4 kernel, 5x7x3 (1 pixel of padding before, 2 after)', convGeom(5, 7, 3, 4, 'same')],
    ['valid, 2x2, 5x4x3', convGeom(5, 4, 3, 2, 'valid')],
    ['same, 5x5, 28x28x1 (wider kernel than stride of the padding)', convGeom(28, 28, 1, 5, 'same')],
    ['valid, kernel as large as the image', convGeom(3, 3, 2, 3, 'valid')],
  ];
  for (const [what, g] of geoms) {
    it(`match naive loops: ${what}`, () => {
      if (g.outH === g.h) assert.equal(g.padTop, Math.floor((g.kh - 1) / 2)); // 'same'
      const m = 2;
      const r = prng(g.h * 100 + g.kh);
      const x = rand(m * g.h * g.w * g.c, r);
      const colLen = g.kh * g.kw * g.c;
      const rows = m * g.outH * g.outW;
      const cols = new Float32Array(rows * colLen).fill(NaN); // every entry must be written
      im2col(g, x, m, cols);
      const want = new Float32Array(rows * colLen);
      const dx = new Float32Array(x.length); // float32 sums in col2im's order: exactly its result
      const dcols = rand(rows * colLen, r);
      for (let b = 0; b < m; b++) {
        for (let oh = 0; oh < g.outH; oh++) {
          for (let ow = 0; ow < g.outW; ow++) {
            const row = (b * g.outH + oh) * g.outW + ow;
            for (let i = 0; i < g.kh; i++) {
              for (let j = 0; j < g.kw; j++) {
                for (let c = 0; c < g.c; c++) {
                  const col = (i * g.kw + j) * g.c + c;
                  const ih = oh + i - g.padTop,
                    iw = ow + j - g.padLeft;
                  if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
                  const xi = ((b * g.h + ih) * g.w + iw) * g.c + c;
                  want[row * colLen + col] = x[xi];
                  dx[xi] += dcols[row * colLen + col];
                }
              }
            }
          }
        }
      }
      assert.deepEqual(cols, want);
      const got = new Float32Array(x.length).fill(NaN); // overwritten, not accumulated into
      col2im(g, dcols, m, got);
      assert.deepEqual(got, dx);
    });
  }
});

describe('max pooling', () => {
  it('forward matches naive loops, drops the rows and columns that do not fill a window (floor)', () => {
    const g = poolGeom(5, 7, 3, 2);
    assert.deepEqual([g.outH, g.outW], [2, 3]);
    const m = 2;
    const x = rand(m * 5 * 7 * 3, prng(1));
    const out = new Float32Array(m * 2 * 3 * 3);
    const argmax = new Int32Array(out.length);
    maxPoolForward(g, x, m, out, argmax);
    for (let b = 0; b < m; b++) {
      for (let r = 0; r < 2; r++) {
        for (let q = 0; q < 3; q++) {
          for (let c = 0; c < 3; c++) {
            let best = -Infinity;
            let at = -1;
            for (let i = 0; i < 2; i++) {
              for (let j = 0; j < 2; j++) {
                const xi = ((b * 5 + 2 * r + i) * 7 + 2 * q + j) * 3 + c;
                if (x[xi] > best) {
                  best = x[xi];
                  at = xi;
                }
              }
            }
            const o = ((b * 2 + r) * 3 + q) * 3 + c;
            assert.equal(out[o], best);
            assert.equal(argmax[o], at);
          }
        }
      }
    }
  });

  it('backward routes each output gradient to its argmax (the first of equal maxima) and nothing elsewhere', () => {
    // One 4x5x1 image, pool 2: windows [[1, 3], [3, 0]], [[-1, -2], [-3, -1]], [[0, 0], [0, 0]], [[5, 4], [4, 5]]:
    // every one a tie, which the first maximum in row-major order wins
    const x = new Float32Array([1, 3, -1, -2, 9, 3, 0, -3, -1, 9, 0, 0, 5, 4, 9, 0, 0, 4, 5, 9]);
    const g = poolGeom(4, 5, 1, 2);
    const out = new Float32Array(4);
    const argmax = new Int32Array(4);
    maxPoolForward(g, x, 1, out, argmax);
    assert.deepEqual(Array.from(out), [3, -1, 0, 5]);
    assert.deepEqual(Array.from(argmax), [1, 2, 10, 12]);
    const dx = new Float32Array(20).fill(NaN);
    maxPoolBackward(g, new Float32Array([10, 20, 30, 40]), argmax, 1, dx);
    const want = new Float32Array(20);
    want[1] = 10;
    want[2] = 20;
    want[10] = 30;
    want[12] = 40; // the last column (9s) is outside every window
    assert.deepEqual(dx, want);
  });
});

// ---------- gradients ----------

for (const [kname, k] of KERNELS) {
  describe(`SeqNet gradient vs finite differences (${kname} kernels)`, () => {
    it('6x6x2, conv 3x3x3 same relu, pool 2, conv 2x2x4 valid tanh, flatten, dense softmax', (t) => {
      const r = checkGradient(k, randomCase(convNet, 3, 10), 'conv net');
      t.diagnostic(`worst |fd - g| ${r.worst.toExponential(2)}, ${r.skipped} parameters at a kink skipped`);
    });

    it('with dropout 0.3 after the pool and after a hidden dense layer (the mask drawn from the rng)', (t) => {
      const r = checkGradient(k, randomCase(dropNet(0.3), 3, 20), 'dropout net', 1234);
      t.diagnostic(`worst |fd - g| ${r.worst.toExponential(2)}, ${r.skipped} skipped`);
    });

    it('5x7x1, conv 4x4 same sigmoid (even kernel), conv 3x3 same linear, pool 2 (floor), dense relu, dense linear, mse', (t) => {
      const r = checkGradient(k, randomCase(mseNet, 2, 30), 'mse net');
      t.diagnostic(`worst |fd - g| ${r.worst.toExponential(2)}, ${r.skipped} skipped`);
    });

    it('m = 1, and chunked im2col (one example per chunk) gives the unchunked gradient', () => {
      checkGradient(k, randomCase(convNet, 1, 40), 'conv net m=1');
      const c = randomCase(dropNet(0.3), 5, 50);
      const whole = new SeqNet(c.spec, k);
      const chunked = new SeqNet(c.spec, k, { colsBudget: 1 });
      const g1 = new Float32Array(whole.numParams);
      const g2 = new Float32Array(whole.numParams);
      const r1 = whole.gradient(c.w, c.x, c.y, c.m, g1, new Rng(5));
      const r2 = chunked.gradient(c.w, c.x, c.y, c.m, g2, new Rng(5));
      assert.ok(Math.abs(r1.loss - r2.loss) <= 1e-6 * r1.loss);
      assert.ok(maxAbsDiff(g1, g2) <= 1e-6, `chunked gradient differs by ${maxAbsDiff(g1, g2)}`);
      assert.ok(maxAbsDiff(chunked.predict(c.w, c.x, c.m), whole.predict(c.w, c.x, c.m)) <= 1e-6);
    });
  });

  describe(`SeqNet batch semantics and dropout (${kname} kernels)`, () => {
    it('the gradient is the mean of the per-example gradients, the loss their sum; evaluate agrees', () => {
      for (const spec of [convNet, mseNet]) {
        const c = randomCase(spec, 4, 60);
        const net = new SeqNet(spec, k);
        const g = new Float32Array(net.numParams);
        const full = net.gradient(c.w, c.x, c.y, c.m, g);
        const sum = new Float64Array(net.numParams);
        const gi = new Float32Array(net.numParams);
        const f = prod(spec.inputShape);
        const outN = net.outputSize;
        let loss = 0;
        for (let i = 0; i < c.m; i++) {
          const yi = c.y instanceof Int32Array ? c.y.subarray(i, i + 1) : c.y.subarray(i * outN, (i + 1) * outN);
          loss += net.gradient(c.w, c.x.subarray(i * f, (i + 1) * f), yi, 1, gi).loss;
          for (let j = 0; j < gi.length; j++) sum[j] += gi[j];
        }
        assert.ok(Math.abs(full.loss - loss) <= 1e-5 * Math.abs(loss));
        for (let j = 0; j < g.length; j++)
          assert.ok(Math.abs(g[j] - sum[j] / c.m) <= 1e-6 + 1e-5 * Math.abs(g[j]), `parameter ${j}`);
        const e = net.evaluate(c.w, c.x, c.y, c.m);
        assert.ok(Math.abs(e.loss - full.loss) <= 1e-6 * Math.abs(full.loss));
        assert.equal(e.correct, full.correct);
      }
    });

    it('results do not depend on earlier calls with other batch sizes (buffers grow and are reused)', () => {
      const big = randomCase(convNet, 9, 70);
      const f = prod(convNet.inputShape);
      const fresh = new SeqNet(convNet, k);
      const gFresh = new Float32Array(fresh.numParams);
      const rFresh = fresh.gradient(big.w, big.x.subarray(0, 4 * f), big.y.subarray(0, 4), 4, gFresh);
      const used = new SeqNet(convNet, k);
      const g = new Float32Array(used.numParams);
      used.gradient(big.w, big.x.subarray(0, 2 * f), big.y.subarray(0, 2), 2, g);
      used.evaluate(big.w, big.x, big.y, 9);
      used.gradient(big.w, big.x, big.y, 9, g);
      const r = used.gradient(big.w, big.x.subarray(0, 4 * f), big.y.subarray(0, 4), 4, g);
      assert.equal(r.loss, rFresh.loss);
      assert.deepEqual(g, gFresh);
    });

    it('dropout rate 0 is the identity and draws nothing; rate > 0 is deterministic per seed; no rng = inference', () => {
      const c = randomCase(dropNet(0.4), 4, 80);
      const plain = new SeqNet({ ...dropNet(0), layers: dropNet(0).layers.filter((l) => l.type !== 'dropout') }, k); // no dropout layers
      const zero = new SeqNet(dropNet(0), k);
      const drop = new SeqNet(dropNet(0.4), k);
      const g0 = new Float32Array(zero.numParams);
      const gp = new Float32Array(zero.numParams);
      const rng = new Rng(9);
      const state = rng.state();
      const r0 = zero.gradient(c.w, c.x, c.y, c.m, g0, rng);
      assert.deepEqual(rng.state(), state, 'rate 0 draws no random numbers');
      const rp = plain.gradient(c.w, c.x, c.y, c.m, gp);
      assert.equal(r0.loss, rp.loss);
      assert.deepEqual(g0, gp);
      // rate 0.4: the same seed gives the same gradient, another seed another one
      const ga = new Float32Array(drop.numParams);
      const gb = new Float32Array(drop.numParams);
      const gc = new Float32Array(drop.numParams);
      const ra = drop.gradient(c.w, c.x, c.y, c.m, ga, new Rng(1));
      const rb = drop.gradient(c.w, c.x, c.y, c.m, gb, new Rng(1));
      drop.gradient(c.w, c.x, c.y, c.m, gc, new Rng(2));
      assert.equal(ra.loss, rb.loss);
      assert.deepEqual(ga, gb);
      assert.ok(maxAbsDiff(ga, gc) > 1e-3, 'another seed, another mask');
      assert.ok(maxAbsDiff(ga, g0) > 1e-3, 'dropout changes the gradient');
      // without an rng (and in evaluate / predict) dropout is the identity
      const gi = new Float32Array(drop.numParams);
      drop.gradient(c.w, c.x, c.y, c.m, gi);
      assert.deepEqual(gi, g0);
      assert.deepEqual(drop.evaluate(c.w, c.x, c.y, c.m), zero.evaluate(c.w, c.x, c.y, c.m));
      assert.deepEqual(drop.predict(c.w, c.x, c.m), zero.predict(c.w, c.x, c.m));
    });

    it('inverted dropout: a fraction `rate` of units is zeroed and the rest scaled by 1 / (1 - rate)', () => {
      // dropout, then a linear dense layer with the identity kernel: the output is dropout(x)
      const n = 200;
      const spec: SeqNetSpec = {
        inputShape: [n],
        loss: 'mse',
        layers: [L.dropout('d', 0.25), L.dense('out', n, 'linear')],
      };
      const net = new SeqNet(spec, k);
      const w = new Float32Array(net.numParams);
      for (let i = 0; i < n; i++) w[i * n + i] = 1;
      const m = 20;
      const x = rand(m * n, prng(3), 0.5, 1);
      const out = net.forward(w, x, m, new Rng(4));
      let dropped = 0;
      for (let i = 0; i < m * n; i++) {
        if (out[i] === 0) dropped++;
        else assert.ok(Math.abs(out[i] - x[i] / 0.75) <= 1e-6, `kept unit ${i}: ${out[i]} vs ${x[i] / 0.75}`);
      }
      // 4000 units, p = 0.25: mean 1000, sd 27; 5 sd either way
      assert.ok(Math.abs(dropped - 1000) <= 140, `${dropped} of 4000 dropped`);
      assert.deepEqual(net.forward(w, x, m), x, 'identity without an rng');
    });
  });
}

// ---------- wasm memory ----------

if (wasm) {
  const wk: WasmKernels = wasm;
  describe('SeqNet on the wasm kernels', () => {
    it('keeps working when wasm memory grows between calls (views are re-taken) and with weights inside wasm memory', () => {
      const c = randomCase(dropNet(0.3), 5, 90);
      const net = new SeqNet(c.spec, wk);
      const g1 = new Float32Array(net.numParams);
      const r1 = net.gradient(c.w, c.x, c.y, c.m, g1, new Rng(3));
      const gen = wk.generation;
      wk.alloc(64 << 20); // forces the memory to grow: every earlier view is detached
      assert.ok(wk.generation > gen, 'memory grew');
      const g2 = new Float32Array(net.numParams);
      const r2 = net.gradient(c.w, c.x, c.y, c.m, g2, new Rng(3));
      assert.equal(r2.loss, r1.loss);
      assert.deepEqual(g2, g1);
      // weights and gradient already in wasm memory are used in place
      const wIn = wk.alloc(net.numParams);
      wIn.set(c.w);
      const gIn = wk.alloc(net.numParams);
      const r3 = net.gradient(wIn, c.x, c.y, c.m, gIn, new Rng(3));
      assert.equal(r3.loss, r1.loss);
      assert.deepEqual(Float32Array.from(gIn), g1);
      // and agree with the JS kernels to rounding
      const gj = new Float32Array(net.numParams);
      new SeqNet(c.spec, jsKernels).gradient(c.w, c.x, c.y, c.m, gj, new Rng(3));
      assert.ok(maxAbsDiff(gj, g1) <= 1e-6 + 1e-5 * maxAbsDiff(gj, new Float32Array(gj.length)));
    });
  });
}

// ---------- specs ----------

describe('SeqNet specs', () => {
  it('lays weights out as tfjs does (tensorSpecs) for the McMahan cnn', () => {
    const cnn = builtinModel('cnn', [28, 28, 1], 10);
    assert.deepEqual(seqTensorSpecs(cnn), tensorSpecs(cnn));
    assert.equal(
      new SeqNet(cnn, jsKernels).numParams,
      5 * 5 * 32 + 32 + 5 * 5 * 32 * 64 + 64 + 7 * 7 * 64 * 512 + 512 + 512 * 10 + 10,
    );
    for (const s of [convNet, dropNet(0.5), mseNet]) assert.deepEqual(seqTensorSpecs(s), tensorSpecs(s as ModelSpec));
  });

  const bad: [string, SeqNetSpec, RegExp][] = [
    [
      'softmax on a hidden layer',
      { ...convNet, layers: [L.conv('c', 2, 3, 'softmax', 'same'), L.flatten, L.dense('o', 2, 'softmax')] },
      /softmax on hidden layer 'c'/,
    ],
    ['a dense layer on an image (no flatten)', { ...convNet, layers: [L.dense('o', 2, 'softmax')] }, /flatten first/],
    [
      'a conv on vectors',
      {
        ...convNet,
        inputShape: [10],
        layers: [L.conv('c', 2, 3, 'relu', 'same'), L.flatten, L.dense('o', 2, 'softmax')],
      },
      /needs an \[h, w, c\] input/,
    ],
    [
      'a valid kernel larger than the image',
      { ...convNet, layers: [L.conv('c', 2, 7, 'relu', 'valid'), L.flatten, L.dense('o', 2, 'softmax')] },
      /larger than its 6x6 input/,
    ],
    ['dropout rate 1', { ...convNet, layers: [L.flatten, L.dropout('d', 1), L.dense('o', 2, 'softmax')] }, /rate 1/],
    [
      'dropout rate NaN (a layer only tfjs runs)',
      { ...convNet, layers: [L.flatten, L.dropout('bn:BatchNormalization', NaN), L.dense('o', 2, 'softmax')] },
      /rate NaN/,
    ],
    [
      'an unknown layer type',
      {
        ...convNet,
        layers: [{ type: 'batchNorm', name: 'bn' } as unknown as SeqLayer, L.flatten, L.dense('o', 2, 'softmax')],
      },
      /layer type 'batchNorm'/,
    ],
    [
      'a last layer that is not dense',
      { ...convNet, layers: [L.flatten, L.dense('o', 2, 'softmax'), L.dropout('d', 0.5)] },
      /last layer must be dense/,
    ],
    [
      'mse with a softmax output',
      { ...convNet, loss: 'mse', layers: [L.flatten, L.dense('o', 2, 'softmax')] },
      /mse needs a linear output/,
    ],
    [
      'an activation the engine does not compute',
      { ...convNet, layers: [L.conv('c', 2, 3, 'elu' as Activation, 'same'), L.flatten, L.dense('o', 2, 'softmax')] },
      /activation 'elu'/,
    ],
    [
      "weights that are not the layers' kernels and biases",
      { ...convNet, tensors: [{ name: 'x', shape: [3] }] },
      /not the layers' kernels and biases/,
    ],
  ];
  for (const [what, spec, message] of bad) {
    it(`rejects ${what}`, () => {
      assert.match(seqUnsupportedReason(spec) ?? '', message);
      assert.throws(
        () => new SeqNet(spec, jsKernels),
        (e: unknown) => e instanceof Error && /engine cannot run this model/.test(e.message) && message.test(e.message),
      );
    });
  }
});

// ---------- against stock tfjs ----------

describe('SeqNet against tfjs (tfjs-cpu)', () => {
  const k = native ?? jsKernels;
  /** MNIST: conv 3x3x4 same relu, pool 2, conv 4x4x6 valid relu (even kernel), pool 2 (floor 11 -> 5), dense 32 relu, dense 10 softmax. */
  const small: ModelSpec = {
    name: 'small-cnn',
    inputShape: [28, 28, 1],
    loss: 'sparse_categorical_crossentropy',
    optimizer: { name: 'sgd', lr: 0.1 },
    layers: [
      { type: 'conv2d', name: 'conv1', filters: 4, kernelSize: 3, activation: 'relu', padding: 'same' },
      { type: 'maxpool2d', name: 'pool1', poolSize: 2 },
      { type: 'conv2d', name: 'conv2', filters: 6, kernelSize: 4, activation: 'relu', padding: 'valid' },
      { type: 'maxpool2d', name: 'pool2', poolSize: 2 },
      { type: 'flatten', name: 'flatten' },
      { type: 'dense', name: 'dense1', units: 32, activation: 'relu' },
      { type: 'dense', name: 'output', units: 10, activation: 'softmax' },
    ],
  };
  /**
   * Max |SeqNet - tfjs| over the weights after 16 SGD steps: float32 sums in another order, observed
   * ~1e-7..1e-6 (diagnostic); 1e-5 leaves 10x, and is 1000x below how far training moves the weights.
   */
  const WEIGHT_TOL = 1e-5;

  it('trains a small conv net from the same weights on the same batches (SGD) to the same weights, and tfjs predicts alike with them', async (t) => {
    await ensureTfjs();
    const mnist = loadMnist();
    const train = subset(
      mnist.train,
      Array.from({ length: 512 }, (_, i) => i),
    );
    const test = subset(
      mnist.test,
      Array.from({ length: 200 }, (_, i) => i),
    );
    const w0 = initialWeights(tensorSpecs(small), new Rng(3));
    const cfg = { epochs: 1, batchSize: 32, optimizer: { name: 'sgd' as const, lr: 0.1 }, proxMu: 0, seed: 42 };
    const tr = await TfjsTrainer.create(small);
    let tfjsWeights: Float32Array;
    try {
      tfjsWeights = (await tr.train(w0, train, cfg)).weights;
    } finally {
      tr.dispose();
    }
    // the same batches: the trainers shuffle with Rng(seed).permutation(n) per epoch
    const net = new SeqNet(small, k);
    const w = new Float32Array(w0);
    const g = new Float32Array(w.length);
    const opt = new FlatOptimizer(cfg.optimizer, k, w.length);
    const order = new Rng(cfg.seed).permutation(train.n);
    const f = 784;
    const xb = new Float32Array(32 * f);
    const yb = new Int32Array(32);
    for (let s = 0; s < train.n; s += 32) {
      for (let i = 0; i < 32; i++) {
        xb.set(train.x.subarray(order[s + i] * f, (order[s + i] + 1) * f), i * f);
        yb[i] = train.y[order[s + i]];
      }
      net.gradient(w, xb, yb, 32, g);
      opt.step(w, g);
    }
    const diff = maxAbsDiff(w, tfjsWeights);
    const moved = maxAbsDiff(w, w0);
    t.diagnostic(`16 steps: max |SeqNet - tfjs| = ${diff.toExponential(2)}, max |w - w0| = ${moved.toExponential(2)}`);
    assert.ok(moved > 1000 * WEIGHT_TOL, `training moved the weights by only ${moved}`);
    assert.ok(diff <= WEIGHT_TOL, `SeqNet and tfjs weights differ by ${diff}`);

    const model = await buildTfjsModel(small);
    try {
      setModelWeights(model, w);
      const pt = tf.tidy(
        () => (model.predict(tf.tensor(test.x, [test.n, 28, 28, 1])) as tf.Tensor).dataSync() as Float32Array,
      );
      const ps = net.predict(w, test.x, test.n);
      const pdiff = maxAbsDiff(ps, pt);
      t.diagnostic(`predictions on ${test.n} test images: max |SeqNet - tfjs| = ${pdiff.toExponential(2)}`);
      assert.ok(pdiff <= 1e-5, `predictions differ by ${pdiff}`);
    } finally {
      model.dispose();
    }
  });
});
