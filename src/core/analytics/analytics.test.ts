import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  featureMoments,
  mergeMoments,
  mergeAllMoments,
  momentsVariance,
  emptyMoments,
  checkMoments,
  type FeatureMoments,
} from './moments.ts';
import {
  featureHistogram,
  histogramQuantiles,
  labelCounts,
  mergeHistograms,
  addCounts,
  emptyHistogram,
} from './histogram.ts';
import { Rng } from '../rng.ts';

// ---------- naive references: pool every row, compute directly over number[] ----------

function column(rows: number[][], j: number): number[] {
  return rows.map((r) => r[j]);
}
function naiveMean(v: number[]): number {
  return v.reduce((a, b) => a + b, 0) / v.length;
}
function naiveVariance(v: number[]): number {
  const m = naiveMean(v);
  return v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length;
}
/** x_(k), k = max(1, ceil(q n)), by sorting. */
function naiveQuantile(v: number[], q: number): number {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.max(1, Math.ceil(q * s.length)) - 1];
}

function randomRows(rng: Rng, n: number, f: number, offset = 0): number[][] {
  return Array.from({ length: n }, () =>
    Array.from({ length: f }, (_, j) => offset + (j + 1) * rng.normal() + 100 * j),
  );
}
const flat = (rows: number[][]) => rows.flat();

// Float64 sums of a few thousand values of magnitude <= 1e3: relative error well under 1e-12.
const TIGHT = 1e-12;
function close(a: number, b: number, rel: number, what: string): void {
  const tol = rel * Math.max(Math.abs(b), 1);
  assert.ok(Math.abs(a - b) <= tol, `${what}: got ${a}, expected ${b} (diff ${Math.abs(a - b)} > ${tol})`);
}

test('moments of one partition equal the naive pooled mean, variance, min and max', () => {
  const rng = new Rng(7);
  const rows = randomRows(rng, 500, 4);
  const m = featureMoments(flat(rows), 4);
  assert.equal(m.count, 500);
  const variance = momentsVariance(m);
  for (let j = 0; j < 4; j++) {
    const v = column(rows, j);
    close(m.mean[j], naiveMean(v), TIGHT, `mean ${j}`);
    close(variance[j], naiveVariance(v), TIGHT, `variance ${j}`);
    assert.equal(m.min[j], Math.min(...v));
    assert.equal(m.max[j], Math.max(...v));
  }
});

test('merging the moments of partitions of very different sizes and offsets equals the pooled result', () => {
  const rng = new Rng(3);
  const parts = [randomRows(rng, 1, 3, 5), randomRows(rng, 900, 3, -40), randomRows(rng, 37, 3, 1e3), []];
  const merged = mergeAllMoments(
    parts.map((p) => (p.length ? featureMoments(flat(p), 3) : emptyMoments(3))),
    3,
  );
  const pooled = parts.flat();
  assert.equal(merged.count, pooled.length);
  const variance = momentsVariance(merged);
  for (let j = 0; j < 3; j++) {
    const v = column(pooled, j);
    close(merged.mean[j], naiveMean(v), TIGHT, `mean ${j}`);
    close(variance[j], naiveVariance(v), 1e-11, `variance ${j}`);
    assert.equal(merged.min[j], Math.min(...v));
    assert.equal(merged.max[j], Math.max(...v));
  }
});

test('a constant feature has variance exactly 0, and no rows give NaN variance', () => {
  const m = featureMoments([2, 5, 2, 6, 2, 7], 2);
  assert.equal(m.m2[0], 0);
  assert.ok(Number.isNaN(momentsVariance(emptyMoments(2))[0]));
});

test('min and max are never -0 (JSON between hosts cannot carry it, so merged answers would disagree)', () => {
  const m = featureMoments([0, -0, 0, 0, -0, 0, -0, -0, 1], 3);
  // Strict deepEqual compares with Object.is: a -0 anywhere fails it.
  assert.deepEqual([...m.min], [0, 0, 0]);
  assert.deepEqual([...m.max], [0, 0, 1]);
});

test('moments refuse ragged rows and bad replies, naming every problem', () => {
  assert.throws(() => featureMoments([1, 2, 3], 2), /3 values are not whole rows of 2 features/);
  const bad: FeatureMoments = { ...featureMoments([1, 2, 3, 4], 2), count: 1.5 };
  bad.m2[0] = -1;
  assert.throws(() => checkMoments(bad, 2, 'node 4'), /node 4: count must be a whole number.*m2 must be >= 0/);
  assert.throws(() => mergeMoments(emptyMoments(2), emptyMoments(3)), /2 and 3 features/);
});

// ---------- property tests ----------

const rowsArb = (f: number) =>
  fc.array(fc.array(fc.double({ min: -1e3, max: 1e3, noNaN: true }), { minLength: f, maxLength: f }), {
    maxLength: 30,
  });
const momentsOf = (rows: number[][], f: number) => (rows.length ? featureMoments(flat(rows), f) : emptyMoments(f));

function assertMomentsClose(a: FeatureMoments, b: FeatureMoments, scale: number): void {
  assert.equal(a.count, b.count);
  assert.deepEqual(Array.from(a.min), Array.from(b.min));
  assert.deepEqual(Array.from(a.max), Array.from(b.max));
  // Values up to 1e3 and at most 90 rows: mean within 1e-12 of the scale, m2 (up to 9e7) within 1e-9 relative.
  for (let j = 0; j < a.mean.length; j++) {
    assert.ok(Math.abs(a.mean[j] - b.mean[j]) <= 1e-12 * scale, `mean ${a.mean[j]} vs ${b.mean[j]}`);
    assert.ok(Math.abs(a.m2[j] - b.m2[j]) <= 1e-9 * Math.max(b.m2[j], scale * scale), `m2 ${a.m2[j]} vs ${b.m2[j]}`);
  }
}

test('property: moment merging is commutative and associative, and merged partitions equal the pooled rows', () => {
  fc.assert(
    fc.property(rowsArb(2), rowsArb(2), rowsArb(2), (ra, rb, rc) => {
      const [a, b, c] = [momentsOf(ra, 2), momentsOf(rb, 2), momentsOf(rc, 2)];
      const scale = 1e3;
      assertMomentsClose(mergeMoments(a, b), mergeMoments(b, a), scale);
      assertMomentsClose(mergeMoments(mergeMoments(a, b), c), mergeMoments(a, mergeMoments(b, c)), scale);
      assertMomentsClose(mergeMoments(mergeMoments(a, b), c), momentsOf([...ra, ...rb, ...rc], 2), scale);
    }),
    { numRuns: 300 },
  );
});

test('property: histogram and label-count merging is exact and equals the pooled histogram', () => {
  fc.assert(
    fc.property(rowsArb(2), rowsArb(2), (ra, rb) => {
      const [lo, hi] = [
        [-1e3, -1e3],
        [1e3, 1e3],
      ];
      const h = (rows: number[][]) =>
        rows.length ? featureHistogram(flat(rows), lo, hi, 16) : emptyHistogram(lo, hi, 16);
      const merged = mergeHistograms(h(ra), h(rb));
      assert.deepEqual(Array.from(merged.counts), Array.from(h([...ra, ...rb]).counts));
      assert.deepEqual(Array.from(mergeHistograms(h(rb), h(ra)).counts), Array.from(merged.counts));
      const la = ra.map((r) => (r[0] > 0 ? 1 : 0));
      const lb = rb.map((r) => (r[1] > 0 ? 2 : 0));
      assert.deepEqual(
        Array.from(addCounts(labelCounts(la, 3), labelCounts(lb, 3))),
        Array.from(labelCounts([...la, ...lb], 3)),
      );
    }),
    { numRuns: 200 },
  );
});

test('histogram counts match a naive bin count, and quantiles are within one bin width of the sorted values', () => {
  const rng = new Rng(11);
  const rows = randomRows(rng, 2000, 2);
  const pooled = flat(rows);
  const m = featureMoments(pooled, 2);
  const bins = 64;
  const parts = [rows.slice(0, 300), rows.slice(300, 1700), rows.slice(1700)];
  const merged = parts
    .map((p) => featureHistogram(flat(p), m.min, m.max, bins))
    .reduce((a, b) => mergeHistograms(a, b));
  const qs = [0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1];
  const est = histogramQuantiles(merged, qs);
  for (let j = 0; j < 2; j++) {
    const v = column(rows, j);
    const width = (m.max[j] - m.min[j]) / bins;
    // Naive binning: count values in [lo + b w, lo + (b + 1) w), the last bin closed.
    for (const b of [0, 17, bins - 1]) {
      const lo = m.min[j] + b * width;
      const naive = v.filter((x) => x >= lo && (b === bins - 1 ? x <= m.max[j] : x < lo + width)).length;
      assert.ok(Math.abs(merged.counts[j * bins + b] - naive) <= 1, `bin ${b}: edge rounding moves at most one value`);
    }
    assert.equal(
      merged.counts.subarray(j * bins, (j + 1) * bins).reduce((a, b) => a + b, 0),
      2000,
    );
    qs.forEach((q, i) => {
      const truth = naiveQuantile(v, q);
      const err = Math.abs(est[j][i] - truth);
      assert.ok(
        err <= width * (1 + 1e-9),
        `feature ${j} q=${q}: estimate ${est[j][i]} vs ${truth}, error ${err} > ${width}`,
      );
    });
  }
});

test('property: a histogram quantile is within one bin width of the exact order statistic', () => {
  fc.assert(
    fc.property(
      fc.array(fc.double({ min: -50, max: 50, noNaN: true }), { minLength: 1, maxLength: 200 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.integer({ min: 1, max: 50 }),
      (values, q, bins) => {
        const lo = Math.min(...values);
        const hi = Math.max(...values);
        const h = featureHistogram(values, [lo], [hi], bins);
        const est = histogramQuantiles(h, [q])[0][0];
        const width = (hi - lo) / bins;
        assert.ok(Math.abs(est - naiveQuantile(values, q)) <= width * (1 + 1e-9) + 1e-12);
      },
    ),
    { numRuns: 300 },
  );
});

test('histograms and label counts refuse bad input with what was expected', () => {
  assert.throws(() => emptyHistogram([0], [1], 0), /bins must be a whole number in \[1, 4096\], got 0/);
  assert.throws(() => emptyHistogram([2], [1], 4), /feature 0: range \[2, 1\]/);
  assert.throws(() => histogramQuantiles(emptyHistogram([0], [1], 4), [1.5]), /quantile 1.5 is not in \[0, 1\]/);
  assert.throws(() => labelCounts([0, 3], 3), /label 1 is 3, expected a class index in \[0, 3\)/);
  assert.throws(
    () => mergeHistograms(emptyHistogram([0], [1], 4), emptyHistogram([0], [2], 4)),
    /different features, ranges or bins/,
  );
});
