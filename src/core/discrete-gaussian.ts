/**
 * Exact sampling of the discrete Gaussian N_Z(0, sigma^2), P(x) proportional to exp(-x^2 / (2 sigma^2)) on the
 * integers, by Canonne, Kamath and Steinke 2020 ("The Discrete Gaussian for Differential Privacy", Algorithms
 * 1-3): Bernoulli(exp(-gamma)) from uniform integers, a discrete Laplace proposal, and a rejection step.
 * Every decision is a comparison of integers (bigint where they outgrow 2^53), so no floating-point rounding
 * can bias or leak through the samples (the attack on textbook floating-point Laplace/Gaussian samplers).
 *
 * Randomness comes from a RandomWords source of uniform 32-bit words: a CSPRNG in deployment
 * (random-words.ts cryptoWords), a seeded Rng in simulation. sigma^2 is a rational num / den.
 */

/** A source of independent uniform 32-bit words (Rng satisfies it; so does cryptoWords()). */
export interface RandomWords {
  nextU32(): number;
}

const TWO32 = 4294967296;

/** Uniform integer in [0, n) for 1 <= n <= 2^32, by rejection (no modulo bias). */
function uniformBelowSmall(words: RandomWords, n: number): number {
  const limit = TWO32 - (TWO32 % n);
  for (;;) {
    const x = words.nextU32();
    if (x < limit) return x % n;
  }
}

/** Uniform integer in [0, n) for any bigint n >= 1: draw as many bits as n has, reject values >= n. */
export function uniformBelow(words: RandomWords, n: bigint): bigint {
  if (n < 1n) throw new Error(`uniformBelow: n must be >= 1, got ${n}`);
  if (n <= BigInt(TWO32)) return BigInt(uniformBelowSmall(words, Number(n)));
  const bits = n.toString(2).length;
  const wordCount = Math.ceil(bits / 32);
  const mask = (1n << BigInt(bits)) - 1n;
  for (;;) {
    let x = 0n;
    for (let k = 0; k < wordCount; k++) x = (x << 32n) | BigInt(words.nextU32());
    x &= mask;
    if (x < n) return x;
  }
}

/** Bernoulli(num / den), 0 <= num <= den. */
function bernoulli(words: RandomWords, num: bigint, den: bigint): boolean {
  return uniformBelow(words, den) < num;
}

/** Bernoulli(exp(-num / den)) for num / den in [0, 1] (CKS Algorithm 1, first case). */
function bernoulliExpSmall(words: RandomWords, num: bigint, den: bigint): boolean {
  let k = 1n;
  while (bernoulli(words, num, den * k)) k++;
  return k % 2n === 1n;
}

/** Bernoulli(exp(-num / den)) for any num / den >= 0 (CKS Algorithm 1): exp(-1) floor(gamma) times, then the rest. */
export function bernoulliExp(words: RandomWords, num: bigint, den: bigint): boolean {
  if (den < 1n || num < 0n) throw new Error(`bernoulliExp: need num >= 0 and den >= 1, got ${num}/${den}`);
  if (num <= den) return bernoulliExpSmall(words, num, den);
  for (let k = 0n; k < num / den; k++) if (!bernoulliExpSmall(words, 1n, 1n)) return false;
  return bernoulliExpSmall(words, num % den, den);
}

/** Discrete Laplace with scale t (integer >= 1): P(y) proportional to exp(-|y| / t) (CKS Algorithm 2, s = 1). */
export function sampleDiscreteLaplace(words: RandomWords, t: bigint): bigint {
  if (t < 1n) throw new Error(`sampleDiscreteLaplace: scale must be an integer >= 1, got ${t}`);
  for (;;) {
    const u = uniformBelow(words, t);
    if (!bernoulliExp(words, u, t)) continue;
    let v = 0n;
    while (bernoulliExp(words, 1n, 1n)) v++;
    const magnitude = u + t * v;
    const negative = (words.nextU32() & 1) === 1;
    if (negative && magnitude === 0n) continue; // 0 would otherwise be drawn twice as often
    return negative ? -magnitude : magnitude;
  }
}

/** floor(sqrt(n)) for bigint n >= 0 (Newton's method on integers). */
export function isqrt(n: bigint): bigint {
  if (n < 0n) throw new Error(`isqrt: negative ${n}`);
  if (n < 2n) return n;
  let x = 1n << BigInt(Math.ceil(n.toString(2).length / 2));
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) return x;
    x = y;
  }
}

/**
 * One sample of N_Z(0, sigma^2) with sigma^2 = sigma2Num / sigma2Den > 0 (CKS Algorithm 3): propose Y from
 * the discrete Laplace with t = floor(sigma) + 1, accept with probability exp(-(|Y| - sigma^2 / t)^2 / (2 sigma^2)).
 * The acceptance exponent is (|Y| d t - n)^2 / (2 n d t^2) with sigma^2 = n / d, all integers.
 */
export function sampleDiscreteGaussian(words: RandomWords, sigma2Num: bigint, sigma2Den = 1n): bigint {
  if (sigma2Num < 1n || sigma2Den < 1n)
    throw new Error(`sampleDiscreteGaussian: sigma^2 must be a positive fraction, got ${sigma2Num}/${sigma2Den}`);
  const n = sigma2Num;
  const d = sigma2Den;
  const t = isqrt(n * d) / d + 1n; // floor(sqrt(n / d)) + 1
  const acceptDen = 2n * n * d * t * t;
  for (;;) {
    const y = sampleDiscreteLaplace(words, t);
    const magnitude = y < 0n ? -y : y;
    const gap = magnitude * d * t - n;
    if (bernoulliExp(words, gap * gap, acceptDen)) return y;
  }
}

/**
 * `count` independent samples of N_Z(0, s^2) for an integer s >= 1, as float64 (exact while |x| < 2^53).
 * The common case on a fixed-point grid, where the noise stddev is a whole number of grid steps.
 */
export function discreteGaussianVector(words: RandomWords, sigmaSteps: number, count: number): Float64Array {
  if (!Number.isSafeInteger(sigmaSteps) || sigmaSteps < 1) {
    throw new Error(`discreteGaussianVector: the stddev must be a whole number of grid steps >= 1, got ${sigmaSteps}`);
  }
  const sigma2 = BigInt(sigmaSteps) * BigInt(sigmaSteps);
  const out = new Float64Array(count);
  for (let j = 0; j < count; j++) out[j] = Number(sampleDiscreteGaussian(words, sigma2));
  return out;
}
