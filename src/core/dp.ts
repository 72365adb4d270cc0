/**
 * DP-FedAvg building blocks: user-level differential privacy for federated averaging
 * (McMahan, Ramage, Talwar and Zhang 2018, "Learning Differentially Private Recurrent Language Models"),
 * with adaptive clipping (Andrew, Thakkar, McMahan and Ramaswamy 2021, "Differentially Private Learning
 * with Adaptive Clipping").
 *
 * One round, server side:
 *   1. each client's update Delta_i = local_i - global is clipped to L2 norm <= C   (clipUpdate)
 *   2. S = sum_i clip(Delta_i) + N(0, (z C)^2 I)                                      (dpAggregate)
 *      -- the noise standard deviation z*C is on the SUM, whose L2 sensitivity to adding or removing one
 *         client is C; so the round is a Gaussian mechanism with noise multiplier z;
 *   3. the update is S / m with a FIXED denominator m (expected clients per round, e.g. q * population),
 *      not the realised count, so that the count itself is not released (McMahan et al.'s f~_f estimator
 *      with uniform weights). The noise on the average therefore has standard deviation z*C/m.
 * Privacy over rounds is then accounted with the RDP accountant (rdp.ts) using sampling rate q and
 * noise multiplier z (or, with adaptive clipping, the combined multiplier: see adaptiveUpdateNoiseMultiplier).
 *
 * Pure functions over Float32Array, no platform APIs. Sums are accumulated in float64 in the order the
 * clients are given, with one rounding to Float32 at the end. Randomness only comes from the Rng passed in,
 * drawn in a fixed pattern that does not depend on the data (see each function), so a seed fixes the result.
 */
import type { Rng } from './rng.ts';

function checkFiniteVector(v: Float32Array, fn: string, what: string): void {
  if (!(v instanceof Float32Array)) throw new Error(`${fn}: ${what} must be a Float32Array`);
  for (let j = 0; j < v.length; j++) {
    if (!Number.isFinite(v[j])) throw new Error(`${fn}: ${what}[${j}] is ${v[j]} (not finite)`);
  }
}

function checkPositive(x: number, fn: string, what: string): void {
  if (typeof x !== 'number' || !Number.isFinite(x) || x <= 0)
    throw new Error(`${fn}: ${what} must be a finite number > 0, got ${x}`);
}

function checkNonNegative(x: number, fn: string, what: string): void {
  if (typeof x !== 'number' || !Number.isFinite(x) || x < 0)
    throw new Error(`${fn}: ${what} must be a finite number >= 0, got ${x}`);
}

/** L2 norm, accumulated in float64 (no overflow: a Float32 squared is at most ~1.2e77). */
export function l2Norm(v: Float32Array): number {
  let s = 0;
  for (let j = 0; j < v.length; j++) s += v[j] * v[j];
  return Math.sqrt(s);
}

export interface ClipResult {
  /** delta * scale, rounded to Float32 (a fresh copy even when scale is 1). */
  clipped: Float32Array;
  /** L2 norm of the input. */
  norm: number;
  /** min(1, clipNorm / norm); 1 for the zero vector. */
  scale: number;
}

/**
 * Scales delta to L2 norm at most clipNorm: delta * min(1, clipNorm / ||delta||).
 * Never increases any |coordinate| (|round(x * s)| <= |x| for s <= 1), hence never increases the norm;
 * the identity below the bound. The clipped norm can exceed clipNorm only by Float32 rounding
 * (relative ~1e-7). Throws on a non-finite coordinate or a clipNorm that is not finite and > 0.
 */
export function clipUpdate(delta: Float32Array, clipNorm: number): ClipResult {
  checkPositive(clipNorm, 'clipUpdate', 'clipNorm');
  checkFiniteVector(delta, 'clipUpdate', 'delta');
  const norm = l2Norm(delta);
  const scale = norm > clipNorm ? clipNorm / norm : 1;
  const clipped = new Float32Array(delta.length);
  if (scale === 1) clipped.set(delta);
  else for (let j = 0; j < delta.length; j++) clipped[j] = delta[j] * scale;
  return { clipped, norm, scale };
}

/**
 * The DP-FedAvg aggregate: (sum_i clip(deltas[i], clipNorm) + N(0, (noiseMultiplier * clipNorm)^2) per
 * coordinate) / m, with m = expectedClients if given, else deltas.length.
 *
 * The noise scale z*C is on the SUM (sensitivity C per client); on the returned average it is z*C/m.
 * Use a fixed expectedClients (e.g. sampling rate * population) for the privacy guarantee to hold as
 * accounted: dividing by the realised number of clients would release that number.
 * Randomness: exactly deltas[0].length calls to rng.normal(), one per coordinate in order, whatever the
 * data; none when noiseMultiplier is 0. Pass a dedicated stream (e.g. rng.fork('dp-noise')).
 * Throws on: no deltas, different lengths, non-finite coordinates, clipNorm not finite > 0,
 * noiseMultiplier not finite >= 0, expectedClients not finite > 0.
 */
export function dpAggregate(
  deltas: readonly Float32Array[],
  clipNorm: number,
  noiseMultiplier: number,
  rng: Rng,
  expectedClients?: number,
): Float32Array {
  const fn = 'dpAggregate';
  if (!Array.isArray(deltas) || deltas.length === 0) throw new Error(`${fn}: no deltas given (need at least one)`);
  checkPositive(clipNorm, fn, 'clipNorm');
  checkNonNegative(noiseMultiplier, fn, 'noiseMultiplier');
  const denom = expectedClients ?? deltas.length;
  checkPositive(denom, fn, 'expectedClients');
  const n = deltas[0]?.length;
  deltas.forEach((d, i) => {
    checkFiniteVector(d, fn, `deltas[${i}]`);
    if (d.length !== n) throw new Error(`${fn}: deltas[${i}] has length ${d.length} but deltas[0] has length ${n}`);
  });

  const acc = new Float64Array(n);
  for (const d of deltas) {
    const norm = l2Norm(d);
    // Same scale as clipUpdate, applied in float64 (no per-client rounding to Float32).
    const scale = norm > clipNorm ? clipNorm / norm : 1;
    for (let j = 0; j < n; j++) acc[j] += d[j] * scale;
  }
  const std = noiseMultiplier * clipNorm;
  if (std > 0) for (let j = 0; j < n; j++) acc[j] += std * rng.normal();
  const out = new Float32Array(n);
  for (let j = 0; j < n; j++) out[j] = acc[j] / denom;
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Adaptive clipping (Andrew et al. 2021)
// ---------------------------------------------------------------------------------------------------------

/**
 * Noise multiplier to use for the update sum when adaptive clipping also releases the noised
 * unclipped-count with stddev countStddev (sigma_b), such that the round as a whole is a Gaussian mechanism
 * with noise multiplier z (Andrew et al. 2021, Section 3.1):
 *   z_Delta = (z^-2 - (2 sigma_b)^-2)^(-1/2).
 * Feed z (not z_Delta) to the RDP accountant. The factor 2 is because the count is taken over the centred
 * indicators b_i - 1/2 (sensitivity 1/2), as AdaptiveClip does. Requires 2 sigma_b > z (otherwise the count
 * query alone would use the whole budget); countStddev = 0 is not allowed here (use plain z without
 * adaptive clipping). Andrew et al. recommend sigma_b = m / 20 for m clients per round.
 */
export function adaptiveUpdateNoiseMultiplier(noiseMultiplier: number, countStddev: number): number {
  const fn = 'adaptiveUpdateNoiseMultiplier';
  checkPositive(noiseMultiplier, fn, 'noiseMultiplier');
  checkPositive(countStddev, fn, 'countStddev');
  const rest = noiseMultiplier ** -2 - (2 * countStddev) ** -2;
  if (!(rest > 0)) {
    throw new Error(
      `${fn}: countStddev ${countStddev} is too small for noise multiplier ${noiseMultiplier} (need 2 * countStddev > noiseMultiplier)`,
    );
  }
  return rest ** -0.5;
}

/**
 * The inverse of adaptiveUpdateNoiseMultiplier: the noise multiplier to account for (z) when the update
 * sum uses zDelta and the count uses stddev sigma_b: z = (zDelta^-2 + (2 sigma_b)^-2)^(-1/2).
 * zDelta = 0 or sigma_b = 0 gives 0 (no privacy).
 */
export function combinedNoiseMultiplier(updateNoiseMultiplier: number, countStddev: number): number {
  checkNonNegative(updateNoiseMultiplier, 'combinedNoiseMultiplier', 'updateNoiseMultiplier');
  checkNonNegative(countStddev, 'combinedNoiseMultiplier', 'countStddev');
  if (updateNoiseMultiplier === 0 || countStddev === 0) return 0;
  return (updateNoiseMultiplier ** -2 + (2 * countStddev) ** -2) ** -0.5;
}

/** One geometric step of the clip norm: C * exp(-eta_C * (bBar - gamma)). */
export function nextClipNorm(
  clipNorm: number,
  unclippedFraction: number,
  targetQuantile: number,
  learningRate: number,
): number {
  return clipNorm * Math.exp(-learningRate * (unclippedFraction - targetQuantile));
}

export interface AdaptiveClipOptions {
  /** C_0 (> 0). */
  initialClipNorm: number;
  /** gamma, the fraction of clients that should end up unclipped; default 0.5 (the median norm). */
  targetQuantile?: number;
  /** eta_C of the geometric update; default 0.2 (Andrew et al.). */
  learningRate?: number;
  /** sigma_b, stddev of the noise on the (centred) count of unclipped clients; >= 0 (0: not private). */
  countStddev: number;
}

/** Everything an AdaptiveClip needs to resume; plain JSON-safe numbers. */
export interface AdaptiveClipState {
  kind: 'adaptive-clip';
  clipNorm: number;
  targetQuantile: number;
  learningRate: number;
  countStddev: number;
  /** Updates applied so far. */
  round: number;
}

export interface AdaptiveClipUpdate {
  /** The clip norm used this round (the one the norms were compared with). */
  previousClipNorm: number;
  /** The new clip norm, for the next round. */
  clipNorm: number;
  /** b_bar, the noised fraction of clients with norm <= previousClipNorm (can leave [0, 1] by the noise). */
  unclippedFraction: number;
}

/**
 * Adaptive clip norm (Andrew et al. 2021, Algorithm 1 with geometric updates): after each round,
 *   b_bar = (sum_i (b_i - 1/2) + N(0, sigma_b^2)) / m + 1/2,   b_i = [||Delta_i|| <= C],
 *   C <- C * exp(-eta_C * (b_bar - gamma)),
 * with m the expected number of clients (the same fixed denominator as dpAggregate). When the realised
 * count n equals m, b_bar = (sum_i b_i + noise) / m. C then tracks the gamma-quantile of the update norms.
 * Centring the indicators makes the count's sensitivity 1/2 (hence the 2 sigma_b in the noise
 * multiplier formulas above; TF-Privacy's QuantileEstimatorQuery does the same).
 */
export class AdaptiveClip {
  private c: number;
  private readonly gamma: number;
  private readonly eta: number;
  private readonly sigmaB: number;
  private rounds: number;

  constructor(options: AdaptiveClipOptions) {
    const fn = 'AdaptiveClip';
    if (options === null || typeof options !== 'object') throw new Error(`${fn}: options must be an object`);
    const { initialClipNorm, targetQuantile = 0.5, learningRate = 0.2, countStddev } = options;
    checkPositive(initialClipNorm, fn, 'initialClipNorm');
    if (typeof targetQuantile !== 'number' || !(targetQuantile >= 0 && targetQuantile <= 1)) {
      throw new Error(`${fn}: targetQuantile must be in [0, 1], got ${targetQuantile}`);
    }
    checkPositive(learningRate, fn, 'learningRate');
    checkNonNegative(countStddev, fn, 'countStddev');
    this.c = initialClipNorm;
    this.gamma = targetQuantile;
    this.eta = learningRate;
    this.sigmaB = countStddev;
    this.rounds = 0;
  }

  /** Resumes exactly from an earlier state(). */
  static restore(state: AdaptiveClipState): AdaptiveClip {
    if (state === null || typeof state !== 'object' || state.kind !== 'adaptive-clip') {
      throw new Error('AdaptiveClip.restore: not an adaptive clip state');
    }
    if (!Number.isSafeInteger(state.round) || state.round < 0) {
      throw new Error(`AdaptiveClip.restore: round must be an integer >= 0, got ${state.round}`);
    }
    const ac = new AdaptiveClip({
      initialClipNorm: state.clipNorm,
      targetQuantile: state.targetQuantile,
      learningRate: state.learningRate,
      countStddev: state.countStddev,
    });
    ac.rounds = state.round;
    return ac;
  }

  /** The clip norm to use for the current round. */
  get clipNorm(): number {
    return this.c;
  }

  get round(): number {
    return this.rounds;
  }

  /**
   * Updates C from this round's update norms (each compared with the current C). m = expectedClients,
   * default norms.length. Randomness: exactly one rng.normal() when countStddev > 0, none otherwise.
   */
  update(norms: readonly number[], rng: Pick<Rng, 'normal'>, expectedClients?: number): AdaptiveClipUpdate {
    const fn = 'AdaptiveClip.update';
    if (!Array.isArray(norms)) throw new Error(`${fn}: norms must be an array`);
    norms.forEach((x, i) => {
      if (typeof x !== 'number' || !(x >= 0)) throw new Error(`${fn}: norms[${i}] must be a number >= 0, got ${x}`);
    });
    const m = expectedClients ?? norms.length;
    checkPositive(m, fn, 'expectedClients');
    let below = 0;
    for (const x of norms) if (x <= this.c) below++;
    const noise = this.sigmaB > 0 ? this.sigmaB * rng.normal() : 0;
    const unclippedFraction = (below - norms.length / 2 + noise) / m + 0.5;
    const previousClipNorm = this.c;
    const next = nextClipNorm(this.c, unclippedFraction, this.gamma, this.eta);
    // Only reachable with absurd noise; refuse rather than store a clip norm that breaks every later round.
    if (!(next > 0 && Number.isFinite(next))) throw new Error(`${fn}: clip norm would become ${next}`);
    this.c = next;
    this.rounds++;
    return { previousClipNorm, clipNorm: next, unclippedFraction };
  }

  state(): AdaptiveClipState {
    return {
      kind: 'adaptive-clip',
      clipNorm: this.c,
      targetQuantile: this.gamma,
      learningRate: this.eta,
      countStddev: this.sigmaB,
      round: this.rounds,
    };
  }
}
