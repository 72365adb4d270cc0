/** Seeded train/validation splits and feature scaling fitted on training data only. */
import type { Rng } from '../core/rng.js';
import { featureSize, subset, type Dataset } from './types.js';

/**
 * Shuffle d with rng, then take round(n * validationFraction) rows as validation and the rest as
 * train (both in shuffled order). Validation never takes every row: a non-empty d keeps at least
 * one training row.
 */
export function trainValidationSplit<T extends Dataset>(
  d: T,
  validationFraction: number,
  rng: Rng,
): { train: T; validation: T } {
  if (!(validationFraction >= 0 && validationFraction < 1)) {
    throw new Error(`validation fraction must be in [0, 1), got ${validationFraction}`);
  }
  const perm = rng.permutation(d.n);
  const nVal = Math.min(Math.round(d.n * validationFraction), Math.max(d.n - 1, 0));
  return {
    // subset() copies every field of d (e.g. CSV classNames), so the result keeps d's type.
    train: subset(d, perm.subarray(nVal), `${d.source}#train`) as T,
    validation: subset(d, perm.subarray(0, nVal), `${d.source}#validation`) as T,
  };
}

export interface StandardizeStats {
  /** Per-feature mean of the training set. */
  mean: number[];
  /** Per-feature population standard deviation of the training set; 0 for constant features. */
  std: number[];
}

export interface MinMaxStats {
  min: number[];
  max: number[];
}

function requireFeatures(d: Dataset, f: number): void {
  if (featureSize(d) !== f) {
    throw new Error(`${d.source}: has ${featureSize(d)} features per example but the scaling statistics cover ${f}`);
  }
}

/** Per-feature mean and std of d (two passes in float64, so a constant column gets std exactly 0). */
export function standardizeStats(d: Dataset): StandardizeStats {
  if (d.n === 0) throw new Error(`${d.source}: cannot compute standardization statistics of an empty dataset`);
  const f = featureSize(d);
  const mean = new Float64Array(f);
  const sq = new Float64Array(f);
  for (let r = 0; r < d.n; r++) for (let j = 0; j < f; j++) mean[j] += d.x[r * f + j];
  for (let j = 0; j < f; j++) mean[j] /= d.n;
  for (let r = 0; r < d.n; r++) {
    for (let j = 0; j < f; j++) {
      const t = d.x[r * f + j] - mean[j];
      sq[j] += t * t;
    }
  }
  return { mean: Array.from(mean), std: Array.from(sq, (s) => Math.sqrt(s / d.n)) };
}

/** (x - mean) / std per feature; features with std 0 are only centred, never divided by zero. */
export function applyStandardize<T extends Dataset>(d: T, stats: StandardizeStats): T {
  const f = stats.mean.length;
  requireFeatures(d, f);
  const x = new Float32Array(d.x.length);
  for (let j = 0; j < f; j++) {
    const m = stats.mean[j];
    const inv = stats.std[j] > 0 ? 1 / stats.std[j] : 1;
    for (let i = j; i < x.length; i += f) x[i] = (d.x[i] - m) * inv;
  }
  return { ...d, x };
}

/** Fit z-score scaling on train only and apply it to train and every other dataset. */
export function standardize<T extends Dataset>(
  train: T,
  ...others: T[]
): { train: T; others: T[]; stats: StandardizeStats } {
  others.forEach((other) => requireFeatures(other, featureSize(train)));
  const stats = standardizeStats(train);
  return {
    train: applyStandardize(train, stats),
    others: others.map((other) => applyStandardize(other, stats)),
    stats,
  };
}

export function minMaxStats(d: Dataset): MinMaxStats {
  if (d.n === 0) throw new Error(`${d.source}: cannot compute min/max statistics of an empty dataset`);
  const f = featureSize(d);
  const min = Array.from(d.x.subarray(0, f));
  const max = [...min];
  for (let r = 1; r < d.n; r++) {
    for (let j = 0; j < f; j++) {
      const v = d.x[r * f + j];
      if (v < min[j]) min[j] = v;
      if (v > max[j]) max[j] = v;
    }
  }
  return { min, max };
}

/** (x - min) / (max - min) per feature; constant features become 0. Other sets may fall outside [0,1]. */
export function applyMinMax<T extends Dataset>(d: T, stats: MinMaxStats): T {
  const f = stats.min.length;
  requireFeatures(d, f);
  const x = new Float32Array(d.x.length);
  for (let j = 0; j < f; j++) {
    const lo = stats.min[j];
    const range = stats.max[j] - lo;
    const inv = range > 0 ? 1 / range : 1;
    for (let i = j; i < x.length; i += f) x[i] = (d.x[i] - lo) * inv;
  }
  return { ...d, x };
}

/** Fit min/max scaling on train only and apply it to train and every other dataset. */
export function minMaxScale<T extends Dataset>(
  train: T,
  ...others: T[]
): { train: T; others: T[]; stats: MinMaxStats } {
  others.forEach((other) => requireFeatures(other, featureSize(train)));
  const stats = minMaxStats(train);
  return { train: applyMinMax(train, stats), others: others.map((other) => applyMinMax(other, stats)), stats };
}
