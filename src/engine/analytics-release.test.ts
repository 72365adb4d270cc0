import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countNoise, histogramRelease } from './analytics-release.js';
import { DEFAULT_ORDERS } from '../core/rdp.js';

/**
 * Naive epsilon of Gaussian releases with noise multipliers z_i: RDP alpha / (2 z^2) each, summed, converted as
 * Balle et al. 2020 Theorem 21 and minimised over the orders.
 */
function naiveEpsilon(multipliers: number[], delta: number): number {
  let best = Infinity;
  for (const alpha of DEFAULT_ORDERS) {
    const rdp = multipliers.reduce((sum, z) => sum + alpha / (2 * z * z), 0);
    const eps = rdp - (Math.log(delta) + Math.log(alpha)) / (alpha - 1) + Math.log((alpha - 1) / alpha);
    if (eps < best) best = eps;
  }
  return best;
}

test('countNoise centrally: stddev ceil(noise x sensitivity) per release, epsilon of the Gaussian releases composed', () => {
  const releases = [
    { name: 'count', sensitivity: 1 },
    { name: 'labels', sensitivity: 1 },
    { name: 'histogram', sensitivity: Math.sqrt(3) },
  ];
  const { perNode, sigma, epsilon } = countNoise(releases, { noise: 2.5, delta: 1e-5 });
  assert.deepEqual(sigma, { count: 3, labels: 3, histogram: Math.ceil(2.5 * Math.sqrt(3)) });
  assert.deepEqual(perNode, sigma);
  const expected = naiveEpsilon([3, 3, 5 / Math.sqrt(3)], 1e-5);
  // Tolerance: the accountant sums the same terms in another order and form (a few ulps of ~2).
  assert.ok(Math.abs(epsilon - expected) < 1e-9 * expected, `${epsilon} vs ${expected}`);
  // A tiny multiplier still adds one step of noise.
  assert.equal(countNoise([{ name: 'count', sensitivity: 1 }], { noise: 0.01, delta: 1e-5 }).sigma.count, 1);
});

test('countNoise distributed: each of minNodes nodes adds a share (at least minSteps), their sum >= noise x sensitivity', () => {
  const releases = [
    { name: 'count', sensitivity: 1 },
    { name: 'histogram', sensitivity: 2 },
  ];
  const { perNode, sigma, epsilon } = countNoise(releases, { noise: 4, delta: 1e-6 }, 3, 2);
  for (const { name, sensitivity } of releases) {
    assert.equal(sigma[name], perNode[name] * Math.sqrt(3));
    assert.ok(sigma[name] >= 4 * sensitivity);
  }
  assert.deepEqual(perNode, { count: Math.ceil(4 / Math.sqrt(3)), histogram: Math.ceil(8 / Math.sqrt(3)) });
  const expected = naiveEpsilon([sigma.count, sigma.histogram / 2], 1e-6);
  assert.ok(Math.abs(epsilon - expected) < 1e-9 * expected, `${epsilon} vs ${expected}`);
  assert.equal(countNoise([{ name: 'count', sensitivity: 1 }], { noise: 0.5, delta: 1e-6 }, 100, 2).perNode.count, 2);
});

test('histogramRelease: per-feature counts, and quantiles within one bin width, only as the query asks', () => {
  // Two features, 4 bins each: feature 0 over [0, 4), feature 1 over [-10, 10).
  const h = {
    bins: 4,
    lo: Float64Array.from([0, -10]),
    hi: Float64Array.from([4, 10]),
    counts: Float64Array.from([1, 1, 1, 1, 0, 0, 4, 0]),
  };
  const both = histogramRelease(h, { kinds: ['histogram', 'quantiles'], quantiles: [0.5] }, 2);
  assert.deepEqual(both.histogram, {
    bins: 4,
    lo: [0, -10],
    hi: [4, 10],
    counts: [
      [1, 1, 1, 1],
      [0, 0, 4, 0],
    ],
  });
  assert.deepEqual(both.quantiles!.q, [0.5]);
  assert.deepEqual(both.quantiles!.maxError, [1, 5]);
  // The median of feature 0's rows (uniform over [0, 4)) is 2; feature 1's rows all lie in [0, 5).
  assert.ok(Math.abs(both.quantiles!.values[0][0] - 2) <= 1);
  assert.ok(both.quantiles!.values[1][0] >= 0 && both.quantiles!.values[1][0] <= 5);
  assert.deepEqual(Object.keys(histogramRelease(h, { kinds: ['quantiles'], quantiles: [0.5] }, 2)), ['quantiles']);
  assert.deepEqual(histogramRelease(h, { kinds: ['stats'], quantiles: [] }, 2), {});
});
