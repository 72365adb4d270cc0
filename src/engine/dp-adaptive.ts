/**
 * DP-FedAvg with adaptive clipping (Andrew, Thakkar, McMahan and Ramaswamy 2021): the clip norm C follows
 * the target quantile of the nodes' update norms, learnt from a noised count of unclipped updates, so no
 * fixed C has to be guessed. Each round:
 *   1. S = dpGridMean(deltas, C, z_Delta) with z_Delta = (z^-2 - (2 sigma_b)^-2)^(-1/2), so that the
 *      update sum and the count together are a Gaussian mechanism with the user's noise multiplier z;
 *   2. C <- C * exp(-eta * (b_bar - gamma)), b_bar the noised unclipped fraction (core/dp.ts AdaptiveClip).
 * The clip state travels in the checkpoint (state()/restore) so a resumed run continues it exactly.
 */
import { AdaptiveClip, adaptiveUpdateNoiseMultiplier, l2Norm, type AdaptiveClipState } from '../core/dp.js';
import type { RandomWords } from '../core/discrete-gaussian.js';
import { dpGridMean, gridNormal } from '../core/dp-grid.js';

export interface AdaptiveClipConfig {
  /** C_0. */
  initialClip: number;
  /** gamma: the fraction of updates that should be unclipped. */
  quantile: number;
  /** eta_C of the geometric update. */
  lr: number;
  /**
   * sigma_b, noise on the unclipped count; absent = max(m / 20, z) for m nodes asked: Andrew et al.'s m / 20,
   * raised for small m so that 2 sigma_b > z holds (the count then costs z_Delta = z / sqrt(3/4) at most).
   */
  countNoise?: number;
}

export const ADAPTIVE_DEFAULTS = { initialClip: 0.1, quantile: 0.5, lr: 0.2 } as const;

export class AdaptiveDpAggregator {
  private clip: AdaptiveClip | null;

  constructor(
    private readonly config: AdaptiveClipConfig,
    private readonly noise: number,
    restore?: AdaptiveClipState,
  ) {
    this.clip = restore ? AdaptiveClip.restore(restore) : null;
  }

  /** The clip norm the next round uses. */
  get clipNorm(): number {
    return this.clip?.clipNorm ?? this.config.initialClip;
  }

  /**
   * The noised mean delta of one round, and the clip norm moved for the next. m = the fixed denominator
   * (expected nodes); both noises are exact discrete Gaussians drawn from the given words.
   */
  aggregate(
    deltas: readonly Float32Array[],
    m: number,
    noiseWords: RandomWords,
    countWords: RandomWords,
  ): Float32Array {
    this.clip ??= new AdaptiveClip({
      initialClipNorm: this.config.initialClip,
      targetQuantile: this.config.quantile,
      learningRate: this.config.lr,
      countStddev: this.noise > 0 ? (this.config.countNoise ?? Math.max(m / 20, this.noise)) : 0,
    });
    const { countStddev } = this.clip.state();
    const zDelta = this.noise > 0 ? adaptiveUpdateNoiseMultiplier(this.noise, countStddev) : 0;
    const mean = dpGridMean(deltas, this.clip.clipNorm, zDelta, noiseWords, m);
    this.clip.update(deltas.map(l2Norm), { normal: () => gridNormal(countWords, countStddev) }, m);
    return mean;
  }

  state(): AdaptiveClipState | null {
    return this.clip?.state() ?? null;
  }
}

/** Reads an adaptive-clip state back from a checkpoint's extra (absent before the first round). */
export function adaptiveStateFrom(extra: Record<string, unknown> | undefined): AdaptiveClipState | undefined {
  const s = extra?.adaptiveClip;
  return s === undefined || s === null ? undefined : (s as AdaptiveClipState);
}
