/**
 * What an analytics pass releases, the same whether its sums were taken in the clear (analytics-round.ts) or
 * under secure aggregation (analytics-secure.ts): the histogram and quantile figures of the pooled histogram,
 * and the DP noise of the released count vectors with the epsilon they spend together.
 */
import { histogramQuantiles, type FeatureHistogram } from '../core/analytics/histogram.js';
import { computeRdp, DEFAULT_ORDERS, getPrivacySpent } from '../core/rdp.js';
import type { AnalyticsQuery } from './analytics-query.js';

/** The histogram and quantile parts of an analytics result. */
export interface HistogramRelease {
  histogram?: { bins: number; lo: number[]; hi: number[]; counts: number[][] };
  /** Estimates within `maxError` (one bin width) of the exact order statistic of the pooled rows. */
  quantiles?: { q: number[]; values: number[][]; maxError: number[] };
}

/** The figures `query` asks for from the pooled histogram `h` of `features` features. */
export function histogramRelease(
  h: FeatureHistogram,
  query: Pick<AnalyticsQuery, 'kinds' | 'quantiles'>,
  features: number,
): HistogramRelease {
  const out: HistogramRelease = {};
  if (query.kinds.includes('histogram'))
    out.histogram = {
      bins: h.bins,
      lo: [...h.lo],
      hi: [...h.hi],
      counts: Array.from({ length: features }, (_, k) => [...h.counts.subarray(k * h.bins, (k + 1) * h.bins)]),
    };
  if (query.kinds.includes('quantiles'))
    out.quantiles = {
      q: query.quantiles,
      values: histogramQuantiles(h, query.quantiles),
      maxError: [...h.lo].map((lo, k) => (h.hi[k] - lo) / h.bins),
    };
  return out;
}

/** A released count vector: its name and L2 sensitivity (what adding or removing one row changes it by). */
export interface CountRelease {
  name: string;
  sensitivity: number;
}

/**
 * Discrete Gaussian noise for the count releases: each of at least `minNodes` nodes adds `perNode` stddev (at
 * least `minSteps`) so that their sum has stddev `sigma` >= noise x sensitivity (one node, the coordinator,
 * when the noise is added centrally). Epsilon composes the releases as Gaussian mechanisms without sampling.
 */
export function countNoise(
  releases: readonly CountRelease[],
  dp: { noise: number; delta: number },
  minNodes = 1,
  minSteps = 1,
): { perNode: Record<string, number>; sigma: Record<string, number>; epsilon: number } {
  const perNode: Record<string, number> = {};
  const sigma: Record<string, number> = {};
  let rdp = DEFAULT_ORDERS.map(() => 0);
  for (const { name, sensitivity } of releases) {
    const steps = Math.max(minSteps, Math.ceil((dp.noise * sensitivity) / Math.sqrt(minNodes)));
    perNode[name] = steps;
    sigma[name] = steps * Math.sqrt(minNodes);
    rdp = computeRdp(1, sigma[name] / sensitivity, 1, DEFAULT_ORDERS).map((v, i) => v + rdp[i]);
  }
  return { perNode, sigma, epsilon: getPrivacySpent(DEFAULT_ORDERS, rdp, dp.delta).epsilon };
}
