/**
 * The randomness source every secure-aggregation function takes. Nothing in src/core/secagg draws
 * randomness on its own: callers pass either a CSPRNG (production) or a seeded Rng (simulation, tests).
 *
 *   - production: `randomBytes` from '@noble/ciphers/utils.js' or '@noble/hashes/utils.js'
 *     (crypto.getRandomValues underneath, available in Node >= 20 and every browser), or any
 *     `(n) => Uint8Array` backed by a CSPRNG;
 *   - simulation/tests: `rngRandomBytes(new Rng(seed))`, reproducible but NOT secure: xoshiro128** is
 *     predictable from a few outputs, so keys and masks drawn from it protect nothing.
 */
import type { Rng } from '../rng.js';

/** Returns n fresh random bytes (a new array each call). */
export type RandomBytes = (n: number) => Uint8Array;

/** A RandomBytes drawing from a seeded Rng, for reproducible simulations. Not cryptographically secure. */
export function rngRandomBytes(rng: Rng): RandomBytes {
  return (n: number) => {
    if (!Number.isInteger(n) || n < 0) throw new Error(`randomBytes: n must be a whole number >= 0, got ${n}`);
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      let w = rng.nextU32();
      for (let k = i; k < i + 4 && k < n; k++) {
        out[k] = w & 0xff;
        w >>>= 8;
      }
    }
    return out;
  };
}

/** Calls the source and checks that it kept its contract (right length, a Uint8Array). */
export function drawBytes(randomBytes: RandomBytes, n: number, what: string): Uint8Array {
  const out = randomBytes(n);
  if (!(out instanceof Uint8Array) || out.length !== n) {
    throw new Error(
      `${what}: randomBytes(${n}) returned ${out instanceof Uint8Array ? `${out.length} bytes` : String(out)}`,
    );
  }
  return out;
}
