/**
 * The ADDITIVE statistics of a node's rows, for analytics under secure aggregation: one flat vector whose
 * element-wise sum over nodes is the same vector for the pooled rows, so the coordinator needs only the sum.
 *
 *   [ count | clipped_j, S1_j, S2_j per feature (moments) | bin counts per feature (histogram) | label counts ]
 *
 * Moments are sums about a centre c_j = (lo_j + hi_j) / 2 of each feature's DECLARED range [lo_j, hi_j]:
 * S1_j = sum (v - c_j), S2_j = sum (v - c_j)^2 with v = x clipped into the range (clipped_j counts how many
 * values were moved). The range bounds every term, which is what lets a fixed-point encoding be sized so it
 * cannot overflow, and centring keeps S2 small when the range is tight around the data. A node computes its
 * sums from two-pass float64 moments (S2 = m2 + n (mean - c)^2), not by summing squares row by row.
 *
 * Min and max are not additive (a sum of minima is meaningless), so they have no place here.
 */

import { binOf, MAX_HISTOGRAM_BINS } from './histogram.js';
import { wideToNumber } from '../secagg/wide-fixed.js';

/** Most label slots a vector may carry (keeps a request from sizing a node's vector without bound). */
export const MAX_LABEL_SLOTS = 65536;

export interface AdditiveSpec {
  /** Features per row (after any selection). */
  features: number;
  /** Declared per-feature value ranges for count, mean and variance; absent = no moments. */
  moments?: { lo: ArrayLike<number>; hi: ArrayLike<number> };
  /** Histogram bins over per-feature ranges; absent = no histogram. */
  histogram?: { bins: number; lo: ArrayLike<number>; hi: ArrayLike<number> };
  /** Label slots (0 = no label counts); a node's labels must be < classes. */
  classes: number;
}

/** Where each part of the vector starts, and its total length. */
export interface AdditiveLayout {
  count: number;
  clipped: number;
  s1: number;
  s2: number;
  histogram: number;
  labels: number;
  length: number;
}

export function additiveLayout(spec: AdditiveSpec): AdditiveLayout {
  const f = spec.features;
  const momentWords = spec.moments ? f : 0;
  const clipped = 1;
  const s1 = clipped + momentWords;
  const s2 = s1 + momentWords;
  const histogram = s2 + momentWords;
  const labels = histogram + (spec.histogram ? f * spec.histogram.bins : 0);
  return { count: 0, clipped, s1, s2, histogram, labels, length: labels + spec.classes };
}

/** Checks a spec's shapes and ranges; throws naming the first problem. */
export function checkAdditiveSpec(spec: AdditiveSpec): void {
  const f = spec.features;
  if (!(Number.isInteger(f) && f >= 1)) throw new Error(`additive statistics: features must be >= 1, got ${f}`);
  if (!(Number.isInteger(spec.classes) && spec.classes >= 0 && spec.classes <= MAX_LABEL_SLOTS))
    throw new Error(
      `additive statistics: classes must be a whole number in [0, ${MAX_LABEL_SLOTS}], got ${spec.classes}`,
    );
  const ranges = (what: string, lo: ArrayLike<number>, hi: ArrayLike<number>) => {
    if (lo.length !== f || hi.length !== f)
      throw new Error(`additive statistics: ${what} ranges cover ${lo.length} features, the rows have ${f}`);
    for (let j = 0; j < f; j++)
      if (!(Number.isFinite(lo[j]) && Number.isFinite(hi[j]) && lo[j] < hi[j]))
        throw new Error(`additive statistics: ${what} range of feature ${j} [${lo[j]}, ${hi[j]}] needs low < high`);
  };
  if (spec.moments) ranges('value', spec.moments.lo, spec.moments.hi);
  if (spec.histogram) {
    const bins = spec.histogram.bins;
    if (!(Number.isInteger(bins) && bins >= 1 && bins <= MAX_HISTOGRAM_BINS))
      throw new Error(`additive statistics: bins must be a whole number in [1, ${MAX_HISTOGRAM_BINS}], got ${bins}`);
    ranges('histogram', spec.histogram.lo, spec.histogram.hi);
  }
}

/** The centre of each declared range, about which S1 and S2 are taken. */
export function rangeCentres(lo: ArrayLike<number>, hi: ArrayLike<number>): Float64Array {
  return Float64Array.from({ length: lo.length }, (_, j) => lo[j] / 2 + hi[j] / 2);
}

/**
 * The additive vector of row-major rows x (n x features) and their labels y (only read with classes > 0).
 * Throws on a non-finite value or a label outside [0, classes).
 */
export function additiveStatistics(x: ArrayLike<number>, y: ArrayLike<number> | undefined, spec: AdditiveSpec) {
  checkAdditiveSpec(spec);
  const f = spec.features;
  if (x.length % f !== 0) throw new Error(`additive statistics: ${x.length} values are not whole rows of ${f}`);
  const n = x.length / f;
  const at = additiveLayout(spec);
  const out = new Float64Array(at.length);
  out[at.count] = n;
  for (let i = 0; i < x.length; i++)
    if (!Number.isFinite(x[i])) throw new Error(`additive statistics: row ${Math.floor(i / f)} has a non-finite value`);
  if (spec.moments && n > 0) {
    const { lo, hi } = spec.moments;
    const centre = rangeCentres(lo, hi);
    // Two row-major passes over the clipped values: each column's mean, then squared deviations from it.
    const sum = new Float64Array(f);
    const m2 = new Float64Array(f);
    for (let i = 0; i < x.length; i += f) {
      for (let j = 0; j < f; j++) {
        const v = x[i + j];
        if (v < lo[j]) {
          sum[j] += lo[j];
          out[at.clipped + j]++;
        } else if (v > hi[j]) {
          sum[j] += hi[j];
          out[at.clipped + j]++;
        } else sum[j] += v;
      }
    }
    const mean = sum.map((s) => s / n);
    for (let i = 0; i < x.length; i += f) {
      for (let j = 0; j < f; j++) {
        const v = x[i + j];
        const d = (v < lo[j] ? lo[j] : v > hi[j] ? hi[j] : v) - mean[j];
        m2[j] += d * d;
      }
    }
    for (let j = 0; j < f; j++) {
      const shift = mean[j] - centre[j];
      out[at.s1 + j] = n * shift;
      out[at.s2 + j] = m2[j] + n * shift * shift;
    }
  }
  if (spec.histogram) {
    const { bins, lo, hi } = spec.histogram;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < f; j++) {
        out[at.histogram + j * bins + binOf(x[i * f + j], lo[j], hi[j], bins)]++;
      }
    }
  }
  if (spec.classes > 0) {
    if (!y || y.length !== n) throw new Error(`additive statistics: ${n} rows need ${n} labels`);
    for (let i = 0; i < n; i++) {
      const c = y[i];
      if (!(Number.isInteger(c) && c >= 0 && c < spec.classes))
        throw new Error(`additive statistics: label ${c} of row ${i} is outside the ${spec.classes} label slots`);
      out[at.labels + c]++;
    }
  }
  return out;
}

export interface AdditiveSummary {
  count: number;
  /** Per feature (with moments): values moved into the declared range, mean, population variance. */
  clipped?: number[];
  mean?: number[];
  variance?: number[];
  /** features x bins, row-major by feature. */
  histogram?: number[];
  labels?: number[];
}

/**
 * Reads the summed vector back. `sums` are exact integers scaled by 2^fractionBits (wide fixed point), so the
 * variance's cancellation N S2 - S1^2 is done exactly in BigInt and rounded once.
 */
export function additiveSummary(sums: readonly bigint[], fractionBits: number, spec: AdditiveSpec): AdditiveSummary {
  const at = additiveLayout(spec);
  if (sums.length !== at.length)
    throw new Error(`additive statistics: the sum has ${sums.length} values, the layout ${at.length}`);
  const num = (k: number) => wideToNumber(sums[k], { fractionBits });
  const range = (start: number, length: number) => Array.from({ length }, (_, k) => num(start + k));
  const out: AdditiveSummary = { count: num(at.count) };
  const f = spec.features;
  if (spec.moments) {
    const n = num(at.count);
    if (!(n >= 1)) throw new Error('additive statistics: no rows were summed, so mean and variance are undefined');
    const nBig = sums[at.count] >> BigInt(fractionBits);
    const centre = rangeCentres(spec.moments.lo, spec.moments.hi);
    out.clipped = range(at.clipped, f);
    out.mean = Array.from({ length: f }, (_, j) => centre[j] + num(at.s1 + j) / n);
    out.variance = Array.from({ length: f }, (_, j) => {
      // N S2 - S1^2, both scaled: (N q2 2^f - q1^2) / (N^2 2^2f).
      const q1 = sums[at.s1 + j];
      const numerator = nBig * sums[at.s2 + j] * (1n << BigInt(fractionBits)) - q1 * q1;
      return Math.max(0, Number(numerator) / (n * n) / 2 ** (2 * fractionBits));
    });
  }
  if (spec.histogram) out.histogram = range(at.histogram, f * spec.histogram.bins);
  if (spec.classes > 0) out.labels = range(at.labels, spec.classes);
  return out;
}

/**
 * Worst-case error of each feature's mean and variance from fixed-point rounding alone, when `clients` nodes
 * each rounded their sums to multiples of 2^-fractionBits: delta = clients 2^-(fractionBits+1) / N on S1/N and
 * on S2/N, so |mean error| <= delta and |variance error| <= delta + 2 |mean - c| delta + delta^2.
 */
export function additiveErrorBound(
  summary: AdditiveSummary,
  spec: AdditiveSpec,
  fractionBits: number,
  clients: number,
) {
  const delta = (clients * 2 ** -(fractionBits + 1)) / summary.count;
  const centre = spec.moments ? rangeCentres(spec.moments.lo, spec.moments.hi) : new Float64Array(0);
  return {
    mean: (summary.mean ?? []).map(() => delta),
    variance: (summary.mean ?? []).map((m, j) => delta + 2 * Math.abs(m - centre[j]) * delta + delta * delta),
  };
}
