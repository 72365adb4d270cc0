/** Which nodes take part in a round: a seeded sample of ceil(fraction * N), at least minNodes, in id order. */
import type { Rng } from './rng.js';
import type { RandomWords } from './discrete-gaussian.js';
import { uniform53 } from './random-words.js';

export function sampleCount(available: number, fraction: number, minNodes: number): number {
  if (!(fraction > 0 && fraction <= 1)) throw new Error(`fraction must be in (0, 1], got ${fraction}`);
  if (!Number.isInteger(minNodes) || minNodes < 1)
    throw new Error(`minimum nodes must be a whole number >= 1, got ${minNodes}`);
  return Math.min(available, Math.max(minNodes, Math.ceil(fraction * available - 1e-9)));
}

export function sampleNodes(ids: readonly number[], fraction: number, minNodes: number, rng: Rng): number[] {
  const k = sampleCount(ids.length, fraction, minNodes);
  const picked = rng.sample(ids.length, k).map((i) => ids[i]);
  return picked.sort((a, b) => a - b);
}

/**
 * Poisson sampling (what the subsampled-Gaussian accountant assumes, McMahan et al. 2018): each node is
 * included independently with probability q, so the sample size is random (Binomial(N, q)) and the DP-FedAvg
 * sum is divided by the fixed qN, never by the realised count. Ids come back in id order.
 */
export function poissonSample(ids: readonly number[], q: number, words: RandomWords): number[] {
  if (!(q > 0 && q <= 1)) throw new Error(`Poisson sampling rate must be in (0, 1], got ${q}`);
  return ids.filter(() => uniform53(words) < q).sort((a, b) => a - b);
}
