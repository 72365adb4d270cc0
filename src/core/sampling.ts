/** Which nodes take part in a round: a seeded sample of ceil(fraction * N), at least minNodes, in id order. */
import type { Rng } from './rng.js';

export function sampleCount(available: number, fraction: number, minNodes: number): number {
  if (!(fraction > 0 && fraction <= 1)) throw new Error(`fraction must be in (0, 1], got ${fraction}`);
  if (!Number.isInteger(minNodes) || minNodes < 1) throw new Error(`minimum nodes must be a whole number >= 1, got ${minNodes}`);
  return Math.min(available, Math.max(minNodes, Math.ceil(fraction * available - 1e-9)));
}

export function sampleNodes(ids: readonly number[], fraction: number, minNodes: number, rng: Rng): number[] {
  const k = sampleCount(ids.length, fraction, minNodes);
  const picked = rng.sample(ids.length, k).map((i) => ids[i]);
  return picked.sort((a, b) => a - b);
}
