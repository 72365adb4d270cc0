import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  additiveErrorBound,
  additiveLayout,
  additiveStatistics,
  additiveSummary,
  type AdditiveSpec,
} from './additive.ts';
import { decodeWideSum, encodeWide, wideLimbsFor } from '../secagg/wide-fixed.ts';

/** Naive reference over the pooled rows: clip each value, then count, mean, two-pass variance, bins, labels. */
function naive(rows: number[][], labels: number[], spec: AdditiveSpec) {
  const f = spec.features;
  const clip = (v: number, j: number) => Math.min(spec.moments!.hi[j], Math.max(spec.moments!.lo[j], v));
  const column = (j: number) => rows.map((r) => clip(r[j], j));
  const mean = Array.from({ length: f }, (_, j) => column(j).reduce((a, b) => a + b, 0) / rows.length);
  return {
    count: rows.length,
    clipped: Array.from({ length: f }, (_, j) => rows.filter((r) => r[j] !== clip(r[j], j)).length),
    mean,
    variance: mean.map((m, j) => column(j).reduce((a, b) => a + (b - m) ** 2, 0) / rows.length),
    histogram: Array.from({ length: f }, (_, j) =>
      Array.from({ length: spec.histogram!.bins }, (_, b) => {
        const { lo, hi, bins } = spec.histogram!;
        return rows.filter(
          (r) => Math.min(bins - 1, Math.max(0, Math.floor(((r[j] - lo[j]) / (hi[j] - lo[j])) * bins))) === b,
        ).length;
      }),
    ).flat(),
    labels: Array.from({ length: spec.classes }, (_, c) => labels.filter((y) => y === c).length),
  };
}

const spec: AdditiveSpec = {
  features: 2,
  moments: { lo: [-10, 100], hi: [10, 200] },
  histogram: { bins: 4, lo: [-10, 100], hi: [10, 200] },
  classes: 3,
};

test('summed over nodes in wide fixed point, the statistics equal the naive pooled ones within the stated bound', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.array(
          fc.tuple(fc.double({ min: -15, max: 15, noNaN: true }), fc.double({ min: 90, max: 210, noNaN: true })),
          {
            minLength: 1,
            maxLength: 20,
          },
        ),
        { minLength: 2, maxLength: 5 },
      ),
      (nodes) => {
        const labelsOf = (rows: unknown[], k: number) => rows.map((_, i) => (i + k) % 3);
        const fractionBits = 40;
        const limbs = wideLimbsFor(1e6, nodes.length, fractionBits);
        const words = nodes.map((rows, k) =>
          encodeWide(additiveStatistics(rows.flat(), labelsOf(rows, k), spec), { fractionBits, limbs }),
        );
        const sum = new Uint32Array(words[0].length);
        for (const w of words) for (let i = 0; i < sum.length; i++) sum[i] += w[i];
        const summary = additiveSummary(decodeWideSum(sum, { fractionBits, limbs }), fractionBits, spec);
        const pooled = nodes.flat();
        const reference = naive(
          pooled,
          nodes.flatMap((rows, k) => labelsOf(rows, k)),
          spec,
        );
        const bound = additiveErrorBound(summary, spec, fractionBits, nodes.length);
        assert.equal(summary.count, reference.count);
        assert.deepEqual(summary.clipped, reference.clipped);
        assert.deepEqual(summary.histogram, reference.histogram);
        assert.deepEqual(summary.labels, reference.labels);
        for (let j = 0; j < 2; j++) {
          // Fixed point: the stated bound; float64: the nodes' and the reference's own rounding (values <= 200).
          const meanSlack = bound.mean[j] + 1e-13 * 200;
          const varianceSlack = bound.variance[j] + 1e-12 * (100 + reference.variance[j]);
          assert.ok(Math.abs(summary.mean![j] - reference.mean[j]) <= meanSlack, `mean ${j}`);
          assert.ok(Math.abs(summary.variance![j] - reference.variance[j]) <= varianceSlack, `variance ${j}`);
        }
      },
    ),
    { numRuns: 100 },
  );
});

test('the layout lays the parts end to end; no moments, no histogram, no labels leave only the count', () => {
  assert.deepEqual(additiveLayout(spec), {
    count: 0,
    clipped: 1,
    s1: 3,
    s2: 5,
    histogram: 7,
    labels: 15,
    length: 18,
  });
  assert.equal(additiveLayout({ features: 5, classes: 0 }).length, 1);
  assert.deepEqual([...additiveStatistics([1, 2, 3, 4], undefined, { features: 2, classes: 0 })], [2]);
});

test('bad inputs are refused, naming the problem', () => {
  const bad = (s: Partial<AdditiveSpec>, x: number[] = [1, 2], y?: number[]) =>
    assert.throws(() => additiveStatistics(x, y, { ...spec, ...s }));
  bad({ moments: { lo: [0, 0], hi: [0, 1] } });
  assert.throws(
    () => additiveStatistics([1, 2], undefined, { ...spec, moments: { lo: [1, 0], hi: [1, 1] } }),
    /value range of feature 0 \[1, 1\] needs low < high/,
  );
  assert.throws(() => additiveStatistics([1, 150], [3], spec), /label 3 of row 0 is outside the 3 label slots/);
  assert.throws(() => additiveStatistics([1, NaN], [0], spec), /row 0 has a non-finite value/);
  assert.throws(() => additiveStatistics([1, 2, 3], [0], spec), /3 values are not whole rows of 2/);
  assert.throws(() => additiveSummary([0n], 40, spec), /the sum has 1 values, the layout 18/);
  bad({ histogram: { bins: 0, lo: [0, 0], hi: [1, 1] } });
});
