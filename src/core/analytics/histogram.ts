/**
 * Fixed-range histograms per feature, quantiles read from them, and label counts: all plain counts, so
 * merging is adding (exact in float64 below 2^53 rows, associative and commutative) and a secure sum could
 * carry them.
 *
 * Quantile error bound: with range [lo, hi] and B bins of width w = (hi - lo) / B, and every value inside the
 * range (take it from the federation's min/max, a first pass), the estimate for q lies in the same bin as
 * the true quantile x_(k), the k-th smallest value with k = max(1, ceil(q * n)) ("inverted CDF"). So
 * |estimate - x_(k)| <= w. Bin assignment is monotone in x, which is what puts x_(k) in that bin. Values
 * outside the range are counted in the end bins, where the bound no longer holds.
 */

export interface FeatureHistogram {
  bins: number;
  /** Per feature, the range the bins split evenly. */
  lo: Float64Array;
  hi: Float64Array;
  /** features x bins counts, row-major by feature. */
  counts: Float64Array;
}

/** Most bins per feature a query may ask for (keeps a reply small). */
export const MAX_HISTOGRAM_BINS = 4096;

/** An empty histogram over per-feature ranges; checks the ranges and the bin count. */
export function emptyHistogram(lo: ArrayLike<number>, hi: ArrayLike<number>, bins: number): FeatureHistogram {
  if (!(Number.isInteger(bins) && bins >= 1 && bins <= MAX_HISTOGRAM_BINS))
    throw new Error(`bins must be a whole number in [1, ${MAX_HISTOGRAM_BINS}], got ${bins}`);
  if (lo.length !== hi.length) throw new Error(`ranges: ${lo.length} lows but ${hi.length} highs`);
  for (let j = 0; j < lo.length; j++) {
    if (!(Number.isFinite(lo[j]) && Number.isFinite(hi[j]) && lo[j] <= hi[j]))
      throw new Error(`feature ${j}: range [${lo[j]}, ${hi[j]}] must be finite with low <= high`);
  }
  return { bins, lo: Float64Array.from(lo), hi: Float64Array.from(hi), counts: new Float64Array(lo.length * bins) };
}

/** The bin of v in [lo, hi] split into `bins`; out-of-range values go to the end bins. */
export function binOf(v: number, lo: number, hi: number, bins: number): number {
  if (!(hi > lo)) return 0;
  const b = Math.floor(((v - lo) / (hi - lo)) * bins);
  return b < 0 ? 0 : b >= bins ? bins - 1 : b;
}

/** Histogram of row-major rows x (n x features) over the given ranges. */
export function featureHistogram(
  x: ArrayLike<number>,
  lo: ArrayLike<number>,
  hi: ArrayLike<number>,
  bins: number,
): FeatureHistogram {
  const h = emptyHistogram(lo, hi, bins);
  const f = h.lo.length;
  if (f === 0 || x.length % f !== 0) throw new Error(`${x.length} values are not whole rows of ${f} features`);
  for (let i = 0; i < x.length; i += f) {
    for (let j = 0; j < f; j++) h.counts[j * bins + binOf(x[i + j], h.lo[j], h.hi[j], bins)]++;
  }
  return h;
}

/** Adds two histograms over the same ranges and bins. */
export function mergeHistograms(a: FeatureHistogram, b: FeatureHistogram): FeatureHistogram {
  const sameRanges = a.lo.every((v, j) => v === b.lo[j] && a.hi[j] === b.hi[j]);
  if (a.bins !== b.bins || a.lo.length !== b.lo.length || !sameRanges)
    throw new Error('cannot merge histograms with different features, ranges or bins');
  return { bins: a.bins, lo: a.lo, hi: a.hi, counts: a.counts.map((c, i) => c + b.counts[i]) };
}

/** The q-quantiles (each q in [0, 1]) of every feature, interpolated inside the bin that holds them. */
export function histogramQuantiles(h: FeatureHistogram, qs: readonly number[]): number[][] {
  for (const q of qs) if (!(q >= 0 && q <= 1)) throw new Error(`quantile ${q} is not in [0, 1]`);
  const f = h.lo.length;
  const out: number[][] = [];
  for (let j = 0; j < f; j++) {
    const row = h.counts.subarray(j * h.bins, (j + 1) * h.bins);
    const n = row.reduce((s, c) => s + c, 0);
    const width = (h.hi[j] - h.lo[j]) / h.bins;
    out.push(
      qs.map((q) => {
        if (n === 0) return NaN;
        const k = Math.max(1, Math.ceil(q * n));
        let before = 0;
        let b = 0;
        while (b < h.bins - 1 && before + row[b] < k) before += row[b++];
        const inside = row[b] > 0 ? (k - before) / row[b] : 0;
        return h.lo[j] + (b + inside) * width;
      }),
    );
  }
  return out;
}

/** Examples per class of integer labels in [0, classes). */
export function labelCounts(labels: ArrayLike<number>, classes: number): Float64Array {
  if (!(Number.isInteger(classes) && classes >= 1)) throw new Error(`classes must be >= 1, got ${classes}`);
  const out = new Float64Array(classes);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (!(Number.isInteger(y) && y >= 0 && y < classes))
      throw new Error(`label ${i} is ${y}, expected a class index in [0, ${classes})`);
    out[y]++;
  }
  return out;
}

/** Adds count vectors of equal length (label counts, or a histogram's counts). */
export function addCounts(a: Float64Array, b: Float64Array): Float64Array {
  if (a.length !== b.length) throw new Error(`cannot add ${a.length} counts to ${b.length}`);
  return a.map((c, i) => c + b[i]);
}
