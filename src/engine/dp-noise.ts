/**
 * Where DP randomness comes from. 'csprng' (the default, and the only source a deployed coordinator uses):
 * WebCrypto words that are never seeded from the run and never stored, so the noise cannot be regenerated
 * from the run seed, and who was sampled cannot be recomputed from it. 'seeded': a stream forked from the run
 * seed, for simulations that must repeat bit for bit; anyone who knows the seed can subtract that noise.
 */
import type { RandomWords } from '../core/discrete-gaussian.js';
import { cryptoWords } from '../core/random-words.js';
import { Rng } from '../core/rng.js';

export const DP_NOISE_SOURCES = ['csprng', 'seeded'] as const;
export type DpNoiseSource = (typeof DP_NOISE_SOURCES)[number];

/** Words for one named use (e.g. `dp-noise:3`): a fresh CSPRNG reader, or the seed's fork of that label. */
export function dpWords(source: DpNoiseSource, seed: number, label: string): RandomWords {
  return source === 'seeded' ? new Rng(seed).fork(label) : cryptoWords();
}
