import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  AdaptiveClip,
  adaptiveUpdateNoiseMultiplier,
  clipUpdate,
  combinedNoiseMultiplier,
  dpAggregate,
  l2Norm,
  nextClipNorm,
  type AdaptiveClipState,
} from './dp.ts';
import { Rng } from './rng.ts';

// ---------- naive reference: plain float64 scalar loops over number[] ----------

function naiveNorm(v: number[]): number {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.sqrt(s);
}

/** mean of clip(delta_i, C) with denominator m: McMahan et al.'s fixed-denominator estimator without noise. */
function naiveClippedMean(deltas: number[][], clipNorm: number, m: number): number[] {
  const out: number[] = [];
  for (let j = 0; j < deltas[0].length; j++) {
    let s = 0;
    for (const d of deltas) {
      const norm = naiveNorm(d);
      const factor = norm > clipNorm ? clipNorm / norm : 1;
      s += d[j] * factor;
    }
    out.push(s / m);
  }
  return out;
}

// ---------- helpers ----------

const f32 = (xs: number[]) => new Float32Array(xs);
const arr = (v: Float32Array) => Array.from(v);

function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let j = 0; j < ua.length; j++) if (ua[j] !== ub[j]) return false;
  return true;
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, abs: number, rel: number) {
  assert.equal(actual.length, expected.length, 'length');
  for (let j = 0; j < expected.length; j++) {
    const tol = abs + rel * Math.abs(expected[j]);
    const diff = Math.abs(actual[j] - expected[j]);
    assert.ok(diff <= tol, `element ${j}: got ${actual[j]}, expected ${expected[j]} (diff ${diff} > tol ${tol})`);
  }
}

function stats(xs: ArrayLike<number>): { mean: number; std: number } {
  let s = 0;
  for (let j = 0; j < xs.length; j++) s += xs[j];
  const mean = s / xs.length;
  let v = 0;
  for (let j = 0; j < xs.length; j++) v += (xs[j] - mean) ** 2;
  return { mean, std: Math.sqrt(v / (xs.length - 1)) };
}

// ---------- generators ----------

const MAG = Math.fround(1000);
const vec = (n: number) =>
  fc.float32Array({ minLength: n, maxLength: n, min: -MAG, max: MAG, noNaN: true, noDefaultInfinity: true });
const anyVec = fc.integer({ min: 0, max: 32 }).chain(vec);
const clipNormArb = fc.double({ min: 1e-3, max: 1e4, noNaN: true });

const clientsArb = fc
  .tuple(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 16 }))
  .chain(([k, n]) => fc.array(vec(n), { minLength: k, maxLength: k }));

// ---------- clipping ----------

test('clipUpdate: hand-computed cases', () => {
  const big = clipUpdate(f32([3, 4]), 1);
  assert.equal(big.norm, 5);
  assert.equal(big.scale, 0.2);
  assert.deepEqual(arr(big.clipped), [Math.fround(0.6), Math.fround(0.8)]);

  const small = clipUpdate(f32([3, 4]), 10);
  assert.equal(small.scale, 1);
  assert.deepEqual(arr(small.clipped), [3, 4]);

  const input = f32([0, 0, 0]);
  const zero = clipUpdate(input, 0.5);
  assert.equal(zero.norm, 0);
  assert.equal(zero.scale, 1);
  assert.notEqual(zero.clipped, input); // always a fresh copy
  assert.equal(l2Norm(f32([])), 0);
  assert.equal(l2Norm(f32([-2, 0, 0, 0])), 2);
});

test('clipUpdate: never increases any coordinate or the norm; identity below the bound; norm <= C above it', () => {
  fc.assert(
    fc.property(anyVec, clipNormArb, (delta, clipNorm) => {
      const before = Float32Array.from(delta);
      const { clipped, norm, scale } = clipUpdate(delta, clipNorm);
      assert.ok(bitsEqual(delta, before), 'input mutated');
      assert.equal(norm, naiveNorm(arr(delta)));
      for (let j = 0; j < delta.length; j++)
        assert.ok(Math.abs(clipped[j]) <= Math.abs(delta[j]), `coordinate ${j} grew`);
      const after = l2Norm(clipped);
      assert.ok(after <= norm, `norm grew: ${norm} -> ${after}`);
      if (norm <= clipNorm) {
        assert.equal(scale, 1);
        assert.ok(bitsEqual(clipped, delta), 'not the identity below the bound');
      } else {
        assert.equal(scale, clipNorm / norm);
        for (let j = 0; j < delta.length; j++) assert.equal(clipped[j], Math.fround(delta[j] * scale));
        // Only the Float32 rounding of each coordinate separates the clipped norm from C.
        assert.ok(Math.abs(after - clipNorm) <= 1e-6 * clipNorm, `clipped norm ${after} vs C ${clipNorm}`);
      }
    }),
    { numRuns: 200 },
  );
});

test('clipUpdate: rejects bad input', () => {
  assert.throws(() => clipUpdate(f32([1, NaN]), 1), /delta\[1\] is NaN/);
  assert.throws(() => clipUpdate(f32([Infinity]), 1), /not finite/);
  assert.throws(() => clipUpdate(f32([1]), 0), /clipNorm/);
  assert.throws(() => clipUpdate(f32([1]), -1), /clipNorm/);
  assert.throws(() => clipUpdate(f32([1]), Infinity), /clipNorm/);
  assert.throws(() => clipUpdate([1, 2] as unknown as Float32Array, 1), /Float32Array/);
});

// ---------- aggregation ----------

test('dpAggregate: with noise 0 equals the (fixed-denominator) mean of the clipped deltas', () => {
  fc.assert(
    fc.property(
      clientsArb,
      clipNormArb,
      fc.option(fc.double({ min: 0.5, max: 50, noNaN: true }), { nil: undefined }),
      fc.integer(),
      (deltas, clipNorm, expected, seed) => {
        const rng = new Rng(seed);
        const stateBefore = rng.state();
        const got = dpAggregate(deltas, clipNorm, 0, rng, expected);
        const want = naiveClippedMean(deltas.map(arr), clipNorm, expected ?? deltas.length);
        // One Float32 rounding of a float64 mean; each clipped coordinate is at most min(|x|, C).
        assertClose(got, want, 1e-30, 2 ** -23);
        assert.deepEqual(rng.state(), stateBefore, 'noise 0 must not consume randomness');
        // Same as averaging clipUpdate's outputs, up to their own Float32 rounding (relative to each term,
        // so the tolerance scales with sum_i |clipped_i[j]|, not with a result that may cancel to ~0).
        const m = expected ?? deltas.length;
        const clipped = deltas.map((d) => arr(clipUpdate(d, clipNorm).clipped));
        const viaClip = naiveClippedMean(clipped, Infinity, m);
        for (let j = 0; j < got.length; j++) {
          const scale = clipped.reduce((s, c) => s + Math.abs(c[j]), 0) / m;
          assert.ok(
            Math.abs(got[j] - viaClip[j]) <= 2 ** -23 * (scale + Math.abs(viaClip[j])) + 1e-30,
            `coordinate ${j}`,
          );
        }
      },
    ),
    { numRuns: 150 },
  );
});

test('dpAggregate: hand-computed mean of clipped deltas', () => {
  // [3,4] -> [0.6,0.8] (clipped to norm 1); [0.3,0] stays; sum [0.9,0.8]; / 2 and / 4.
  const rng = new Rng(1);
  assertClose(dpAggregate([f32([3, 4]), f32([0.3, 0])], 1, 0, rng), [0.45, 0.4], 1e-7, 0);
  assertClose(dpAggregate([f32([3, 4]), f32([0.3, 0])], 1, 0, rng, 4), [0.225, 0.2], 1e-7, 0);
});

test('dpAggregate: noise is N(0, (z C / m)^2) per coordinate on the average, i.e. z C on the sum', () => {
  const n = 20_000;
  const zeros = [new Float32Array(n), new Float32Array(n)];
  for (const [z, C, m] of [
    [1.1, 0.5, 4], // expectedClients 4 with 2 participants
    [0.7, 3, 1], // m = 1: the noise on the sum itself
  ]) {
    const out = dpAggregate(zeros, C, z, new Rng(12345), m);
    const { mean, std } = stats(out);
    const sd = (z * C) / m;
    // std of a sample std ~ sd / sqrt(2n) = 0.5% of sd; allow 6 of those. Mean: 6 standard errors.
    assert.ok(Math.abs(std / sd - 1) < 0.03, `std ${std} vs ${sd}`);
    assert.ok(Math.abs(mean) < (6 * sd) / Math.sqrt(n), `mean ${mean}`);
    // Normal shape: ~68.27% within one sd, ~95.45% within two (binomial standard error ~0.33% / 0.15%).
    let in1 = 0;
    let in2 = 0;
    for (const x of out) {
      if (Math.abs(x) <= sd) in1++;
      if (Math.abs(x) <= 2 * sd) in2++;
    }
    assert.ok(Math.abs(in1 / n - 0.6827) < 0.015, `within 1 sd: ${in1 / n}`);
    assert.ok(Math.abs(in2 / n - 0.9545) < 0.01, `within 2 sd: ${in2 / n}`);
  }
});

test('dpAggregate: deterministic by seed; noise independent of the data; one normal draw per coordinate', () => {
  const rngData = new Rng(7);
  const deltas = Array.from({ length: 3 }, () => Float32Array.from({ length: 50 }, () => rngData.uniform(-2, 2)));
  const a = dpAggregate(deltas, 1.5, 1.2, new Rng(99), 10);
  const b = dpAggregate(deltas, 1.5, 1.2, new Rng(99), 10);
  const c = dpAggregate(deltas, 1.5, 1.2, new Rng(100), 10);
  assert.ok(bitsEqual(a, b), 'same seed, different result');
  assert.ok(!bitsEqual(a, c), 'different seeds, same result');

  // The noise drawn does not depend on the data: same seed with all-zero deltas gives the pure noise.
  const noise = dpAggregate(
    deltas.map((d) => new Float32Array(d.length)),
    1.5,
    1.2,
    new Rng(99),
    10,
  );
  const mean = naiveClippedMean(deltas.map(arr), 1.5, 10);
  assertClose(
    arr(a).map((x, j) => x - noise[j]),
    mean,
    1e-6,
    1e-5,
  );

  // Exactly deltas[0].length normals, in coordinate order.
  const rng = new Rng(5);
  const out = dpAggregate([new Float32Array(4)], 2, 0.5, rng);
  const ref = new Rng(5);
  const draws = Array.from({ length: 4 }, () => ref.normal());
  assert.deepEqual(rng.state(), ref.state());
  assert.deepEqual(
    arr(out),
    draws.map((g) => Math.fround(0.5 * 2 * g)),
  );
});

test('dpAggregate: rejects bad input', () => {
  const rng = new Rng(1);
  const d = f32([1, 2]);
  assert.throws(() => dpAggregate([], 1, 1, rng), /no deltas/);
  assert.throws(() => dpAggregate([d, f32([1])], 1, 1, rng), /deltas\[1\] has length 1/);
  assert.throws(() => dpAggregate([d, f32([1, NaN])], 1, 1, rng), /deltas\[1\]\[1\] is NaN/);
  assert.throws(() => dpAggregate([d], 0, 1, rng), /clipNorm/);
  assert.throws(() => dpAggregate([d], 1, -1, rng), /noiseMultiplier/);
  assert.throws(() => dpAggregate([d], 1, NaN, rng), /noiseMultiplier/);
  assert.throws(() => dpAggregate([d], 1, 1, rng, 0), /expectedClients/);
  assert.throws(() => dpAggregate([d], 1, 1, rng, Infinity), /expectedClients/);
});

// ---------- noise multipliers with adaptive clipping ----------

test('adaptiveUpdateNoiseMultiplier / combinedNoiseMultiplier: Andrew et al. formula, inverse of each other', () => {
  // z = 1, sigma_b = 1: (1 - 1/4)^(-1/2).
  assert.ok(Math.abs(adaptiveUpdateNoiseMultiplier(1, 1) - 1 / Math.sqrt(0.75)) < 1e-15);
  // sigma_b = m / 20 with m = 100 clients, z = 1: barely more update noise than z.
  assert.ok(Math.abs(adaptiveUpdateNoiseMultiplier(1, 5) - 1 / Math.sqrt(1 - 1 / 100)) < 1e-15);
  fc.assert(
    fc.property(
      fc.double({ min: 0.05, max: 20, noNaN: true }),
      fc.double({ min: 0.1, max: 1e3, noNaN: true }),
      (z, sigmaB) => {
        fc.pre(2 * sigmaB > z * 1.001);
        const zDelta = adaptiveUpdateNoiseMultiplier(z, sigmaB);
        assert.ok(zDelta > z, 'the count noise must cost some update noise');
        assert.ok(Math.abs(combinedNoiseMultiplier(zDelta, sigmaB) - z) <= 1e-9 * z);
        assert.ok(combinedNoiseMultiplier(z, sigmaB) < z);
      },
    ),
    { numRuns: 200 },
  );
  assert.throws(() => adaptiveUpdateNoiseMultiplier(1, 0.5), /too small/);
  assert.throws(() => adaptiveUpdateNoiseMultiplier(1, 0.4), /too small/);
  assert.throws(() => adaptiveUpdateNoiseMultiplier(0, 1), /noiseMultiplier/);
  assert.throws(() => adaptiveUpdateNoiseMultiplier(1, 0), /countStddev/);
  assert.equal(combinedNoiseMultiplier(0, 3), 0);
  assert.equal(combinedNoiseMultiplier(3, 0), 0);
});

// ---------- adaptive clipping ----------

test('AdaptiveClip: one update is C exp(-eta (b_bar - gamma)) with the centred, noised count', () => {
  // No noise: 2 of 4 norms <= 2.5 -> b_bar = 0.5.
  const a = new AdaptiveClip({ initialClipNorm: 2.5, countStddev: 0 });
  const rng = new Rng(3);
  const r = a.update([1, 2, 3, 4], rng);
  assert.deepEqual(r, { previousClipNorm: 2.5, clipNorm: 2.5, unclippedFraction: 0.5 });
  assert.deepEqual(rng.state(), new Rng(3).state(), 'no noise must not consume randomness');
  assert.equal(a.clipNorm, 2.5);

  const b = new AdaptiveClip({ initialClipNorm: 2.5, targetQuantile: 0.25, learningRate: 0.3, countStddev: 0 });
  b.update([1, 2, 2.5, 4], rng); // 3 of 4 unclipped (norm <= C counts as unclipped)
  assert.equal(b.clipNorm, 2.5 * Math.exp(-0.3 * (0.75 - 0.25)));
  assert.equal(nextClipNorm(2.5, 0.75, 0.25, 0.3), b.clipNorm);

  // With noise and a fixed denominator m = 10 for 4 participants: ((3 - 4/2) + sigma_b g) / 10 + 1/2.
  const c = new AdaptiveClip({ initialClipNorm: 2.5, countStddev: 0.5 });
  const noisy = new Rng(11);
  const g = new Rng(11).normal();
  const out = c.update([1, 2, 2.5, 4], noisy, 10);
  const bBar = (3 - 2 + 0.5 * g) / 10 + 0.5;
  assert.equal(out.unclippedFraction, bBar);
  assert.equal(out.clipNorm, 2.5 * Math.exp(-0.2 * (bBar - 0.5)));
  const after = new Rng(11);
  after.normal();
  assert.deepEqual(noisy.state(), after.state(), 'exactly one normal draw per update');
  assert.equal(c.round, 1);
});

test('AdaptiveClip: C moves toward the target quantile of the update norms', () => {
  // Synthetic update norms: log-normal, median 3 (quantile gamma: 3 exp(0.5 Phi^-1(gamma))).
  const quantiles: Record<number, number> = { 0.5: 3, 0.8: 3 * Math.exp(0.5 * 0.8416212335729143) };
  const m = 100;
  for (const gamma of [0.5, 0.8]) {
    for (const start of [0.05, 200]) {
      const data = new Rng(2024);
      const noise = new Rng(77);
      const ac = new AdaptiveClip({ initialClipNorm: start, targetQuantile: gamma, countStddev: m / 20 });
      const target = quantiles[gamma];
      let prevDist = Math.abs(Math.log(start / target));
      for (let round = 0; round < 200; round++) {
        const norms = Array.from({ length: m }, () => 3 * Math.exp(0.5 * data.normal()));
        ac.update(norms, noise, m);
        // While far away, every round closes the gap (the noise on b_bar is only sigma_b / m = 0.05).
        const dist = Math.abs(Math.log(ac.clipNorm / target));
        if (prevDist > 1) assert.ok(dist < prevDist, `round ${round}: moved away from ${target} (C = ${ac.clipNorm})`);
        prevDist = dist;
      }
      assert.ok(
        Math.abs(ac.clipNorm / target - 1) < 0.15,
        `gamma ${gamma}, start ${start}: C = ${ac.clipNorm}, quantile ${target}`,
      );
      assert.equal(ac.round, 200);
    }
  }
});

test('AdaptiveClip: state survives JSON and resumes exactly; options are validated', () => {
  const a = new AdaptiveClip({ initialClipNorm: 1, targetQuantile: 0.7, learningRate: 0.1, countStddev: 2 });
  const rng = new Rng(9);
  const data = new Rng(10);
  const norms = () => Array.from({ length: 20 }, () => data.uniform(0, 4));
  for (let t = 0; t < 5; t++) a.update(norms(), rng);
  const saved = JSON.parse(JSON.stringify(a.state())) as AdaptiveClipState;
  assert.deepEqual(saved, a.state());
  const b = AdaptiveClip.restore(saved);
  const rngB = new Rng(rng.state());
  for (let t = 0; t < 5; t++) {
    const x = norms();
    assert.deepEqual(b.update(x, rngB), a.update(x, rng));
  }
  assert.deepEqual(b.state(), a.state());
  assert.equal(b.round, 10);

  assert.throws(() => new AdaptiveClip({ initialClipNorm: 0, countStddev: 1 }), /initialClipNorm/);
  assert.throws(() => new AdaptiveClip({ initialClipNorm: 1, countStddev: -1 }), /countStddev/);
  assert.throws(() => new AdaptiveClip({ initialClipNorm: 1, countStddev: 1, targetQuantile: 1.5 }), /targetQuantile/);
  assert.throws(() => new AdaptiveClip({ initialClipNorm: 1, countStddev: 1, learningRate: 0 }), /learningRate/);
  assert.throws(
    () => AdaptiveClip.restore({ ...saved, kind: 'x' } as unknown as AdaptiveClipState),
    /not an adaptive clip state/,
  );
  assert.throws(() => AdaptiveClip.restore({ ...saved, round: -1 }), /round/);
  assert.throws(() => a.update([1, NaN], rng), /norms\[1\]/);
  assert.throws(() => a.update([1, -1], rng), /norms\[1\]/);
  assert.throws(() => a.update([], rng), /expectedClients/);
  // No participants but a known expected count is fine (b_bar = 1/2 + noise / m).
  assert.doesNotThrow(() => a.update([], rng, 10));
});
