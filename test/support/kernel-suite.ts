/**
 * The suite every Kernels implementation runs (kernels.test.ts: JS and native; kernels-wasm.test.ts: WASM with
 * arrays inside and outside wasm memory), against plain float64 references written out here and on bad input
 * (the JS kernels' errors), with the helpers those tests share.
 */
import { describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Kernels } from '../../src/nn/kernels.js';
import { jsKernels } from '../../src/nn/kernels-js.js';
import { prng } from './kernels.js';

/** Where a suite's arrays live: `f32`/`i32` give zeroed arrays there. */
export interface Place {
  label: string;
  k: Kernels;
  f32(n: number): Float32Array;
  i32(n: number): Int32Array;
}

/** Plain typed arrays (for the WASM kernels: outside wasm memory, so copied in and out). */
export function plainArrays(k: Kernels, label = 'plain arrays'): Place {
  return { label, k, f32: (n) => new Float32Array(n), i32: (n) => new Int32Array(n) };
}

export function rand(p: Place | null, n: number, r: () => number, lo = -1, hi = 1): Float32Array {
  const out = p ? p.f32(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

export function clone(p: Place, x: Float32Array): Float32Array {
  const out = p.f32(x.length);
  out.set(x);
  return out;
}

const GUARD = 12345.5;

/** `data` copied into a subarray at `offset` of a larger array (placed by p) whose other elements are guards. */
export function view(p: Place, data: Float32Array, offset: number): { v: Float32Array; guardsIntact: () => boolean } {
  const base = p.f32(offset + data.length + 3).fill(GUARD);
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
export function assertClose(
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
export function refGemm(
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
export const gemmTol = (mag: Float64Array) => (i: number) => 1e-5 + 1e-5 * mag[i];

/** gemm on offset views with guards; pa/pb/pc place a, b and c (mixed placements allowed). */
export function checkGemm(
  k: Kernels,
  pa: Place,
  pb: Place,
  pc: Place,
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
  const a = view(pa, rand(null, m * kk, r), 3);
  const b = view(pb, rand(null, kk * n, r), 5);
  const c = view(pc, rand(null, m * n, r), 1);
  const ref = refGemm(ta, tb, m, n, kk, alpha, a.v, b.v, beta, c.v);
  k.gemm(ta, tb, m, n, kk, alpha, a.v, b.v, beta, c.v);
  const what = `gemm(${ta}, ${tb}, m=${m}, n=${n}, k=${kk}, alpha=${alpha}, beta=${beta})`;
  assertClose(c.v, ref.out, gemmTol(ref.mag), what);
  assert.ok(a.guardsIntact() && b.guardsIntact() && c.guardsIntact(), `${what} wrote outside its views`);
}

export function refSoftmaxXent(logits: Float32Array, labels: Int32Array, m: number, n: number, scale: number) {
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

/**
 * The import statements of a source file, whole and with whitespace folded (the formatter may break a long
 * import over lines), after asserting that it reads no Node API (require, process, node: modules).
 */
export function browserSafeImports(file: URL): string[] {
  const src = readFileSync(file, 'utf8');
  assert.ok(!/\brequire\(|\bprocess\.|from 'node:/.test(src), `${file.pathname} uses a Node API`);
  return (src.match(/^import\b[\s\S]*?;$/gm) ?? []).map((i) => i.replace(/\s+/g, ' ').replace(/,\s*}/, ' }'));
}

// ---------- the suite every implementation runs, for one placement of the arrays ----------

export function kernelSuite(p: Place): void {
  const k = p.k;
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
            for (const [alpha, beta] of coefficients) checkGemm(k, p, p, p, ta, tb, m, n, kk, alpha, beta, seed++);
          }
        });
      }
    }

    it('every m and n in 1..37 (full and edge 4x8 tiles), all transposes, varied k and coefficients', () => {
      for (let m = 1; m <= 37; m++) {
        for (let n = 1; n <= 37; n++) {
          const s = m * 37 + n;
          const kk = ((s * 7) % 37) + 1;
          const [alpha, beta] = coefficients[s % 4];
          checkGemm(k, p, p, p, (s & 1) === 1, (s & 2) === 2, m, n, kk, alpha, beta, s);
        }
      }
    });

    it('blocking boundaries: k across depth blocks (255..785), m > 128 rows, n > 1024 columns', () => {
      let seed = 100;
      for (const [m, n, kk] of [
        [5, 9, 255],
        [4, 8, 256],
        [6, 10, 257],
        [9, 17, 513],
        [3, 11, 785],
        [131, 13, 9],
        [3, 1031, 6],
      ]) {
        for (const ta of [false, true]) {
          for (const tb of [false, true]) checkGemm(k, p, p, p, ta, tb, m, n, kk, 0.75, seed % 2 ? 0 : 0.5, seed++);
        }
      }
    });

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
          (m, n, kk, ta, tb, alpha, beta, seed) => checkGemm(k, p, p, p, ta, tb, m, n, kk, alpha, beta, seed),
        ),
        { numRuns: 300 },
      );
    });

    it('beta = 0 overwrites C without reading it (NaN in C does not leak)', () => {
      const c = p.f32(4).fill(NaN);
      const a = p.f32(4),
        b = p.f32(4);
      a.set([1, 2, 3, 4]);
      b.set([5, 6, 7, 8]);
      k.gemm(false, false, 2, 2, 2, 1, a, b, 0, c);
      assert.deepEqual(Array.from(c), [19, 22, 43, 50]);
      // Also for edge tiles and in every transpose case.
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          const cc = p.f32(35).fill(NaN);
          k.gemm(ta, tb, 5, 7, 3, 1, rand(p, 15, prng(1)), rand(p, 21, prng(2)), 0, cc);
          assert.ok(cc.every(Number.isFinite), `NaN leaked (transA=${ta}, transB=${tb})`);
        }
      }
    });

    it('alpha = 0 and k = 0 only scale C by beta; m = 0 or n = 0 is a no-op', () => {
      const c = p.f32(4);
      c.set([1, 2, 3, 4]);
      k.gemm(false, false, 2, 2, 2, 0, p.f32(4).fill(NaN), p.f32(4), 3, c);
      assert.deepEqual(Array.from(c), [3, 6, 9, 12]);
      k.gemm(true, true, 2, 2, 0, 1, p.f32(0), p.f32(0), 0.5, c);
      assert.deepEqual(Array.from(c), [1.5, 3, 4.5, 6]);
      k.gemm(false, false, 2, 2, 0, 1, p.f32(0), p.f32(0), 0, c);
      assert.deepEqual(Array.from(c), [0, 0, 0, 0]);
      k.gemm(false, false, 0, 3, 2, 1, p.f32(0), p.f32(6), 0, p.f32(0));
      k.gemm(false, false, 3, 0, 2, 1, p.f32(6), p.f32(0), 0, p.f32(0));
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
          const c0 = rand(null, m * n, r, -2, 2);
          const bias = view(p, rand(null, n, r), 2);
          const c = view(p, c0, 4);
          k.biasAct(c.v, bias.v, m, n, relu);
          const want = new Float32Array(m * n);
          for (let i = 0; i < m; i++) {
            for (let j = 0; j < n; j++) {
              const x = Math.fround(c0[i * n + j] + bias.v[j]);
              want[i * n + j] = relu && x < 0 ? 0 : x;
            }
          }
          assert.deepEqual(Array.from(c.v), Array.from(want));
          assert.ok(c.guardsIntact() && bias.guardsIntact());
        }
      });
    }

    it('biasAct relu keeps NaN and -0 as the JS kernel does', () => {
      const c = p.f32(6);
      c.set([NaN, -0, -1, 2, 0, -3]);
      const js = c.slice();
      const bias = p.f32(6).fill(-0); // -0 + -0 stays -0
      k.biasAct(c, bias, 1, 6, true);
      jsKernels.biasAct(js, bias, 1, 6, true);
      assert.deepEqual(Array.from(c), [NaN, -0, 0, 2, 0, 0]);
      assert.deepEqual(Array.from(c), Array.from(js));
    });

    it('reluBackward zeroes delta where act <= 0 (incl. 0 and -0), exactly', () => {
      const act = p.f32(9);
      act.set([1, 0, -0, -2, 3.5, 1e-30, -1e-30, 7, 99]); // longer than delta: allowed
      const d = view(p, new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]), 3);
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
        const a = rand(p, m * n, prng(m + n), -3, 3);
        const out = view(p, new Float32Array(n).fill(7), 2);
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
      const out = p.f32(2).fill(5);
      k.colSum(p.f32(0), 0, 2, out);
      assert.deepEqual(Array.from(out), [0, 0]);
    });
  });

  describe('softmaxXent', () => {
    it('loss, delta and correct match the float64 reference', () => {
      const m = 6,
        n = 10,
        scale = 1 / 6;
      const r = prng(42);
      const logits = view(p, rand(null, m * n, r, -5, 5), 1);
      const labels = p.i32(m);
      for (let i = 0; i < m; i++) labels[i] = Math.floor(r() * n);
      labels[0] = logits.v.subarray(0, n).indexOf(Math.max(...logits.v.subarray(0, n))); // at least one correct
      const delta = view(p, new Float32Array(m * n), 2);
      const got = k.softmaxXent(logits.v, labels, m, n, scale, delta.v);
      const ref = refSoftmaxXent(logits.v, labels, m, n, scale);
      assert.ok(Math.abs(got.loss - ref.loss) <= 1e-9 * (1 + Math.abs(ref.loss)), `loss ${got.loss} vs ${ref.loss}`);
      assert.equal(got.correct, ref.correct);
      assert.ok(ref.correct >= 1);
      assertClose(delta.v, ref.delta, () => 1e-7, 'delta'); // |delta| <= scale, float32 rounding ~1e-8
      assert.ok(logits.guardsIntact() && delta.guardsIntact());
    });

    it('argmax ties: the first maximum wins', () => {
      const logits = p.f32(8);
      logits.set([1, 3, 3, 0, 1, 3, 3, 0]);
      const labels = p.i32(2);
      labels.set([1, 2]);
      const got = k.softmaxXent(logits, labels, 2, 4, 1, p.f32(8));
      assert.equal(got.correct, 1);
    });

    it('is stable for logits around +-1000', () => {
      const logits = p.f32(12);
      logits.set([1000, 0, -1000, 1000, 1000, 999, -1000, -1000, -1000, 1000, -1000, 0]);
      const labels = p.i32(4);
      labels.set([0, 1, 2, 1]);
      const delta = p.f32(12);
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
      const logits = rand(p, 15, prng(7), -4, 4);
      const labels = p.i32(3);
      labels.set([4, 0, 2]);
      const separate = p.f32(15);
      const a = k.softmaxXent(logits, labels, 3, 5, 0.5, separate);
      const inPlace = clone(p, logits);
      const b = k.softmaxXent(inPlace, labels, 3, 5, 0.5, inPlace);
      assert.deepEqual(b, a);
      assert.deepEqual(Array.from(inPlace), Array.from(separate));
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
      const w = rand(p, len, r),
        m = p.f32(len),
        v = p.f32(len);
      const rw = Float64Array.from(w),
        rm = new Float64Array(len),
        rv = new Float64Array(len);
      for (let step = 1; step <= 3; step++) {
        const g = rand(p, len, r, -2, 2);
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
      const w = rand(p, 20, r),
        g = rand(p, 20, r);
      const want = w.map((x, i) => Math.fround(x - 0.1 * g[i]));
      k.sgd(w, g, 0.1, 0, null);
      assert.deepEqual(Array.from(w), Array.from(want));
    });

    it('sgd with momentum over 3 steps: v = mu v + g; w -= lr v', () => {
      const r = prng(6);
      const len = 25,
        lr = 0.05,
        mu = 0.9;
      const w = rand(p, len, r),
        vel = view(p, new Float32Array(len), 1);
      const rw = Float64Array.from(w),
        rv = new Float64Array(len);
      for (let s = 0; s < 3; s++) {
        const g = rand(p, len, r);
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

  describe("bad input throws the JS kernels' errors and writes nothing", () => {
    const f = (n: number) => p.f32(n);
    const bad = (v: unknown) => v as Float32Array;

    /** Both kernels throw the same error class and message. */
    function same(run: (kk: typeof jsKernels) => unknown, expected: { name: string; message: string | RegExp }): void {
      assert.throws(() => run(k), expected);
      assert.throws(() => run(jsKernels), expected);
    }

    it('gemm', () => {
      same((kk) => kk.gemm(false, false, 2, 2, 2, 1, bad(new Float64Array(4)), f(4), 0, f(4)), {
        name: 'TypeError',
        message: 'gemm: a must be a Float32Array, got Float64Array',
      });
      same((kk) => kk.gemm(false, false, 2, 2, 2, 1, f(4), bad([1, 2, 3, 4]), 0, f(4)), {
        name: 'TypeError',
        message: 'gemm: b must be a Float32Array, got Array',
      });
      same((kk) => kk.gemm(false, false, 2, 2, 2, 1, f(4), f(4), 0, bad(null)), {
        name: 'TypeError',
        message: 'gemm: c must be a Float32Array, got null',
      });
      same((kk) => kk.gemm(false, false, 2, 3, 2, 1, f(4), f(6), 0, f(5)), {
        name: 'RangeError',
        message: 'gemm: c has 5 elements, needs at least 6 (m*n)',
      });
      same((kk) => kk.gemm(true, false, 3, 2, 2, 1, f(5), f(4), 0, f(6)), {
        name: 'RangeError',
        message: 'gemm: a has 5 elements, needs at least 6 (m*k)',
      });
      same((kk) => kk.gemm(false, true, 2, 2, 3, 1, f(6), f(5).subarray(1), 0, f(4)), {
        name: 'RangeError',
        message: 'gemm: b has 4 elements, needs at least 6 (k*n)',
      });
      same((kk) => kk.gemm(false, false, -1, 2, 2, 1, f(4), f(4), 0, f(4)), {
        name: 'RangeError',
        message: /^gemm: m must be a non-negative integer, got -1$/,
      });
      same((kk) => kk.gemm(false, false, 2, 1.5, 2, 1, f(4), f(4), 0, f(4)), {
        name: 'RangeError',
        message: /^gemm: n must be a non-negative integer, got 1.5$/,
      });
      same((kk) => kk.gemm(false, false, 2, 2, 2 ** 31, 1, f(4), f(4), 0, f(4)), {
        name: 'RangeError',
        message: /^gemm: k must be a non-negative integer, got 2147483648$/,
      });
      same((kk) => kk.gemm(bad('yes') as unknown as boolean, false, 2, 2, 2, 1, f(4), f(4), 0, f(4)), {
        name: 'TypeError',
        message: 'gemm: transA must be a boolean, got string',
      });
      same((kk) => kk.gemm(false, false, 2, 2, 2, bad(undefined) as unknown as number, f(4), f(4), 0, f(4)), {
        name: 'TypeError',
        message: 'gemm: alpha must be a number, got undefined',
      });
      const buf = f(8);
      same((kk) => kk.gemm(false, false, 2, 2, 2, 1, buf.subarray(0, 4), f(4), 0, buf.subarray(2, 6)), {
        name: 'RangeError',
        message: 'gemm: c must not overlap a or b',
      });
      assert.deepEqual(Array.from(buf), Array.from(new Float32Array(8)));
    });

    it('biasAct, reluBackward, colSum', () => {
      same((kk) => kk.biasAct(f(6), f(2), 2, 3, false), {
        name: 'RangeError',
        message: 'biasAct: bias has 2 elements, needs at least 3 (n)',
      });
      same((kk) => kk.biasAct(f(5), f(3), 2, 3, true), {
        name: 'RangeError',
        message: 'biasAct: c has 5 elements, needs at least 6 (m*n)',
      });
      same((kk) => kk.biasAct(bad(new Int32Array(6)), f(3), 2, 3, true), {
        name: 'TypeError',
        message: 'biasAct: c must be a Float32Array, got Int32Array',
      });
      same((kk) => kk.biasAct(f(6), f(3), 2, 3, bad(1) as unknown as boolean), {
        name: 'TypeError',
        message: 'biasAct: relu must be a boolean, got number',
      });
      same((kk) => kk.reluBackward(f(4), f(3)), {
        name: 'RangeError',
        message: 'reluBackward: act has 3 elements, needs at least 4 (delta.length)',
      });
      same((kk) => kk.colSum(f(6), 2, 3, f(2)), {
        name: 'RangeError',
        message: 'colSum: out has 2 elements, needs at least 3 (n)',
      });
      same((kk) => kk.colSum(f(6), 2, 3, bad(undefined)), {
        name: 'TypeError',
        message: 'colSum: out must be a Float32Array, got undefined',
      });
    });

    it('softmaxXent: label out of range, wrong label type, short arrays', () => {
      const delta = f(6).fill(9);
      for (const l of [-1, 3]) {
        const labels = p.i32(2);
        labels.set([0, l]);
        same((kk) => kk.softmaxXent(f(6), labels, 2, 3, 1, delta), {
          name: 'RangeError',
          message: `softmaxXent: labels[1] = ${l} is out of range [0, 3)`,
        });
      }
      assert.deepEqual(Array.from(delta), [9, 9, 9, 9, 9, 9]); // checked before any row is written
      same((kk) => kk.softmaxXent(f(6), new Float32Array(2) as unknown as Int32Array, 2, 3, 1, delta), {
        name: 'TypeError',
        message: 'softmaxXent: labels must be an Int32Array, got Float32Array',
      });
      same((kk) => kk.softmaxXent(f(6), p.i32(1), 2, 3, 1, delta), {
        name: 'RangeError',
        message: 'softmaxXent: labels has 1 elements, needs at least 2 (m)',
      });
      same((kk) => kk.softmaxXent(f(6), p.i32(2), 2, 3, 1, f(5)), {
        name: 'RangeError',
        message: 'softmaxXent: delta has 5 elements, needs at least 6 (m*n)',
      });
    });

    it('adam and sgd', () => {
      same((kk) => kk.adam(f(4), f(3), f(4), f(4), 0.1, 0.9, 0.999, 1e-7, 1), {
        name: 'RangeError',
        message: 'adam: g has 3 elements, needs at least 4 (w.length)',
      });
      same((kk) => kk.adam(f(4), f(4), f(4), f(4), 0.1, 0.9, 0.999, 1e-7, 0), {
        name: 'RangeError',
        message: 'adam: step must be a positive integer, got 0',
      });
      same((kk) => kk.adam(f(4), f(4), f(4), f(4), 0.1, 0.9, 0.999, 1e-7, 1.5), {
        name: 'RangeError',
        message: 'adam: step must be a positive integer, got 1.5',
      });
      same((kk) => kk.sgd(f(4), f(4), 0.1, 0.9, null), {
        name: 'TypeError',
        message: 'sgd: vel must be a Float32Array when momentum > 0, got null',
      });
      same((kk) => kk.sgd(f(4), f(4), 0.1, 0.9, f(3)), {
        name: 'RangeError',
        message: 'sgd: vel has 3 elements, needs at least 4 (w.length)',
      });
      same((kk) => kk.sgd(f(4), f(4), bad('0.1') as unknown as number, 0, null), {
        name: 'TypeError',
        message: 'sgd: lr must be a number, got string',
      });
      same((kk) => kk.sgd(f(4), f(4), 0.1, -1, null), {
        name: 'RangeError',
        message: /^sgd: momentum must be >= 0, got -1$/,
      });
      // The native addon prints numbers with C's printf (%.17g), which writes NaN as 'nan'.
      const nan = k.name === 'native-openblas' ? 'nan' : 'NaN';
      assert.throws(() => k.sgd(f(4), f(4), 0.1, NaN, null), {
        name: 'RangeError',
        message: `sgd: momentum must be >= 0, got ${nan}`,
      });
    });
  });
}

/**
 * p's kernels and the JS kernels on the same inputs (placed by p): gemm and softmaxXent to rounding, the
 * other elementwise kernels bit for bit, and adam bit for bit (`adam: 'bits'`: the WASM kernels) or to
 * rounding (the native addon's adam).
 */
export function agreementSuite(p: Place, adam: 'bits' | 'rounding'): void {
  const k = p.k;

  it('gemm at training size (32 x 128 x 784), all transposes', () => {
    const m = 32,
      n = 128,
      kk = 784;
    const r = prng(11);
    const a = rand(p, m * kk, r),
      b = rand(p, kk * n, r),
      c0 = rand(null, m * n, r);
    for (const ta of [false, true]) {
      for (const tb of [false, true]) {
        const x = clone(p, c0),
          y = c0.slice();
        k.gemm(ta, tb, m, n, kk, 0.7, a, b, 0.3, x);
        jsKernels.gemm(ta, tb, m, n, kk, 0.7, a, b, 0.3, y);
        const ref = refGemm(ta, tb, m, n, kk, 0.7, a, b, 0.3, c0);
        assertClose(x, y, gemmTol(ref.mag), `${k.name} vs js gemm(${ta}, ${tb})`);
      }
    }
  });

  it(`elementwise kernels give identical bits (adam: ${adam === 'bits' ? 'identical bits' : 'to rounding'})`, () => {
    const r = prng(12);
    const m = 50,
      n = 37;
    const c0 = rand(null, m * n, r, -2, 2),
      bias = rand(p, n, r);
    for (const relu of [false, true]) {
      const x = clone(p, c0),
        y = c0.slice();
      k.biasAct(x, bias, m, n, relu);
      jsKernels.biasAct(y, bias, m, n, relu);
      assert.deepEqual(Array.from(x), Array.from(y));
    }
    const act = clone(
      p,
      c0.map((v) => v - 0.5),
    );
    const d1 = clone(p, c0),
      d2 = c0.slice();
    k.reluBackward(d1, act);
    jsKernels.reluBackward(d2, act);
    assert.deepEqual(Array.from(d1), Array.from(d2));
    const s1 = p.f32(n),
      s2 = new Float32Array(n);
    k.colSum(clone(p, c0), m, n, s1);
    jsKernels.colSum(c0, m, n, s2);
    assert.deepEqual(Array.from(s1), Array.from(s2));
    const g = rand(p, m * n, r);
    const w1 = clone(p, c0),
      v1 = p.f32(m * n),
      w2 = c0.slice(),
      v2 = new Float32Array(m * n);
    for (let s = 0; s < 3; s++) {
      k.sgd(w1, g, 0.05, 0.9, v1);
      k.sgd(w1, g, 0.05, 0, null);
      jsKernels.sgd(w2, g, 0.05, 0.9, v2);
      jsKernels.sgd(w2, g, 0.05, 0, null);
    }
    assert.deepEqual(Array.from(w1), Array.from(w2));
    assert.deepEqual(Array.from(v1), Array.from(v2));
    const a1 = clone(p, c0),
      m1 = p.f32(m * n),
      q1 = p.f32(m * n);
    const a2 = c0.slice(),
      m2 = new Float32Array(m * n),
      q2 = new Float32Array(m * n);
    for (let s = 1; s <= 5; s++) {
      k.adam(a1, g, m1, q1, 0.001, 0.9, 0.999, 1e-7, s);
      jsKernels.adam(a2, g, m2, q2, 0.001, 0.9, 0.999, 1e-7, s);
    }
    if (adam === 'bits') {
      assert.deepEqual(Array.from(a1), Array.from(a2));
      assert.deepEqual(Array.from(m1), Array.from(m2));
      assert.deepEqual(Array.from(q1), Array.from(q2));
    } else assertClose(a1, a2, (i) => 1e-7 * Math.abs(a2[i]), 'adam w');
  });

  it('softmaxXent agrees to rounding', () => {
    const r = prng(13);
    const m = 64,
      n = 10;
    const logits = rand(p, m * n, r, -8, 8),
      labels = p.i32(m);
    for (let i = 0; i < m; i++) labels[i] = Math.floor(r() * n);
    const d1 = p.f32(m * n),
      d2 = new Float32Array(m * n);
    const x = k.softmaxXent(logits, labels, m, n, 1 / m, d1);
    const y = jsKernels.softmaxXent(logits, labels, m, n, 1 / m, d2);
    assert.equal(x.correct, y.correct);
    assert.ok(Math.abs(x.loss - y.loss) <= 1e-12 * Math.abs(y.loss), `loss ${x.loss} vs ${y.loss}`);
    assertClose(d1, d2, () => 1e-9, 'softmax delta');
  });
}
