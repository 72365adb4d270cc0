import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { localDpWeights, parseLocalDp } from './local-dp.ts';
import { discreteGaussianVector } from './discrete-gaussian.ts';
import { GRID_BITS, gridNoiseSteps } from './dp-grid.ts';
import { Rng } from './rng.ts';

test('parseLocalDp reads clip, noise and delta and names what is wrong', () => {
  assert.deepEqual(parseLocalDp('clip=1,noise=0.5'), { clip: 1, noise: 0.5, delta: 1e-5 });
  assert.deepEqual(parseLocalDp('noise=2, clip=0.1, delta=1e-6'), { clip: 0.1, noise: 2, delta: 1e-6 });
  assert.throws(() => parseLocalDp('clip=1'), /noise must be a number > 0, got ''/);
  assert.throws(() => parseLocalDp('clip=0,noise=1'), /clip must be a number > 0, got '0'/);
  assert.throws(() => parseLocalDp('clip=1,noise=1,delta=2'), /delta must be in \(0, 1\)/);
  assert.throws(() => parseLocalDp('clip=1,noise=1,eps=3'), /expected clip=C,noise=Z\[,delta=D\], got 'eps=3'/);
});

test('the noise-free part of a local DP update has norm <= C whatever the update (property)', () => {
  fc.assert(
    fc.property(
      fc.array(fc.float({ min: -100, max: 100, noNaN: true, noDefaultInfinity: true }), {
        minLength: 1,
        maxLength: 50,
      }),
      fc.double({ min: 0.01, max: 5, noNaN: true }),
      fc.integer({ min: 0, max: 2 ** 31 }),
      (raw, clip, seed) => {
        const global = new Float32Array(raw.length).fill(0.5);
        const local = Float32Array.from(raw, (x) => 0.5 + x);
        const sent = localDpWeights(global, local, { clip, noise: 1, delta: 1e-5 }, new Rng(seed));
        // Seeded words: subtract the same noise again, leaving the clipped, rounded update.
        const noise = discreteGaussianVector(new Rng(seed), gridNoiseSteps(1), raw.length);
        const step = clip / 2 ** GRID_BITS;
        const norm = Math.hypot(...Array.from(sent, (x, j) => Math.round((x - 0.5) / step - noise[j])));
        return norm <= 2 ** GRID_BITS;
      },
    ),
  );
});

test('a local DP update carries noise of stddev z C per coordinate (5 standard errors)', () => {
  const n = 20_000;
  const global = new Float32Array(n);
  const sent = localDpWeights(global, global, { clip: 0.5, noise: 2, delta: 1e-5 }, new Rng(9));
  const sd = Math.sqrt(sent.reduce((s, x) => s + x * x, 0) / n);
  assert.ok(Math.abs(sd / 1 - 1) < 5 * Math.sqrt(1 / (2 * n)), `sd ${sd}`);
  assert.throws(
    () => localDpWeights(global, new Float32Array(3), { clip: 1, noise: 1, delta: 1e-5 }, new Rng(1)),
    /local model has 3 values/,
  );
});
