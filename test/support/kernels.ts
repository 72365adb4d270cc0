/** Shared by the engine and kernel tests: a small seeded PRNG, random arrays, and the native kernels if built. */
import { loadNativeKernels, nativeKernelsError } from '../../src/nn/kernels-native.js';

export const native = loadNativeKernels();
export const nativeSkip = native
  ? false
  : process.env.EDGEFED_KERNELS === 'js'
    ? 'native kernels disabled by EDGEFED_KERNELS=js'
    : `native kernels not available (${nativeKernelsError()}); build them with \`node scripts/build-native.mjs\` to run these tests`;

/** mulberry32: small seeded PRNG so every case is reproducible. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function rand(n: number, r: () => number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
}
