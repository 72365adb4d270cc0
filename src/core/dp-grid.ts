/**
 * The DP-FedAvg sum on a fixed-point grid with discrete Gaussian noise, so the noise is sampled exactly
 * (discrete-gaussian.ts) and the guarantee does not rest on floating-point sampling.
 *
 * Grid: step g = C / 2^GRID_BITS per coordinate, C the round's clip norm. Each update is clipped to
 * C' = C - g (sqrt(d) / 2 + 1) and rounded to the nearest grid point: rounding moves each coordinate by at
 * most g / 2, so the rounded update's L2 norm is at most C' + g sqrt(d) / 2 < C = 2^GRID_BITS steps (the +1
 * step absorbs float error in x / g). The sensitivity of the integer sum is therefore at most 2^GRID_BITS
 * steps, and the noise N_Z(0, s^2) with s = ceil(z 2^GRID_BITS) steps gives a noise multiplier >= z.
 * Output: (integer sum + noise) * g / m, m the fixed denominator (expected clients, McMahan et al. 2018).
 */
import { discreteGaussianVector, type RandomWords } from './discrete-gaussian.js';
import { l2Norm } from './dp.js';

export const GRID_BITS = 16;
const GRID_STEPS = 2 ** GRID_BITS;

/** The noise stddev in grid steps for noise multiplier z: rounded up, so never less noise than asked. */
export function gridNoiseSteps(noiseMultiplier: number): number {
  return Math.ceil(noiseMultiplier * GRID_STEPS);
}

/** The clip norm each update is clipped to before rounding, so that the rounded update's norm stays <= C. */
export function preRoundingClip(clipNorm: number, dimension: number): number {
  const step = clipNorm / GRID_STEPS;
  const shrunk = clipNorm - step * (Math.sqrt(dimension) / 2 + 1);
  if (!(shrunk > 0))
    throw new Error(`dp grid: ${dimension} coordinates are too many for a grid of 2^${GRID_BITS} steps per clip norm`);
  return shrunk;
}

/** One update clipped to preRoundingClip and rounded to integer grid steps (added into `sum`). */
function addRounded(sum: Float64Array, delta: Float32Array, clip: number, step: number): void {
  const norm = l2Norm(delta);
  const scale = (norm > clip ? clip / norm : 1) / step;
  for (let j = 0; j < sum.length; j++) sum[j] += Math.round(delta[j] * scale);
}

/**
 * The DP-FedAvg mean delta: (sum_i round(clip(delta_i)) + N_Z(0, s^2)) * g / expectedClients.
 * noiseMultiplier 0 adds no noise (and draws nothing). Throws on no deltas, mismatched lengths, non-finite
 * values, clipNorm or expectedClients not > 0, noiseMultiplier < 0.
 */
export function dpGridMean(
  deltas: readonly Float32Array[],
  clipNorm: number,
  noiseMultiplier: number,
  words: RandomWords,
  expectedClients: number,
): Float32Array {
  const fn = 'dpGridMean';
  if (deltas.length === 0) throw new Error(`${fn}: no deltas given (need at least one)`);
  if (!(clipNorm > 0 && Number.isFinite(clipNorm)))
    throw new Error(`${fn}: clipNorm must be a finite number > 0, got ${clipNorm}`);
  if (!(noiseMultiplier >= 0 && Number.isFinite(noiseMultiplier)))
    throw new Error(`${fn}: noiseMultiplier must be a finite number >= 0, got ${noiseMultiplier}`);
  if (!(expectedClients > 0 && Number.isFinite(expectedClients)))
    throw new Error(`${fn}: expectedClients must be a finite number > 0, got ${expectedClients}`);
  const n = deltas[0].length;
  deltas.forEach((d, i) => {
    if (d.length !== n) throw new Error(`${fn}: deltas[${i}] has length ${d.length} but deltas[0] has length ${n}`);
    for (let j = 0; j < n; j++) if (!Number.isFinite(d[j])) throw new Error(`${fn}: deltas[${i}][${j}] is ${d[j]}`);
  });
  const step = clipNorm / GRID_STEPS;
  const clip = preRoundingClip(clipNorm, n);
  const sum = new Float64Array(n);
  for (const d of deltas) addRounded(sum, d, clip, step);
  if (noiseMultiplier > 0) {
    const noise = discreteGaussianVector(words, gridNoiseSteps(noiseMultiplier), n);
    for (let j = 0; j < n; j++) sum[j] += noise[j];
  }
  const out = new Float32Array(n);
  for (let j = 0; j < n; j++) out[j] = (sum[j] * step) / expectedClients;
  return out;
}

/**
 * A unit-variance draw for adaptive clipping's noised count: N_Z(0, s^2) / s with s = ceil(countStddev 2^GRID_BITS),
 * so countStddev times it has stddev countStddev, from the same exact integer sampler and word source as the
 * update noise (the count is a single float, so it is not rounded to a grid of its own).
 */
export function gridNormal(words: RandomWords, countStddev: number): number {
  const s = gridNoiseSteps(countStddev);
  return discreteGaussianVector(words, s, 1)[0] / s;
}
