import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  bernoulliExp,
  discreteGaussianVector,
  isqrt,
  sampleDiscreteGaussian,
  sampleDiscreteLaplace,
  uniformBelow,
  type RandomWords,
} from './discrete-gaussian.ts';
import { cryptoWords } from './random-words.ts';
import { Rng } from './rng.ts';

// ---------- reference: the exact pmfs, normalised by summing far into the tails ----------

function exactPmf(weight: (x: number) => number, reach: number): Map<number, number> {
  let total = 0;
  for (let x = -reach; x <= reach; x++) total += weight(x);
  const pmf = new Map<number, number>();
  for (let x = -reach; x <= reach; x++) pmf.set(x, weight(x) / total);
  return pmf;
}

const gaussianPmf = (sigma2: number) =>
  exactPmf((x) => Math.exp(-(x * x) / (2 * sigma2)), Math.ceil(40 * Math.sqrt(sigma2)) + 40);
const laplacePmf = (t: number) => exactPmf((x) => Math.exp(-Math.abs(x) / t), 60 * t + 60);

/** Wilson-Hilferty: the chi-square quantile for df degrees of freedom at standard-normal quantile z. */
function chiSquareQuantile(df: number, z: number): number {
  const a = 2 / (9 * df);
  return df * (1 - a + z * Math.sqrt(a)) ** 3;
}

/**
 * Pearson's statistic of the samples against the pmf, over bins with >= 20 expected counts (the two tails
 * merged into one bin each), and the p = 1e-6 critical value (z = 4.753) for its degrees of freedom.
 */
function chiSquare(samples: number[], pmf: Map<number, number>): { stat: number; critical: number } {
  const n = samples.length;
  const xs = [...pmf.keys()].sort((a, b) => a - b);
  const inner = xs.filter((x) => pmf.get(x)! * n >= 20);
  const lo = inner[0];
  const hi = inner[inner.length - 1];
  const bins = new Map<string, { expected: number; seen: number }>();
  const key = (x: number) => (x <= lo ? 'lo' : x >= hi ? 'hi' : String(x));
  for (const x of xs) {
    const b = bins.get(key(x)) ?? { expected: 0, seen: 0 };
    b.expected += pmf.get(x)! * n;
    bins.set(key(x), b);
  }
  for (const s of samples) bins.get(key(s))!.seen++;
  let stat = 0;
  for (const b of bins.values()) stat += (b.seen - b.expected) ** 2 / b.expected;
  return { stat, critical: chiSquareQuantile(bins.size - 1, 4.753) };
}

const draw = (count: number, sample: () => bigint) => Array.from({ length: count }, () => Number(sample()));

test('discrete Gaussian matches the exact pmf (chi-square at p = 1e-6) for integer and fractional sigma^2', () => {
  const cases: [bigint, bigint][] = [
    [1n, 2n],
    [1n, 1n],
    [4n, 1n],
    [25n, 4n],
    [10n, 1n],
    [400n, 1n],
  ];
  for (const [num, den] of cases) {
    const rng = new Rng(Number(num * 1000n + den));
    const samples = draw(40_000, () => sampleDiscreteGaussian(rng, num, den));
    const { stat, critical } = chiSquare(samples, gaussianPmf(Number(num) / Number(den)));
    assert.ok(stat < critical, `sigma^2 = ${num}/${den}: chi-square ${stat.toFixed(1)} >= ${critical.toFixed(1)}`);
  }
});

test('a sampler with the wrong proposal fails the same chi-square test (the test can fail)', () => {
  // sigma^2 = 4 with samples from sigma^2 = 5: 5% too wide, must be rejected at this sample size.
  const rng = new Rng(7);
  const samples = draw(40_000, () => sampleDiscreteGaussian(rng, 5n));
  const { stat, critical } = chiSquare(samples, gaussianPmf(4));
  assert.ok(stat > critical, `chi-square ${stat.toFixed(1)} should exceed ${critical.toFixed(1)}`);
});

test('discrete Gaussian from the CSPRNG matches the exact pmf too', () => {
  const words = cryptoWords();
  const samples = draw(40_000, () => sampleDiscreteGaussian(words, 9n));
  const { stat, critical } = chiSquare(samples, gaussianPmf(9));
  assert.ok(stat < critical, `chi-square ${stat.toFixed(1)} >= ${critical.toFixed(1)}`);
});

test('discrete Gaussian on the DP grid (sigma = 2^16 steps): mean and variance within 5 standard errors', () => {
  const sigma = 65536;
  const n = 20_000;
  const v = discreteGaussianVector(new Rng(3), sigma, n);
  let sum = 0;
  let sq = 0;
  for (const x of v) {
    sum += x;
    sq += x * x;
    assert.ok(Number.isInteger(x));
  }
  const mean = sum / n;
  const variance = sq / n - mean * mean;
  assert.ok(Math.abs(mean) < (5 * sigma) / Math.sqrt(n), `mean ${mean}`);
  // The discrete Gaussian's variance is below sigma^2 by a gap that vanishes exponentially in sigma^2 (CKS 2020).
  assert.ok(Math.abs(variance / (sigma * sigma) - 1) < 5 * Math.sqrt(2 / n), `variance ratio ${variance / sigma ** 2}`);
});

test('discrete Laplace matches its exact pmf (chi-square at p = 1e-6)', () => {
  for (const t of [1n, 3n, 17n]) {
    const rng = new Rng(Number(t));
    const samples = draw(40_000, () => sampleDiscreteLaplace(rng, t));
    const { stat, critical } = chiSquare(samples, laplacePmf(Number(t)));
    assert.ok(stat < critical, `t = ${t}: chi-square ${stat.toFixed(1)} >= ${critical.toFixed(1)}`);
  }
});

test('bernoulliExp(gamma) has mean exp(-gamma) within 5 standard errors (property)', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 40 }),
      fc.integer({ min: 1, max: 10 }),
      fc.integer({ min: 0, max: 2 ** 31 }),
      (num, den, seed) => {
        const rng = new Rng(seed);
        const n = 3000;
        let hits = 0;
        for (let k = 0; k < n; k++) if (bernoulliExp(rng, BigInt(num), BigInt(den))) hits++;
        const p = Math.exp(-num / den);
        return Math.abs(hits / n - p) <= 5 * Math.sqrt((p * (1 - p)) / n) + 1e-9;
      },
    ),
    { numRuns: 40 },
  );
});

test('uniformBelow stays in [0, n) for bigint n beyond 2^32 and covers both halves (property)', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 1n, max: 1n << 100n }), fc.integer({ min: 0, max: 2 ** 31 }), (n, seed) => {
      const rng = new Rng(seed);
      let low = 0;
      for (let k = 0; k < 200; k++) {
        const x = uniformBelow(rng, n);
        if (x < 0n || x >= n) return false;
        if (2n * x < n) low++;
      }
      return n < 4n || (low > 40 && low < 160);
    }),
  );
});

test('isqrt is the integer square root (property)', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: 1n << 200n }), (n) => {
      const r = isqrt(n);
      return r * r <= n && (r + 1n) * (r + 1n) > n;
    }),
  );
});

test('bad parameters are refused with what was wrong', () => {
  const rng: RandomWords = new Rng(1);
  assert.throws(() => sampleDiscreteGaussian(rng, 0n), /sigma\^2 must be a positive fraction, got 0\/1/);
  assert.throws(() => sampleDiscreteLaplace(rng, 0n), /scale must be an integer >= 1/);
  assert.throws(() => discreteGaussianVector(rng, 1.5, 3), /whole number of grid steps >= 1, got 1.5/);
  assert.throws(() => bernoulliExp(rng, -1n, 1n), /need num >= 0/);
  assert.throws(() => uniformBelow(rng, 0n), /n must be >= 1/);
});

test('seeded words repeat their noise; CSPRNG words do not', () => {
  assert.deepEqual(discreteGaussianVector(new Rng(5), 100, 50), discreteGaussianVector(new Rng(5), 100, 50));
  assert.notDeepEqual(discreteGaussianVector(cryptoWords(), 100, 50), discreteGaussianVector(cryptoWords(), 100, 50));
});
