// Both Kernels implementations against plain float64 references written out here, against each other,
// and on bad input. The native block runs only when the addon is built (node scripts/build-native.mjs).
import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import type { Kernels } from './kernels.js';
import { jsKernels } from './kernels-js.js';
import { loadNativeKernels, nativeKernelsInfo } from './kernels-native.js';
import { getKernels } from './kernels-select.js';
import { prng, rand, native as loadedNative, nativeSkip } from '../../test/support/kernels.js';

// A local const, so TypeScript keeps its narrowing inside the suites' closures.
const native = loadedNative;

// ---------- helpers ----------

const GUARD = 12345.5;

/** `data` copied into a subarray at `offset` of a larger buffer whose other elements are guards. */
function view(data: Float32Array, offset: number): { v: Float32Array; guardsIntact: () => boolean } {
  const base = new Float32Array(offset + data.length + 3).fill(GUARD);
  const v = base.subarray(offset, offset + data.length);
  v.set(data);
  return {
    v,
    guardsIntact: () => {
      for (let i = 0; i < base.length; i++)
        if ((i < offset || i >= offset + data.length) && base[i] !== GUARD) return false;
      return true;
    },
  };
}

/** Asserts |actual[i] - expected[i]| <= tol(i) for every i, naming the first element that is not. */
function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: (i: number) => number,
  what: string,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= tol(i)))
      assert.fail(`${what}: element ${i} is ${actual[i]}, expected ${expected[i]} (|diff| ${d} > ${tol(i)})`);
  }
}

/** Plain float64 gemm with, per element, the sum of |terms| that bounds float32 rounding error. */
function refGemm(
  ta: boolean,
  tb: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  b: Float32Array,
  beta: number,
  c: Float32Array,
): { out: Float64Array; mag: Float64Array } {
  const out = new Float64Array(m * n);
  const mag = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      let sa = 0;
      for (let p = 0; p < k; p++) {
        const av = ta ? a[p * m + i] : a[i * k + p];
        const bv = tb ? b[j * k + p] : b[p * n + j];
        s += av * bv;
        sa += Math.abs(av * bv);
      }
      const cv = beta === 0 ? 0 : beta * c[i * n + j];
      out[i * n + j] = alpha * s + cv;
      mag[i * n + j] = Math.abs(alpha) * sa + Math.abs(cv);
    }
  }
  return { out, mag };
}

/**
 * gemm tolerance: float32 accumulation errs by about eps * sqrt(k) * sum|terms| (worst k * eps), so the
 * bound scales with the magnitude of the terms, not the result, which may cancel to near zero.
 */
const gemmTol = (mag: Float64Array) => (i: number) => 1e-5 + 1e-5 * mag[i];

function checkGemm(
  k: Kernels,
  ta: boolean,
  tb: boolean,
  m: number,
  n: number,
  kk: number,
  alpha: number,
  beta: number,
  seed: number,
): void {
  const r = prng(seed);
  const a = view(rand(m * kk, r), 3);
  const b = view(rand(kk * n, r), 5);
  const c = view(rand(m * n, r), 1);
  const ref = refGemm(ta, tb, m, n, kk, alpha, a.v, b.v, beta, c.v);
  k.gemm(ta, tb, m, n, kk, alpha, a.v, b.v, beta, c.v);
  const what = `gemm(${ta}, ${tb}, m=${m}, n=${n}, k=${kk}, alpha=${alpha}, beta=${beta})`;
  assertClose(c.v, ref.out, gemmTol(ref.mag), what);
  assert.ok(a.guardsIntact() && b.guardsIntact() && c.guardsIntact(), `${what} wrote outside its views`);
}

function refSoftmaxXent(logits: Float32Array, labels: Int32Array, m: number, n: number, scale: number) {
  const delta = new Float64Array(m * n);
  const rowLoss: number[] = [];
  let correct = 0;
  for (let i = 0; i < m; i++) {
    const row = Array.from(logits.subarray(i * n, (i + 1) * n));
    const max = Math.max(...row);
    if (row.indexOf(max) === labels[i]) correct++;
    const sum = row.reduce((s, x) => s + Math.exp(x - max), 0);
    rowLoss.push(max + Math.log(sum) - row[labels[i]]);
    for (let j = 0; j < n; j++) delta[i * n + j] = (Math.exp(row[j] - max) / sum - (j === labels[i] ? 1 : 0)) * scale;
  }
  return { delta, loss: rowLoss.reduce((s, x) => s + x, 0), correct };
}

// ---------- the suite both implementations run ----------

function kernelSuite(k: Kernels): void {
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [1, 1, 5],
    [3, 5, 7],
    [7, 3, 5],
    [1, 9, 4],
    [6, 1, 8],
    [5, 4, 1],
    [17, 33, 65],
  ];
  const coefficients: [number, number][] = [
    [1, 0],
    [0.5, -2],
    [1, 1],
    [-1.5, 0.25],
  ];

  describe('gemm', () => {
    for (const ta of [false, true]) {
      for (const tb of [false, true]) {
        it(`transA=${ta} transB=${tb}: shapes incl. 1-sized and non-square, alpha/beta, offset views`, () => {
          let seed = 1;
          for (const [m, n, kk] of shapes) {
            for (const [alpha, beta] of coefficients) checkGemm(k, ta, tb, m, n, kk, alpha, beta, seed++);
          }
        });
      }
    }

    it('property: random small shapes, transposes and coefficients match the float64 reference', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 12 }),
          fc.integer({ min: 1, max: 12 }),
          fc.integer({ min: 1, max: 24 }),
          fc.boolean(),
          fc.boolean(),
          fc.double({ min: -2, max: 2, noNaN: true }),
          fc.oneof(fc.constant(0), fc.constant(1), fc.double({ min: -2, max: 2, noNaN: true })),
          fc.integer({ min: 0, max: 0x7fffffff }),
          (m, n, kk, ta, tb, alpha, beta, seed) => checkGemm(k, ta, tb, m, n, kk, alpha, beta, seed),
        ),
        { numRuns: 300 },
      );
    });

    it('beta = 0 overwrites C without reading it (NaN in C does not leak)', () => {
      const c = new Float32Array(4).fill(NaN);
      k.gemm(false, false, 2, 2, 2, 1, new Float32Array([1, 2, 3, 4]), new Float32Array([5, 6, 7, 8]), 0, c);
      assert.deepEqual(Array.from(c), [19, 22, 43, 50]);
    });

    it('alpha = 0 and k = 0 only scale C by beta; m = 0 or n = 0 is a no-op', () => {
      const c = new Float32Array([1, 2, 3, 4]);
      k.gemm(false, false, 2, 2, 2, 0, new Float32Array(4).fill(NaN), new Float32Array(4), 3, c);
      assert.deepEqual(Array.from(c), [3, 6, 9, 12]);
      k.gemm(true, true, 2, 2, 0, 1, new Float32Array(0), new Float32Array(0), 0.5, c);
      assert.deepEqual(Array.from(c), [1.5, 3, 4.5, 6]);
      k.gemm(false, false, 2, 2, 0, 1, new Float32Array(0), new Float32Array(0), 0, c);
      assert.deepEqual(Array.from(c), [0, 0, 0, 0]);
      k.gemm(false, false, 0, 3, 2, 1, new Float32Array(0), new Float32Array(6), 0, new Float32Array(0));
      k.gemm(false, false, 3, 0, 2, 1, new Float32Array(6), new Float32Array(0), 0, new Float32Array(0));
    });
  });

  describe('elementwise', () => {
    for (const relu of [false, true]) {
      it(`biasAct relu=${relu}: float32-exact, in place on an offset view`, () => {
        for (const [m, n] of [
          [1, 1],
          [4, 7],
          [9, 33],
        ]) {
          const r = prng(m * 100 + n);
          const c0 = rand(m * n, r, -2, 2);
          const bias = view(rand(n, r), 2);
          const c = view(c0, 4);
          k.biasAct(c.v, bias.v, m, n, relu);
          const want = new Float32Array(m * n);
          for (let i = 0; i < m; i++) {
            for (let j = 0; j < n; j++) {
              const x = Math.fround(c0[i * n + j] + bias.v[j]);
              want[i * n + j] = relu && x < 0 ? 0 : x;
            }
          }
          assert.deepEqual(c.v, want);
          assert.ok(c.guardsIntact() && bias.guardsIntact());
        }
      });
    }

    it('reluBackward zeroes delta where act <= 0 (incl. 0 and -0), exactly', () => {
      const act = new Float32Array([1, 0, -0, -2, 3.5, 1e-30, -1e-30, 7, 99]); // longer than delta: allowed
      const d0 = new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]);
      const d = view(d0, 3);
      k.reluBackward(d.v, act);
      assert.deepEqual(Array.from(d.v), [1, 0, 0, 0, 5, 6, 0, 8]);
      assert.ok(d.guardsIntact());
    });

    it('colSum sums the rows (overwriting out); m = 0 gives zeros', () => {
      for (const [m, n] of [
        [1, 1],
        [13, 9],
        [64, 10],
      ]) {
        const a = rand(m * n, prng(m + n), -3, 3);
        const out = view(new Float32Array(n).fill(7), 2);
        k.colSum(a, m, n, out.v);
        const want = new Float64Array(n);
        const mag = new Float64Array(n);
        for (let i = 0; i < m; i++)
          for (let j = 0; j < n; j++) {
            want[j] += a[i * n + j];
            mag[j] += Math.abs(a[i * n + j]);
          }
        // Float32 running sums: error grows with m and the magnitude summed.
        assertClose(out.v, want, (j) => 1e-6 + 1e-6 * mag[j], `colSum m=${m} n=${n}`);
        assert.ok(out.guardsIntact());
      }
      const out = new Float32Array([5, 5]);
      k.colSum(new Float32Array(0), 0, 2, out);
      assert.deepEqual(Array.from(out), [0, 0]);
    });
  });

  describe('softmaxXent', () => {
    it('loss, delta and correct match the float64 reference', () => {
      const m = 6,
        n = 10,
        scale = 1 / 6;
      const r = prng(42);
      const logits = view(rand(m * n, r, -5, 5), 1);
      const labels = Int32Array.from({ length: m }, () => Math.floor(r() * n));
      labels[0] = logits.v.subarray(0, n).indexOf(Math.max(...logits.v.subarray(0, n))); // at least one correct
      const delta = view(new Float32Array(m * n), 2);
      const got = k.softmaxXent(logits.v, labels, m, n, scale, delta.v);
      const ref = refSoftmaxXent(logits.v, labels, m, n, scale);
      assert.ok(Math.abs(got.loss - ref.loss) <= 1e-9 * (1 + Math.abs(ref.loss)), `loss ${got.loss} vs ${ref.loss}`);
      assert.equal(got.correct, ref.correct);
      assert.ok(ref.correct >= 1);
      assertClose(delta.v, ref.delta, () => 1e-7, 'delta'); // |delta| <= scale, float32 rounding ~1e-8
      assert.ok(logits.guardsIntact() && delta.guardsIntact());
    });

    it('argmax ties: the first maximum wins', () => {
      const logits = new Float32Array([1, 3, 3, 0, 1, 3, 3, 0]);
      const got = k.softmaxXent(logits, new Int32Array([1, 2]), 2, 4, 1, new Float32Array(8));
      assert.equal(got.correct, 1);
    });

    it('is stable for logits around +-1000', () => {
      const logits = new Float32Array([1000, 0, -1000, 1000, 1000, 999, -1000, -1000, -1000, 1000, -1000, 0]);
      const labels = new Int32Array([0, 1, 2, 1]);
      const delta = new Float32Array(12);
      const got = k.softmaxXent(logits, labels, 4, 3, 0.25, delta);
      // Row losses: ~0, log(2 + e^-1), log 3, and 1000 - (-1000) = 2000 for the confidently wrong row.
      const want = 0 + Math.log(2 + Math.exp(-1)) + Math.log(3) + 2000;
      assert.ok(Number.isFinite(got.loss) && Math.abs(got.loss - want) <= 1e-9 * want, `loss ${got.loss} vs ${want}`);
      // Only row 0 is right: in rows 1 and 2 the first of the tied maxima (index 0) is not the label.
      assert.equal(got.correct, 1);
      const ref = refSoftmaxXent(logits, labels, 4, 3, 0.25);
      assertClose(delta, ref.delta, () => 1e-7, 'delta');
      for (let i = 0; i < 4; i++) {
        assert.ok(Math.abs(delta[3 * i] + delta[3 * i + 1] + delta[3 * i + 2]) <= 1e-7, `row ${i} of delta sums to 0`);
      }
    });

    it('works in place (delta === logits)', () => {
      const logits = rand(15, prng(7), -4, 4);
      const labels = new Int32Array([4, 0, 2]);
      const separate = new Float32Array(15);
      const a = k.softmaxXent(logits, labels, 3, 5, 0.5, separate);
      const inPlace = logits.slice();
      const b = k.softmaxXent(inPlace, labels, 3, 5, 0.5, inPlace);
      assert.deepEqual(b, a);
      assert.deepEqual(inPlace, separate);
    });
  });

  describe('optimizers', () => {
    it('adam over 3 steps matches the float64 reference', () => {
      const len = 37,
        lr = 0.01,
        b1 = 0.9,
        b2 = 0.999,
        eps = 1e-7;
      const r = prng(3);
      const w = rand(len, r),
        m = new Float32Array(len),
        v = new Float32Array(len);
      const rw = Float64Array.from(w),
        rm = new Float64Array(len),
        rv = new Float64Array(len);
      for (let step = 1; step <= 3; step++) {
        const g = rand(len, r, -2, 2);
        k.adam(w, g, m, v, lr, b1, b2, eps, step);
        for (let i = 0; i < len; i++) {
          rm[i] = b1 * rm[i] + (1 - b1) * g[i];
          rv[i] = b2 * rv[i] + (1 - b2) * g[i] * g[i];
          const mhat = rm[i] / (1 - b1 ** step),
            vhat = rv[i] / (1 - b2 ** step);
          rw[i] -= (lr * mhat) / (Math.sqrt(vhat) + eps);
        }
      }
      // Only float32 storage of w, m, v separates the two: relative 1e-6 is ~10 ulp.
      assertClose(w, rw, (i) => 1e-6 * (1 + Math.abs(rw[i])), 'adam w');
      assertClose(m, rm, (i) => 1e-6 * (1e-3 + Math.abs(rm[i])), 'adam m');
      assertClose(v, rv, (i) => 1e-6 * (1e-3 + Math.abs(rv[i])), 'adam v');
    });

    it('sgd without momentum: w -= lr g, float32-exact; vel may be null', () => {
      const r = prng(5);
      const w = rand(20, r),
        g = rand(20, r);
      const want = w.map((x, i) => Math.fround(x - 0.1 * g[i]));
      k.sgd(w, g, 0.1, 0, null);
      assert.deepEqual(w, want);
    });

    it('sgd with momentum over 3 steps: v = mu v + g; w -= lr v', () => {
      const r = prng(6);
      const len = 25,
        lr = 0.05,
        mu = 0.9;
      const w = rand(len, r),
        vel = view(new Float32Array(len), 1);
      const rw = Float64Array.from(w),
        rv = new Float64Array(len);
      for (let s = 0; s < 3; s++) {
        const g = rand(len, r);
        k.sgd(w, g, lr, mu, vel.v);
        for (let i = 0; i < len; i++) {
          rv[i] = mu * rv[i] + g[i];
          rw[i] -= lr * rv[i];
        }
      }
      assertClose(w, rw, (i) => 1e-6 * (1 + Math.abs(rw[i])), 'sgd w');
      assertClose(vel.v, rv, (i) => 1e-6 * (1 + Math.abs(rv[i])), 'sgd vel');
      assert.ok(vel.guardsIntact());
    });
  });

  describe('bad input throws a clear error and writes nothing', () => {
    const f = (n: number) => new Float32Array(n);
    const bad = (v: unknown) => v as Float32Array;

    it('gemm', () => {
      assert.throws(() => k.gemm(false, false, 2, 2, 2, 1, bad(new Float64Array(4)), f(4), 0, f(4)), {
        name: 'TypeError',
        message: 'gemm: a must be a Float32Array, got Float64Array',
      });
      assert.throws(() => k.gemm(false, false, 2, 2, 2, 1, f(4), bad([1, 2, 3, 4]), 0, f(4)), {
        name: 'TypeError',
        message: 'gemm: b must be a Float32Array, got Array',
      });
      assert.throws(() => k.gemm(false, false, 2, 2, 2, 1, f(4), f(4), 0, bad(null)), {
        name: 'TypeError',
        message: 'gemm: c must be a Float32Array, got null',
      });
      assert.throws(() => k.gemm(false, false, 2, 3, 2, 1, f(4), f(6), 0, f(5)), {
        name: 'RangeError',
        message: 'gemm: c has 5 elements, needs at least 6 (m*n)',
      });
      assert.throws(() => k.gemm(true, false, 3, 2, 2, 1, f(5), f(4), 0, f(6)), {
        name: 'RangeError',
        message: 'gemm: a has 5 elements, needs at least 6 (m*k)',
      });
      assert.throws(() => k.gemm(false, true, 2, 2, 3, 1, f(6), f(5).subarray(1), 0, f(4)), {
        name: 'RangeError',
        message: 'gemm: b has 4 elements, needs at least 6 (k*n)',
      });
      assert.throws(() => k.gemm(false, false, -1, 2, 2, 1, f(4), f(4), 0, f(4)), {
        name: 'RangeError',
        message: /^gemm: m must be a non-negative integer, got -1$/,
      });
      assert.throws(() => k.gemm(false, false, 2, 1.5, 2, 1, f(4), f(4), 0, f(4)), {
        name: 'RangeError',
        message: /^gemm: n must be a non-negative integer, got 1.5$/,
      });
      assert.throws(() => k.gemm(bad('yes') as unknown as boolean, false, 2, 2, 2, 1, f(4), f(4), 0, f(4)), {
        name: 'TypeError',
        message: 'gemm: transA must be a boolean, got string',
      });
      const buf = f(8);
      assert.throws(() => k.gemm(false, false, 2, 2, 2, 1, buf.subarray(0, 4), f(4), 0, buf.subarray(2, 6)), {
        name: 'RangeError',
        message: 'gemm: c must not overlap a or b',
      });
      assert.deepEqual(buf, f(8));
    });

    it('biasAct, reluBackward, colSum', () => {
      assert.throws(() => k.biasAct(f(6), f(2), 2, 3, false), {
        name: 'RangeError',
        message: 'biasAct: bias has 2 elements, needs at least 3 (n)',
      });
      assert.throws(() => k.biasAct(f(5), f(3), 2, 3, true), {
        name: 'RangeError',
        message: 'biasAct: c has 5 elements, needs at least 6 (m*n)',
      });
      assert.throws(() => k.biasAct(bad(new Int32Array(6)), f(3), 2, 3, true), {
        name: 'TypeError',
        message: 'biasAct: c must be a Float32Array, got Int32Array',
      });
      assert.throws(() => k.reluBackward(f(4), f(3)), {
        name: 'RangeError',
        message: 'reluBackward: act has 3 elements, needs at least 4 (delta.length)',
      });
      assert.throws(() => k.colSum(f(6), 2, 3, f(2)), {
        name: 'RangeError',
        message: 'colSum: out has 2 elements, needs at least 3 (n)',
      });
      assert.throws(() => k.colSum(f(6), 2, 3, bad(undefined)), {
        name: 'TypeError',
        message: 'colSum: out must be a Float32Array, got undefined',
      });
    });

    it('softmaxXent: label out of range, wrong label type, short arrays', () => {
      const delta = f(6).fill(9);
      for (const l of [-1, 3]) {
        assert.throws(() => k.softmaxXent(f(6), new Int32Array([0, l]), 2, 3, 1, delta), {
          name: 'RangeError',
          message: `softmaxXent: labels[1] = ${l} is out of range [0, 3)`,
        });
      }
      assert.deepEqual(delta, f(6).fill(9)); // checked before any row is written
      assert.throws(() => k.softmaxXent(f(6), new Float32Array(2) as unknown as Int32Array, 2, 3, 1, delta), {
        name: 'TypeError',
        message: 'softmaxXent: labels must be an Int32Array, got Float32Array',
      });
      assert.throws(() => k.softmaxXent(f(6), new Int32Array(1), 2, 3, 1, delta), {
        name: 'RangeError',
        message: 'softmaxXent: labels has 1 elements, needs at least 2 (m)',
      });
      assert.throws(() => k.softmaxXent(f(6), new Int32Array(2), 2, 3, 1, f(5)), {
        name: 'RangeError',
        message: 'softmaxXent: delta has 5 elements, needs at least 6 (m*n)',
      });
    });

    it('adam and sgd', () => {
      assert.throws(() => k.adam(f(4), f(3), f(4), f(4), 0.1, 0.9, 0.999, 1e-7, 1), {
        name: 'RangeError',
        message: 'adam: g has 3 elements, needs at least 4 (w.length)',
      });
      assert.throws(() => k.adam(f(4), f(4), f(4), f(4), 0.1, 0.9, 0.999, 1e-7, 0), {
        name: 'RangeError',
        message: 'adam: step must be a positive integer, got 0',
      });
      assert.throws(() => k.sgd(f(4), f(4), 0.1, 0.9, null), {
        name: 'TypeError',
        message: 'sgd: vel must be a Float32Array when momentum > 0, got null',
      });
      assert.throws(() => k.sgd(f(4), f(4), 0.1, 0.9, f(3)), {
        name: 'RangeError',
        message: 'sgd: vel has 3 elements, needs at least 4 (w.length)',
      });
      assert.throws(() => k.sgd(f(4), f(4), bad('0.1') as unknown as number, 0, null), {
        name: 'TypeError',
        message: 'sgd: lr must be a number, got string',
      });
      assert.throws(() => k.sgd(f(4), f(4), 0.1, -1, null), {
        name: 'RangeError',
        message: /^sgd: momentum must be >= 0, got -1$/,
      });
    });
  });
}

// ---------- registration ----------

describe('kernels: js (TypeScript)', () => {
  it('is named js', () => assert.equal(jsKernels.name, 'js'));
  kernelSuite(jsKernels);
});

if (native) {
  describe('kernels: native (OpenBLAS)', () => {
    it('is named native-openblas and runs OpenBLAS on one thread', () => {
      assert.equal(native.name, 'native-openblas');
      assert.equal(nativeKernelsInfo()?.threads, 1);
    });
    kernelSuite(native);
  });

  describe('kernels: native and js agree', () => {
    const both = <T>(run: (k: Kernels) => T): [T, T] => [run(native), run(jsKernels)];

    it('gemm at training size (32 x 128 x 784), all transposes', () => {
      const m = 32,
        n = 128,
        kk = 784;
      const r = prng(11);
      const a = rand(m * kk, r),
        b = rand(kk * n, r),
        c0 = rand(m * n, r);
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          const [x, y] = both((k) => {
            const c = c0.slice();
            k.gemm(ta, tb, m, n, kk, 0.7, a, b, 0.3, c);
            return c;
          });
          const ref = refGemm(ta, tb, m, n, kk, 0.7, a, b, 0.3, c0);
          assertClose(x, y, gemmTol(ref.mag), `native vs js gemm(${ta}, ${tb})`);
        }
      }
    });

    it('elementwise kernels give identical bits', () => {
      const r = prng(12);
      const m = 50,
        n = 37;
      const c0 = rand(m * n, r, -2, 2),
        bias = rand(n, r);
      for (const relu of [false, true]) {
        const [x, y] = both((k) => {
          const c = c0.slice();
          k.biasAct(c, bias, m, n, relu);
          return c;
        });
        assert.deepEqual(x, y);
      }
      const act = c0.map((v) => v - 0.5);
      const [d1, d2] = both((k) => {
        const d = c0.slice();
        k.reluBackward(d, act);
        return d;
      });
      assert.deepEqual(d1, d2);
      const [s1, s2] = both((k) => {
        const o = new Float32Array(n);
        k.colSum(c0, m, n, o);
        return o;
      });
      assert.deepEqual(s1, s2);
      const g = rand(m * n, r);
      const [w1, w2] = both((k) => {
        const w = c0.slice(),
          vel = new Float32Array(m * n);
        for (let s = 0; s < 3; s++) {
          k.sgd(w, g, 0.05, 0.9, vel);
          k.sgd(w, g, 0.05, 0, null);
        }
        return [w, vel];
      });
      assert.deepEqual(w1, w2);
    });

    it('softmaxXent and adam agree to rounding', () => {
      const r = prng(13);
      const m = 64,
        n = 10;
      const logits = rand(m * n, r, -8, 8),
        labels = Int32Array.from({ length: m }, () => Math.floor(r() * n));
      const [x, y] = both((k) => {
        const d = new Float32Array(m * n);
        return { ...k.softmaxXent(logits, labels, m, n, 1 / m, d), d };
      });
      assert.equal(x.correct, y.correct);
      assert.ok(Math.abs(x.loss - y.loss) <= 1e-12 * Math.abs(y.loss), `loss ${x.loss} vs ${y.loss}`);
      assertClose(x.d, y.d, () => 1e-9, 'softmax delta');
      const w0 = rand(1000, r),
        g = rand(1000, r);
      const [a1, a2] = both((k) => {
        const w = w0.slice(),
          mm = new Float32Array(1000),
          v = new Float32Array(1000);
        for (let s = 1; s <= 5; s++) k.adam(w, g, mm, v, 0.001, 0.9, 0.999, 1e-7, s);
        return w;
      });
      assertClose(a1, a2, (i) => 1e-7 * Math.abs(a2[i]), 'adam w');
    });
  });
} else {
  test('kernels: native (OpenBLAS)', { skip: nativeSkip }, () => {});
}

describe('getKernels', () => {
  function withEnv<T>(value: string | undefined, run: () => T): T {
    const saved = process.env.EDGEFED_KERNELS;
    if (value === undefined) delete process.env.EDGEFED_KERNELS;
    else process.env.EDGEFED_KERNELS = value;
    try {
      return run();
    } finally {
      if (saved === undefined) delete process.env.EDGEFED_KERNELS;
      else process.env.EDGEFED_KERNELS = saved;
    }
  }

  it("'js' gives the TypeScript kernels; 'auto' gives native when built, else js", () => {
    withEnv(undefined, () => {
      assert.equal(getKernels('js'), jsKernels);
      const nativeAvailable = loadNativeKernels() !== null;
      assert.equal(getKernels().name, nativeAvailable ? 'native-openblas' : 'js');
      assert.equal(getKernels('auto').name, nativeAvailable ? 'native-openblas' : 'js');
    });
  });

  it("'native' gives the addon, or a clear error when it is not built", () => {
    withEnv(undefined, () => {
      if (loadNativeKernels()) assert.equal(getKernels('native').name, 'native-openblas');
      else
        assert.throws(
          () => getKernels('native'),
          /native kernels requested \(getKernels\('native'\)\) but unavailable: .*build-native/,
        );
    });
  });

  it('EDGEFED_KERNELS overrides the preference and is validated', () => {
    withEnv('js', () => {
      assert.equal(getKernels('native'), jsKernels);
      assert.equal(loadNativeKernels(), null);
    });
    withEnv('native', () => {
      if (loadNativeKernels()) assert.equal(getKernels('js').name, 'native-openblas');
      else assert.throws(() => getKernels('js'), /native kernels requested \(EDGEFED_KERNELS=native\) but unavailable/);
    });
    withEnv('gpu', () =>
      assert.throws(() => getKernels(), /EDGEFED_KERNELS must be one of native, wasm, js, auto; got 'gpu'/),
    );
  });

  it('kernels-js.ts stays browser-safe (imports only the interface and the shared checks)', () => {
    const src = readFileSync(new URL('./kernels-js.ts', import.meta.url), 'utf8');
    // Whole statements, whitespace folded: the formatter may break a long import over lines.
    const imports = (src.match(/^import\b[\s\S]*?;$/gm) ?? []).map((i) =>
      i.replace(/\s+/g, ' ').replace(/,\s*}/, ' }'),
    );
    assert.deepEqual(imports, [
      "import type { Kernels } from './kernels.js';",
      "import { checkAdam, checkBiasAct, checkColSum, checkGemm, checkReluBackward, checkSgd, checkSoftmaxXent, gemmWithoutProducts } from './kernel-checks.js';",
    ]);
    assert.ok(!/\brequire\(|\bprocess\.|from 'node:/.test(src));
    const checks = readFileSync(new URL('./kernel-checks.ts', import.meta.url), 'utf8');
    assert.deepEqual(checks.match(/^\s*import\b.*$/gm) ?? [], [], 'kernel-checks.ts imports nothing');
    assert.ok(!/\brequire\(|\bprocess\.|from 'node:/.test(checks));
  });
});

describe('selectKernels', () => {
  it('reaches the wasm kernels by preference or EDGEFED_KERNELS=wasm, and getKernels points there', async () => {
    const { selectKernels } = await import('./kernels-select.js');
    const { loadWasmKernelsNode } = await import('./kernels-wasm-node.js');
    if (!(await loadWasmKernelsNode())) return; // not built: covered by kernels-wasm.test.ts skipping
    assert.equal((await selectKernels('wasm')).name, 'wasm-simd');
    const saved = process.env.EDGEFED_KERNELS;
    process.env.EDGEFED_KERNELS = 'wasm';
    try {
      assert.equal((await selectKernels()).name, 'wasm-simd');
      assert.throws(() => getKernels(), /use selectKernels/);
    } finally {
      if (saved === undefined) delete process.env.EDGEFED_KERNELS;
      else process.env.EDGEFED_KERNELS = saved;
    }
  });
});
