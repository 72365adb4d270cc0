/**
 * Uniform 32-bit words from the platform CSPRNG (WebCrypto getRandomValues: node:crypto's in Node, the
 * browser's own elsewhere). Never seeded from the run and never stored, so nobody can replay what it drew:
 * the source of deployment DP noise and of DP node sampling. Words are fetched in blocks for speed.
 */
import type { RandomWords } from './discrete-gaussian.js';

const BLOCK_WORDS = 4096;

export function cryptoWords(): RandomWords {
  const crypto = globalThis.crypto;
  if (!crypto?.getRandomValues)
    throw new Error('no WebCrypto getRandomValues on this platform: DP noise needs a CSPRNG');
  const block = new Uint32Array(BLOCK_WORDS);
  let next = BLOCK_WORDS;
  return {
    nextU32(): number {
      if (next === BLOCK_WORDS) {
        crypto.getRandomValues(block);
        next = 0;
      }
      return block[next++];
    },
  };
}

/** Uniform in [0, 1) with 53 random bits, from any word source. */
export function uniform53(words: RandomWords): number {
  const hi = words.nextU32() >>> 5;
  const lo = words.nextU32() >>> 6;
  return (hi * 67108864 + lo) / 9007199254740992;
}
