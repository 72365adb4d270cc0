/**
 * What a federated analytics query asks for, parsed the same way from the command line (`edgefed analytics`)
 * and from `POST /v1/analytics`, with every problem named at once. A query runs in at most two analytics
 * rounds: moments first (count, mean, variance, min, max), then histograms over the federation's min..max
 * (or the ranges given), from which quantiles are read. Under secure aggregation only additive statistics
 * can be asked for (count, mean, variance, histograms over declared ranges, label counts): see
 * analytics-secure.ts.
 */
import { MAX_HISTOGRAM_BINS } from '../core/analytics/histogram.js';

/** stats = count, mean, variance, std, min, max; moments = the same without min and max (additive: secagg-able). */
export const ANALYTICS_QUERIES = ['stats', 'moments', 'histogram', 'quantiles', 'labels'] as const;
export type AnalyticsQueryKind = (typeof ANALYTICS_QUERIES)[number];

export const DEFAULT_ANALYTICS_BINS = 64;
export const DEFAULT_QUANTILES: readonly number[] = [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99];

/**
 * Under secagg without ranges, every feature value is clipped to [-clip, clip] (2^20 by default: wide enough
 * for raw sensor readings, and the fixed point grows by a few bits rather than losing precision).
 */
export const DEFAULT_SECURE_CLIP = 2 ** 20;

export interface AnalyticsDp {
  /** Noise stddev as a multiple of each released count vector's L2 sensitivity. */
  noise: number;
  delta: number;
}

export interface AnalyticsQuery {
  kinds: AnalyticsQueryKind[];
  /** Feature indices (0-based), ascending; absent = every feature. */
  features?: number[];
  bins: number;
  quantiles: number[];
  /** Histogram ranges, one [lo, hi] per selected feature or one for all; absent = the federation's min..max. */
  ranges?: [number, number][];
  /** Differential privacy on the released counts (count, histogram bins, label counts). */
  dp?: AnalyticsDp;
  /** Secure aggregation: the coordinator learns only the sum; values clipped to `ranges` or to [-clip, clip]. */
  secagg?: { clip: number };
}

/** The raw fields of a query as a caller writes them (flag values or a JSON body). */
export interface AnalyticsQueryInput {
  query?: unknown;
  features?: unknown;
  bins?: unknown;
  quantiles?: unknown;
  ranges?: unknown;
  dpNoise?: unknown;
  dpDelta?: unknown;
  secagg?: unknown;
  clip?: unknown;
}

const list = (v: unknown): unknown[] =>
  Array.isArray(v)
    ? v
    : typeof v === 'string'
      ? v
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '')
      : [v];
const toNumber = (v: unknown): number => (typeof v === 'string' && v.trim() !== '' ? Number(v) : (v as number));

/** Checks and normalises a query; throws one Error listing every problem, each with its field. */
export function parseAnalyticsQuery(input: AnalyticsQueryInput): AnalyticsQuery {
  const problems: string[] = [];
  const kinds: AnalyticsQueryKind[] = [];
  for (const k of list(input.query ?? 'stats')) {
    if ((ANALYTICS_QUERIES as readonly unknown[]).includes(k)) kinds.push(k as AnalyticsQueryKind);
    else problems.push(`query: unknown query '${String(k)}' (accepted: ${ANALYTICS_QUERIES.join(', ')})`);
  }
  if (kinds.length === 0 && problems.length === 0) problems.push('query: name at least one query');
  let features: number[] | undefined;
  if (input.features !== undefined) {
    features = list(input.features).map(toNumber);
    const bad = features.filter((f) => !(Number.isInteger(f) && f >= 0));
    if (bad.length > 0 || features.length === 0)
      problems.push(`features: expected feature indices (whole numbers >= 0), got '${String(input.features)}'`);
    features = [...new Set(features)].sort((a, b) => a - b);
  }
  const bins = input.bins === undefined ? DEFAULT_ANALYTICS_BINS : toNumber(input.bins);
  if (!(Number.isInteger(bins) && bins >= 1 && bins <= MAX_HISTOGRAM_BINS))
    problems.push(`bins: expected a whole number in [1, ${MAX_HISTOGRAM_BINS}], got '${String(input.bins)}'`);
  const quantiles = input.quantiles === undefined ? [...DEFAULT_QUANTILES] : list(input.quantiles).map(toNumber);
  if (quantiles.length === 0 || quantiles.some((q) => !(q >= 0 && q <= 1)))
    problems.push(`quantiles: expected numbers in [0, 1], got '${String(input.quantiles)}'`);
  let ranges: [number, number][] | undefined;
  if (input.ranges !== undefined) {
    ranges = list(input.ranges).map((r) => {
      const pair = Array.isArray(r) ? r.map(toNumber) : String(r).split(':').map(toNumber);
      return [pair[0], pair[1]] as [number, number];
    });
    if (ranges.length === 0 || ranges.some(([lo, hi]) => !(Number.isFinite(lo) && Number.isFinite(hi) && lo < hi)))
      problems.push(`ranges: expected LO:HI pairs with LO < HI, got '${String(input.ranges)}'`);
    else if (ranges.length > 1 && ranges.length !== features?.length)
      problems.push(`ranges: give one LO:HI for every feature, or one per selected feature (with features)`);
  }
  let dp: AnalyticsDp | undefined;
  if (input.dpNoise !== undefined) {
    const noise = toNumber(input.dpNoise);
    const delta = input.dpDelta === undefined ? 1e-5 : toNumber(input.dpDelta);
    if (!(noise > 0 && noise < 1e6)) problems.push(`dpNoise: expected a noise multiplier > 0, got '${input.dpNoise}'`);
    if (!(delta > 0 && delta < 1)) problems.push(`dpDelta: expected a number in (0, 1), got '${input.dpDelta}'`);
    if (kinds.includes('stats') || kinds.includes('moments'))
      problems.push(
        `query: ${kinds.includes('stats') ? 'stats (mean, variance, min, max)' : 'moments (mean, variance)'} are ` +
          'refused with DP noise: min and max are single rows, and noisy sums need declared bounds; ask for ' +
          'histogram, quantiles or labels (counts)',
      );
    if ((kinds.includes('histogram') || kinds.includes('quantiles')) && ranges === undefined)
      problems.push('ranges: DP histograms and quantiles need declared ranges (the federation min/max is not private)');
    dp = { noise, delta };
  } else if (input.dpDelta !== undefined) problems.push('dpDelta: only with dpNoise');
  let secagg: AnalyticsQuery['secagg'];
  if (input.secagg !== undefined && input.secagg !== true && input.secagg !== false && input.secagg !== 'true')
    problems.push(`secagg: expected true or false, got '${String(input.secagg)}'`);
  else if (input.secagg === true || input.secagg === 'true') {
    const clip = input.clip === undefined ? DEFAULT_SECURE_CLIP : toNumber(input.clip);
    if (!(Number.isFinite(clip) && clip > 0 && clip <= 2 ** 60))
      problems.push(`clip: expected a number in (0, 2^60], got '${String(input.clip)}'`);
    if (input.clip !== undefined && ranges !== undefined)
      problems.push('clip: give ranges or clip, not both (the ranges bound the values under secagg)');
    if (kinds.includes('stats'))
      problems.push(
        'query: stats includes min and max, which are not additive and cannot be secure-aggregated (the ' +
          "coordinator would learn each node's extremes); ask for 'moments' (count, mean, variance, std) with secagg",
      );
    if ((kinds.includes('histogram') || kinds.includes('quantiles')) && ranges === undefined && dp === undefined)
      problems.push(
        'ranges: histograms and quantiles under secagg need declared ranges (the federation min/max they would ' +
          'otherwise use is not additive)',
      );
    secagg = { clip };
  } else if (input.clip !== undefined) problems.push('clip: only with secagg');
  if (problems.length > 0) throw new Error(problems.join('; '));
  return {
    kinds: [...new Set(kinds)],
    ...(features ? { features } : {}),
    bins,
    quantiles,
    ...(ranges ? { ranges } : {}),
    ...(dp ? { dp } : {}),
    ...(secagg ? { secagg } : {}),
  };
}

/** Whether the query needs histograms (a second round when no ranges are given). */
export function needsHistogram(query: AnalyticsQuery): boolean {
  return query.kinds.includes('histogram') || query.kinds.includes('quantiles');
}
