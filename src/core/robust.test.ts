import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  attackUpdate,
  bulyan,
  bulyanSelect,
  clipByNorm,
  clipUpdates,
  coordinateMedian,
  DEFAULT_ATTACK_SCALE,
  flipLabels,
  krum,
  krumScores,
  krumSelect,
  l2Norm,
  multiKrum,
  trimCount,
  trimmedMean,
} from './robust.ts';
import { weightedAverage } from './aggregate.ts';
import { Rng } from './rng.ts';
import { ABS, REL, assertClose, bitsEqual, coordScale } from '../../test/support/numeric.js';

/** A rule's output that must equal the plain mean of vs, within the tolerances of the weighted average. */
function assertIsMean(actual: Float32Array, vs: Float32Array[]): void {
  assertClose(
    actual,
    weightedAverage(
      vs,
      vs.map(() => 1),
    ),
    ABS,
    REL,
    coordScale(vs),
  );
}

// ---------- naive references: plain float64 scalar code over number[], sharing nothing with robust.ts ----------

const column = (vs: number[][], j: number) => vs.map((v) => v[j]);
const asc = (xs: number[]) => [...xs].sort((a, b) => a - b);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function naiveMedian(vs: number[][]): number[] {
  return vs[0].map((_, j) => {
    const s = asc(column(vs, j));
    const h = Math.floor(s.length / 2);
    return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
  });
}

/** k values dropped from each side, given directly (not from beta) so the reference does not share trimCount. */
function naiveTrimmed(vs: number[][], k: number): number[] {
  return vs[0].map((_, j) => mean(asc(column(vs, j)).slice(k, vs.length - k)));
}

function sqDist(a: number[], b: number[]): number {
  let s = 0;
  for (let j = 0; j < a.length; j++) s += (a[j] - b[j]) ** 2;
  return s;
}

/** Krum score of every vector among `vs`, with `k` nearest neighbours. */
function naiveScores(vs: number[][], k: number): number[] {
  return vs.map((v, i) =>
    asc(vs.filter((_, j) => j !== i).map((w) => sqDist(v, w)))
      .slice(0, k)
      .reduce((a, b) => a + b, 0),
  );
}

function lexLess(a: number[], b: number[]): boolean {
  const j = a.findIndex((x, i) => x !== b[i]);
  return j >= 0 && a[j] < b[j];
}

/** Index of the lowest score; equal scores (e.g. two mutual nearest neighbours when k = 1) go to the lexicographically smaller vector. */
function argmin(xs: number[], vs: number[][]): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++)
    if (xs[i] < xs[best] || (xs[i] === xs[best] && lexLess(vs[i], vs[best]))) best = i;
  return best;
}

/** Bulyan straight from the paper's description (for vectors in general position: no ties). */
function naiveBulyan(vs: number[][], f: number): number[] {
  let rest = vs.map((_, i) => i);
  const sel: number[][] = [];
  while (sel.length < vs.length - 2 * f) {
    const r = rest.length;
    const k = Math.min(r - 1, Math.max(1, r - f - 2));
    const best =
      rest[
        argmin(
          naiveScores(
            rest.map((i) => vs[i]),
            k,
          ),
          rest.map((i) => vs[i]),
        )
      ];
    sel.push(vs[best]);
    rest = rest.filter((i) => i !== best);
  }
  const beta = sel.length - 2 * f;
  return vs[0].map((_, j) => {
    const col = column(sel, j);
    const med = naiveMedian(col.map((x) => [x]))[0];
    const closest = [...col].sort((a, b) => Math.abs(a - med) - Math.abs(b - med) || a - b).slice(0, beta);
    return mean(closest);
  });
}

// ---------- helpers ----------

/** Every coordinate of `got` lies within the min/max of that coordinate over `within`. */
function assertWithinRange(got: Float32Array, within: Float32Array[], what: string) {
  for (let j = 0; j < got.length; j++) {
    const col = within.map((v) => v[j]);
    assert.ok(
      got[j] >= Math.min(...col) && got[j] <= Math.max(...col),
      `${what}: coordinate ${j} = ${got[j]} outside [${Math.min(...col)}, ${Math.max(...col)}]`,
    );
  }
}

const f32 = (xs: number[]) => new Float32Array(xs);
const arr = (v: Float32Array) => Array.from(v);
const copies = (vs: Float32Array[]) => vs.map((v) => new Float32Array(v));

// ---------- generators ----------

const MAG = Math.fround(1000);
const vec = (d: number) =>
  fc.float32Array({ minLength: d, maxLength: d, min: -MAG, max: MAG, noNaN: true, noDefaultInfinity: true });
/** n vectors of a common length d (fast-check's float32 generator favours 0, -0, extremes and repeats). */
const updates = (minN: number, maxN: number) =>
  fc
    .tuple(fc.integer({ min: minN, max: maxN }), fc.integer({ min: 0, max: 8 }))
    .chain(([n, d]) => fc.array(vec(d), { minLength: n, maxLength: n }));
/** A permutation of 0..n-1 to go with a case. */
const withPerm = (g: fc.Arbitrary<Float32Array[]>) =>
  g.chain((vs) =>
    fc.record({
      vs: fc.constant(vs),
      perm: fc.shuffledSubarray(
        vs.map((_, i) => i),
        { minLength: vs.length },
      ),
    }),
  );
/** f, n vectors (n from an (f, n) generator) and a permutation of them. */
const fCase = (nf: fc.Arbitrary<{ f: number; n: number }>) =>
  nf
    .chain(({ f, n }) =>
      fc.record({
        f: fc.constant(f),
        c: withPerm(fc.integer({ min: 0, max: 8 }).chain((d) => fc.array(vec(d), { minLength: n, maxLength: n }))),
      }),
    )
    .map(({ f, c }) => ({ f, vs: c.vs, perm: c.perm }));

/** Vectors in general position (uniform in [-10, 10), no ties), for comparisons with references that assume no ties. */
function generic(n: number, d: number, seed: number): Float32Array[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => Float32Array.from({ length: d }, () => rng.uniform(-10, 10)));
}

/** f and n with n >= 2f + 3 (Krum). */
const krumNF = fc
  .integer({ min: 0, max: 4 })
  .chain((f) => fc.record({ f: fc.constant(f), n: fc.integer({ min: 2 * f + 3, max: 2 * f + 8 }) }));
/** f and n with n >= 4f + 3 (Bulyan). */
const bulyanNF = fc
  .integer({ min: 0, max: 3 })
  .chain((f) => fc.record({ f: fc.constant(f), n: fc.integer({ min: 4 * f + 3, max: 4 * f + 7 }) }));

// ---------- coordinateMedian ----------

test('coordinateMedian: hand-computed odd and even counts', () => {
  assert.deepEqual(arr(coordinateMedian([f32([1, 5]), f32([3, -1]), f32([2, 100])])), [2, 5]);
  assert.deepEqual(arr(coordinateMedian([f32([1, 5]), f32([3, -1]), f32([2, 100]), f32([10, 0])])), [2.5, 2.5]);
  assert.deepEqual(arr(coordinateMedian([f32([-0, 7])])), [0, 7]);
  assert.ok(Object.is(coordinateMedian([f32([-0])])[0], 0), '-0 comes out as +0');
});

test('coordinateMedian: matches the naive reference (bit-exact up to the final Float32 rounding)', () => {
  fc.assert(
    fc.property(updates(1, 9), (vs) => {
      // abs: half the smallest subnormal step, the rounding of (a + b) / 2 for subnormal a, b
      assertClose(coordinateMedian(vs), naiveMedian(vs.map(arr)), 2 ** -150, 2 ** -24);
    }),
  );
  // n > 32 takes the built-in sort
  const big = generic(41, 5, 3);
  assertClose(coordinateMedian(big), naiveMedian(big.map(arr)), 0, 0);
});

// ---------- trimmedMean ----------

test('trimmedMean: hand-computed, and trimCount = floor(beta n)', () => {
  // column 0: 1 2 3 4 100 -> drop 1 each side -> mean(2, 3, 4) = 3; column 1: -50 0 0 1 2 -> mean(0, 0, 1)
  const vs = [f32([1, 0]), f32([100, -50]), f32([3, 2]), f32([2, 1]), f32([4, 0])];
  assert.deepEqual(arr(trimmedMean(vs, 0.2)), [3, Math.fround(1 / 3)]);
  assert.deepEqual(
    [trimCount(20, 0.2), trimCount(10, 0.25), trimCount(100, 0.29), trimCount(3, 0.49), trimCount(7, 0)],
    [4, 2, 29, 1, 0],
  );
});

test('trimmedMean: matches the naive reference', () => {
  // beta = p/20 so the reference's k = floor(p n / 20) is exact integer arithmetic
  fc.assert(
    fc.property(updates(1, 12), fc.integer({ min: 0, max: 9 }), (vs, p) => {
      const n = vs.length;
      const k = Math.floor((p * n) / 20);
      assert.equal(trimCount(n, p / 20), k);
      assertClose(trimmedMean(vs, p / 20), naiveTrimmed(vs.map(arr), k), ABS, REL, coordScale(vs));
    }),
  );
});

test('trimmedMean: beta 0 is the plain mean; trimming all but the middle of an odd count is the median', () => {
  fc.assert(
    fc.property(updates(1, 9), (vs) => {
      assertIsMean(trimmedMean(vs, 0), vs);
      if (vs.length % 2 === 1 && vs.length > 1) {
        const n = vs.length;
        // beta just under 0.5 trims (n - 1) / 2 from each side
        assert.ok(bitsEqual(trimmedMean(vs, 0.4999), coordinateMedian(vs)));
        assert.equal(trimCount(n, 0.4999), (n - 1) / 2);
      }
    }),
  );
});

// ---------- Krum / Multi-Krum ----------

test('krum: hand-computed, the outlier is never picked', () => {
  // n = 5, f = 1: k = 2 nearest. Points on a line at 0, 1, 2, 3 and 100.
  const vs = [f32([0]), f32([1]), f32([2]), f32([3]), f32([100])];
  // scores: 0 -> 1+4 = 5; 1 -> 1+1 = 2; 2 -> 1+1 = 2; 3 -> 1+4 = 5; 100 -> 97^2+98^2
  assert.deepEqual(Array.from(krumScores(vs, 1)), [5, 2, 2, 5, 97 ** 2 + 98 ** 2]);
  // tie between 1 and 2 is broken by vector content: [1] < [2]
  assert.deepEqual(arr(krum(vs, 1)), [1]);
  assert.deepEqual(krumSelect(vs, 1, 4), [1, 2, 0, 3]);
  assert.deepEqual(arr(multiKrum(vs, 1)), [1.5]); // m = n - f = 4: mean of 0, 1, 2, 3
  assert.deepEqual(arr(multiKrum(vs, 1, 2)), [1.5]);
  assert.deepEqual(arr(multiKrum(vs, 1, 1)), [1]);
});

test('krumScores: match the naive reference', () => {
  fc.assert(
    fc.property(
      krumNF.chain(({ f, n }) =>
        fc.record({
          f: fc.constant(f),
          vs: fc.integer({ min: 0, max: 8 }).chain((d) => fc.array(vec(d), { minLength: n, maxLength: n })),
        }),
      ),
      ({ f, vs }) => {
        const got = krumScores(vs, f);
        const want = naiveScores(vs.map(arr), vs.length - f - 2);
        assertClose(got, want, 1e-9, 1e-12);
      },
    ),
  );
});

test('krum and multiKrum: match the naive reference on vectors in general position', () => {
  fc.assert(
    fc.property(
      krumNF,
      fc.integer({ min: 1, max: 6 }),
      fc.nat(),
      fc.integer({ min: 1, max: 20 }),
      ({ f, n }, d, seed, mRaw) => {
        const vs = generic(n, d, seed);
        const naive = naiveScores(vs.map(arr), n - f - 2);
        const va = vs.map(arr);
        assert.deepEqual(arr(krum(vs, f)), va[argmin(naive, va)]);
        const m = 1 + (mRaw % n);
        const order = naive
          .map((s, i) => [s, i])
          .sort((a, b) => a[0] - b[0] || (lexLess(va[a[1]], va[b[1]]) ? -1 : 1))
          .map((x) => x[1]);
        const best = order.slice(0, m).map((i) => arr(vs[i]));
        assertClose(
          multiKrum(vs, f, m),
          Array.from(vs[0], (_, j) => mean(column(best, j))),
          ABS,
          REL,
        );
        assert.deepEqual(krumSelect(vs, f, m), order.slice(0, m));
      },
    ),
  );
});

test('krum picks one of its inputs; multiKrum stays within the coordinate min/max; both ignore input order', () => {
  fc.assert(
    fc.property(fCase(krumNF), ({ f, vs, perm }) => {
      const k = krum(vs, f);
      assert.ok(
        vs.some((v) => arr(v).every((x, j) => x === k[j])),
        'krum output is one of the inputs',
      );
      const mk = multiKrum(vs, f);
      assertWithinRange(mk, vs, 'multiKrum');
      const pv = perm.map((i) => vs[i]);
      assert.ok(bitsEqual(krum(pv, f), k), 'krum is permutation invariant');
      assert.ok(bitsEqual(multiKrum(pv, f), mk), 'multiKrum is permutation invariant');
      // Multi-Krum with f = 0 and m = n averages everything
      assertIsMean(multiKrum(vs, 0, vs.length), vs);
    }),
  );
});

// ---------- Bulyan ----------

test('bulyan: hand-computed n = 7, f = 1', () => {
  // theta = 5 selected by repeated Krum, beta = 3 closest to the median of the selected.
  const vs = [f32([0]), f32([1]), f32([2]), f32([3]), f32([4]), f32([50]), f32([-60])];
  assert.deepEqual(
    bulyanSelect(vs, 1).sort((a, b) => a - b),
    [0, 1, 2, 3, 4],
  );
  assert.deepEqual(arr(bulyan(vs, 1)), [2]); // median 2, closest three: 1, 2, 3
});

test('bulyan: matches the naive reference on vectors in general position', () => {
  fc.assert(
    fc.property(bulyanNF, fc.integer({ min: 1, max: 6 }), fc.nat(), ({ f, n }, d, seed) => {
      const vs = generic(n, d, seed);
      assertClose(bulyan(vs, f), naiveBulyan(vs.map(arr), f), ABS, REL);
    }),
  );
});

test('bulyan: within the coordinate min/max, permutation invariant, f = 0 is the mean', () => {
  fc.assert(
    fc.property(fCase(bulyanNF), ({ f, vs, perm }) => {
      const b = bulyan(vs, f);
      assertWithinRange(b, vs, 'bulyan');
      assert.ok(
        bitsEqual(
          bulyan(
            perm.map((i) => vs[i]),
            f,
          ),
          b,
        ),
        'bulyan is permutation invariant',
      );
      assertIsMean(bulyan(vs, 0), vs);
    }),
  );
});

// ---------- shared properties of the coordinate-wise rules ----------

test('median and trimmed mean: within the coordinate min/max, permutation invariant, deterministic, inputs untouched', () => {
  fc.assert(
    fc.property(withPerm(updates(1, 10)), fc.integer({ min: 0, max: 9 }), ({ vs, perm }, p) => {
      const before = copies(vs);
      const med = coordinateMedian(vs);
      const tm = trimmedMean(vs, p / 20);
      assertWithinRange(med, vs, 'median');
      assertWithinRange(tm, vs, 'trimmed mean');
      const pv = perm.map((i) => vs[i]);
      assert.ok(bitsEqual(coordinateMedian(pv), med));
      assert.ok(bitsEqual(trimmedMean(pv, p / 20), tm));
      assert.ok(bitsEqual(coordinateMedian(vs), med));
      vs.forEach((v, i) => assert.ok(bitsEqual(v, before[i]), 'input mutated'));
    }),
  );
});

// ---------- robustness: f Byzantine updates placed anywhere far away ----------

/** Honest updates in [-1000, 1000] and f Byzantine ones; `far` puts each Byzantine value at 1e8..2e8 in magnitude. */
const attackCase = (nOf: (f: number) => fc.Arbitrary<number>, maxF: number) =>
  fc
    .integer({ min: 1, max: maxF })
    .chain((f) =>
      fc.record({
        f: fc.constant(f),
        d: fc.integer({ min: 1, max: 6 }),
        n: nOf(f),
        seed: fc.nat(),
        collude: fc.boolean(),
      }),
    )
    .chain(({ f, d, n, seed, collude }) =>
      fc.record({
        f: fc.constant(f),
        honest: fc.array(vec(d), { minLength: n - f, maxLength: n - f }),
        seed: fc.constant(seed),
        collude: fc.constant(collude),
      }),
    );

function byzantine(f: number, d: number, seed: number, collude: boolean, scale = 1): Float32Array[] {
  const rng = new Rng(seed);
  const one = () => Float32Array.from({ length: d }, () => scale * (rng.next() < 0.5 ? -1 : 1) * rng.uniform(1e8, 2e8));
  const first = one();
  return Array.from({ length: f }, () => (collude ? new Float32Array(first) : one()));
}

test('robustness: median and trimmed mean (k >= f) stay in the honest range whatever the Byzantine values', () => {
  fc.assert(
    fc.property(
      attackCase((f) => fc.integer({ min: 2 * f + 1, max: 2 * f + 8 }), 4),
      fc.boolean(),
      ({ f, honest, seed, collude }, huge) => {
        const d = honest[0].length;
        // any Byzantine values at all, including +-3.4e38
        const bad = huge
          ? byzantine(f, d, seed, collude).map((v) => v.map((x) => Math.sign(x) * 3.4e38))
          : byzantine(f, d, seed, collude);
        const all = [...honest, ...bad];
        const n = all.length;
        assertWithinRange(coordinateMedian(all), honest, 'median');
        const beta = f / n; // trims exactly f from each side
        assert.equal(trimCount(n, beta), f);
        assertWithinRange(trimmedMean(all, beta), honest, 'trimmed mean');
        // moving the Byzantine updates 10x further changes nothing
        const further = [...honest, ...byzantine(f, d, seed, collude, 10)];
        if (!huge) {
          assert.ok(bitsEqual(coordinateMedian(further), coordinateMedian(all)));
          assert.ok(bitsEqual(trimmedMean(further, beta), trimmedMean(all, beta)));
        }
      },
    ),
  );
});

test('robustness: Krum, Multi-Krum and Bulyan ignore far-away Byzantine updates', () => {
  fc.assert(
    fc.property(
      attackCase((f) => fc.integer({ min: 4 * f + 3, max: 4 * f + 6 }), 3),
      ({ f, honest, seed, collude }) => {
        const d = honest[0].length;
        const all = [...honest, ...byzantine(f, d, seed, collude)];
        const further = [...honest, ...byzantine(f, d, seed, collude, 10)];
        const k = krum(all, f);
        assert.ok(
          honest.some((v) =>
            bitsEqual(
              v.map((x) => x + 0),
              k,
            ),
          ),
          'krum picks an honest update',
        );
        assert.ok(bitsEqual(krum(further, f), k));
        const mk = multiKrum(all, f);
        assertWithinRange(mk, honest, 'multiKrum');
        assert.ok(bitsEqual(multiKrum(further, f), mk));
        // Multi-Krum with m = n - f keeps exactly the honest updates
        assert.deepEqual(
          krumSelect(all, f, all.length - f).sort((a, b) => a - b),
          honest.map((_, i) => i),
        );
        const b = bulyan(all, f);
        assertWithinRange(b, honest, 'bulyan');
        if (!collude) assert.ok(bitsEqual(bulyan(further, f), b));
      },
    ),
  );
});

// ---------- norm clipping ----------

test('clipByNorm: matches v * min(1, c / |v|), bounds the norm, keeps short vectors as they are', () => {
  assert.deepEqual(arr(clipByNorm(f32([3, 4]), 1)), [Math.fround(0.6), Math.fround(0.8)]);
  assert.deepEqual(arr(clipByNorm(f32([3, 4]), 5)), [3, 4]);
  assert.equal(l2Norm(f32([3, 4])), 5);
  fc.assert(
    fc.property(updates(1, 4), fc.double({ min: 1e-3, max: 1e4, noNaN: true }), (vs, c) => {
      const clipped = clipUpdates(vs, c);
      vs.forEach((v, i) => {
        const x = arr(v);
        const norm = Math.sqrt(x.reduce((a, b) => a + b * b, 0));
        const want = x.map((t) => t * Math.min(1, c / norm || 1));
        assertClose(clipped[i], want, 1e-30, 2 ** -23);
        assert.ok(l2Norm(clipped[i]) <= c * (1 + 1e-6), `norm ${l2Norm(clipped[i])} > ${c}`);
        if (norm <= c) assert.ok(bitsEqual(clipped[i], v));
      });
    }),
  );
});

// ---------- attacks ----------

test('attacks: sign-flip, scale and gaussian follow their definitions; label flip maps y to C - 1 - y', () => {
  const g = f32([1, 2, 3]);
  const honest = f32([2, 2, 1]); // delta = [1, 0, -2]
  const rng = new Rng(1);
  assert.deepEqual(arr(attackUpdate('sign-flip', honest, g, 1, rng)), [0, 2, 5]);
  assert.deepEqual(arr(attackUpdate('sign-flip', honest, g, DEFAULT_ATTACK_SCALE['sign-flip'], rng)), [-3, 2, 11]);
  assert.deepEqual(arr(attackUpdate('scale', honest, g, 10, rng)), [11, 2, -17]);
  const a = attackUpdate('gaussian', honest, g, 2, new Rng(5));
  const r = new Rng(5);
  assert.deepEqual(
    arr(a),
    arr(g).map((x) => Math.fround(x + 2 * r.normal())),
    'g + sigma * N(0, 1), seeded',
  );
  assert.ok(bitsEqual(attackUpdate('gaussian', honest, g, 2, new Rng(5)), a), 'same seed, same noise');
  // sample variance of a long gaussian attack is about sigma^2
  const z = attackUpdate('gaussian', new Float32Array(20000), new Float32Array(20000), 3, new Rng(9));
  const v = arr(z).reduce((s, x) => s + x * x, 0) / z.length;
  assert.ok(Math.abs(v - 9) < 0.5, `variance ${v}`);
  assert.deepEqual(Array.from(flipLabels(new Int32Array([0, 1, 9, 4]), 10)), [9, 8, 0, 5]);
  assert.throws(() => flipLabels(new Int32Array([10]), 10), /label 10 at 0 is outside \[0, 10\)/);
  assert.throws(() => flipLabels(new Int32Array([0]), 0), /classification/);
  assert.throws(() => attackUpdate('scale', honest, g, 0, rng), /scale must be a finite number > 0/);
  assert.throws(
    () => attackUpdate('scale', honest, f32([1]), 1, rng),
    /honest has length 3 but reference has length 1/,
  );
});

// ---------- input validation ----------

test('robust rules reject bad input with a clear one-line error', () => {
  const three = [f32([1, 2]), f32([3, 4]), f32([5, 6])];
  const seven = Array.from({ length: 7 }, (_, i) => f32([i, -i]));
  for (const [fn, re] of [
    [() => coordinateMedian([]), /coordinateMedian: no updates given/],
    [() => trimmedMean([f32([1]), f32([1, 2])], 0.1), /updates\[1\] has length 2 but updates\[0\] has length 1/],
    [() => coordinateMedian([f32([1, NaN])]), /updates\[0\]\[1\] is NaN \(not finite\)/],
    [() => trimmedMean(three, 0.5), /beta \(fraction trimmed from each side\) must be in \[0, 0\.5\), got 0\.5/],
    [() => trimmedMean(three, -0.1), /must be in \[0, 0\.5\)/],
    [() => trimmedMean(three, NaN), /must be in \[0, 0\.5\)/],
    [() => krum(three, 1), /krum: needs n >= 2f \+ 3 updates \(Blanchard et al\. 2017\), got n = 3 for f = 1/],
    [() => krum(three, -1), /f \(Byzantine updates to tolerate\) must be a whole number >= 0, got -1/],
    [() => krum(three, 0.5), /whole number >= 0, got 0\.5/],
    [() => krumScores([f32([Infinity]), f32([0]), f32([1])], 0), /not finite/],
    [() => multiKrum(seven, 2, 8), /multiKrum: m must be a whole number from 1 to n = 7, got 8/],
    [() => multiKrum(seven, 2, 0), /m must be a whole number from 1 to n = 7, got 0/],
    [() => krumSelect(seven, 1, 1.5), /m must be a whole number/],
    [() => bulyan(seven, 2), /bulyan: needs n >= 4f \+ 3 updates \(El Mhamdi et al\. 2018\), got n = 7 for f = 2/],
    [() => bulyan(seven, 1.5), /f \(Byzantine updates to tolerate\)/],
    [() => clipByNorm(f32([1]), 0), /maxNorm must be a finite number > 0, got 0/],
    [() => clipByNorm(f32([1]), Infinity), /maxNorm must be a finite number > 0/],
  ] as const) {
    assert.throws(fn, (e: Error) => re.test(e.message) && !e.message.includes('\n'), String(re));
  }
  // points (i, -i) on a line, with ties everywhere: the first Krum pick is [2, -2] (tied with [3, -3], lexicographically smaller),
  // ... selecting {0, 1, 2, 4, 5}; per coordinate median 2 (-2), closest 3: 1, 2 and the lower of the tied 0 / 4 (-4 / 0).
  assert.deepEqual(bulyanSelect(seven, 1), [2, 4, 1, 5, 0]);
  assert.deepEqual(arr(bulyan(seven, 1)), [1, Math.fround(-7 / 3)]);
});

test('at scale: 20 updates of 100k values fuse with every rule to finite values (time printed, never asserted)', () => {
  const vs = generic(20, 100_000, 11);
  const t0 = performance.now();
  const fused = [coordinateMedian(vs), trimmedMean(vs, 0.2), multiKrum(vs, 4), bulyan(vs, 4)];
  console.log(`# four rules took ${(performance.now() - t0).toFixed(0)} ms`);
  for (const f of fused) {
    assert.equal(f.length, 100_000);
    assert.ok(f.every(Number.isFinite));
  }
});
