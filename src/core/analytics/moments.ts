/**
 * Per-feature count, mean, variance, min and max of a node's rows, in a form that merges across nodes
 * without the rows: count / mean / M2 (sum of squared deviations from the mean) with Chan et al.'s
 * parallel update, all in float64. Merging is exact for count, min and max and associative and commutative
 * up to float64 rounding for mean and M2 (relative error of order 1e-15 per merge).
 */

/** The mergeable moments of F features over `count` rows. */
export interface FeatureMoments {
  count: number;
  mean: Float64Array;
  /** Sum over rows of (x - mean)^2, per feature; variance = m2 / count (population) or m2 / (count - 1). */
  m2: Float64Array;
  /** +Infinity / -Infinity per feature when count is 0. */
  min: Float64Array;
  max: Float64Array;
}

/** The moments of no rows: the identity of mergeMoments. */
export function emptyMoments(features: number): FeatureMoments {
  return {
    count: 0,
    mean: new Float64Array(features),
    m2: new Float64Array(features),
    min: new Float64Array(features).fill(Infinity),
    max: new Float64Array(features).fill(-Infinity),
  };
}

/** Moments of row-major rows x (n x features): two passes in float64, so a constant feature has m2 exactly 0. */
export function featureMoments(x: ArrayLike<number>, features: number): FeatureMoments {
  if (!(Number.isInteger(features) && features >= 1)) throw new Error(`features must be >= 1, got ${features}`);
  if (x.length % features !== 0) throw new Error(`${x.length} values are not whole rows of ${features} features`);
  const n = x.length / features;
  const out = emptyMoments(features);
  out.count = n;
  if (n === 0) return out;
  for (let i = 0; i < x.length; i += features) {
    for (let j = 0; j < features; j++) {
      const v = x[i + j];
      out.mean[j] += v;
      // + 0 turns -0 into 0: JSON, which carries answers between hosts, cannot hold -0, so a merged answer would
      // otherwise say 0 where this one says -0 (found by the gateway's merge property test).
      if (v < out.min[j]) out.min[j] = v + 0;
      if (v > out.max[j]) out.max[j] = v + 0;
    }
  }
  for (let j = 0; j < features; j++) out.mean[j] /= n;
  for (let i = 0; i < x.length; i += features) {
    for (let j = 0; j < features; j++) {
      const d = x[i + j] - out.mean[j];
      out.m2[j] += d * d;
    }
  }
  return out;
}

/** Chan, Golub and LeVeque's pairwise combination of two sets of moments (neither is changed). */
export function mergeMoments(a: FeatureMoments, b: FeatureMoments): FeatureMoments {
  const f = a.mean.length;
  if (b.mean.length !== f) throw new Error(`cannot merge moments of ${f} and ${b.mean.length} features`);
  if (b.count === 0) return cloneMoments(a);
  if (a.count === 0) return cloneMoments(b);
  const n = a.count + b.count;
  const out = emptyMoments(f);
  out.count = n;
  const wb = b.count / n;
  const cross = (a.count * b.count) / n;
  for (let j = 0; j < f; j++) {
    const delta = b.mean[j] - a.mean[j];
    out.mean[j] = a.mean[j] + delta * wb;
    out.m2[j] = a.m2[j] + b.m2[j] + delta * delta * cross;
    out.min[j] = Math.min(a.min[j], b.min[j]);
    out.max[j] = Math.max(a.max[j], b.max[j]);
  }
  return out;
}

/** Merges any number of moments left to right; an empty list needs the feature count. */
export function mergeAllMoments(parts: readonly FeatureMoments[], features = parts[0]?.mean.length ?? 0) {
  return parts.reduce(mergeMoments, emptyMoments(features));
}

export function cloneMoments(m: FeatureMoments): FeatureMoments {
  return {
    count: m.count,
    mean: Float64Array.from(m.mean),
    m2: Float64Array.from(m.m2),
    min: Float64Array.from(m.min),
    max: Float64Array.from(m.max),
  };
}

/** Population variance per feature (m2 / count), NaN when there are no rows. */
export function momentsVariance(m: FeatureMoments): Float64Array {
  return m.m2.map((s) => (m.count > 0 ? s / m.count : NaN));
}

/** Population standard deviation per feature: what z-score standardisation divides by. */
export function momentsStd(m: FeatureMoments): Float64Array {
  return momentsVariance(m).map(Math.sqrt);
}

/** Checks a summary that arrived from elsewhere (a node's reply): whole count, finite values, m2 >= 0. */
export function checkMoments(m: FeatureMoments, features: number, where: string): void {
  const problems: string[] = [];
  if (!(Number.isInteger(m.count) && m.count >= 0)) problems.push(`count must be a whole number >= 0, got ${m.count}`);
  for (const key of ['mean', 'm2', 'min', 'max'] as const) {
    if (m[key].length !== features) problems.push(`${key} has ${m[key].length} values, expected ${features}`);
  }
  if (m.count > 0) {
    if (![...m.mean, ...m.m2, ...m.min, ...m.max].every(Number.isFinite)) problems.push('values must be finite');
    if (m.m2.some((s) => s < 0)) problems.push('m2 must be >= 0');
    if (m.min.some((v, j) => v > m.max[j])) problems.push('min must be <= max');
  }
  if (problems.length > 0) throw new Error(`${where}: ${problems.join('; ')}`);
}
