import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { dpGridMean, GRID_BITS, gridNoiseSteps, gridNormal, preRoundingClip } from './dp-grid.ts';
import { cryptoWords } from './random-words.ts';
import { Rng } from './rng.ts';

/** Naive reference: clip each delta in float64 to `clip`, sum, divide by m. */
function naiveClippedMean(deltas: number[][], clip: number, m: number): number[] {
  const out = new Array(deltas[0].length).fill(0);
  for (const d of deltas) {
    const norm = Math.sqrt(d.reduce((s, x) => s + x * x, 0));
    const scale = norm > clip ? clip / norm : 1;
    d.forEach((x, j) => (out[j] += x * scale));
  }
  return out.map((x) => x / m);
}

const vec = fc.array(fc.float({ min: -50, max: 50, noNaN: true, noDefaultInfinity: true }), {
  minLength: 1,
  maxLength: 64,
});

test('without noise the grid mean is the clipped mean within half a grid step per update (property)', () => {
  fc.assert(
    fc.property(
      fc.array(vec, { minLength: 1, maxLength: 6 }),
      fc.double({ min: 0.01, max: 10, noNaN: true }),
      (raw, clip) => {
        const n = raw[0].length;
        const deltas = raw.map((d) => Float32Array.from({ length: n }, (_, j) => d[j % d.length]));
        const m = deltas.length + 1;
        const got = dpGridMean(deltas, clip, 0, new Rng(1), m);
        const want = naiveClippedMean(
          deltas.map((d) => Array.from(d)),
          preRoundingClip(clip, n),
          m,
        );
        const tolerance = (deltas.length * clip) / 2 ** GRID_BITS / 2 / m + 1e-6 * clip;
        return want.every((w, j) => Math.abs(got[j] - w) <= tolerance);
      },
    ),
  );
});

test("every rounded update has L2 norm <= C, so the sum's sensitivity is one clip norm (property)", () => {
  fc.assert(
    fc.property(vec, fc.double({ min: 0.01, max: 10, noNaN: true }), (raw, clip) => {
      const delta = Float32Array.from(raw.map((x) => x * 1000));
      const steps = dpGridMean([delta], clip, 0, new Rng(1), 1);
      const step = clip / 2 ** GRID_BITS;
      const norm = Math.sqrt(steps.reduce((s, x) => s + Math.round(x / step) ** 2, 0));
      return norm <= 2 ** GRID_BITS;
    }),
  );
});

test('the noise on the mean has stddev z C / m (5 standard errors), from seeded and CSPRNG words alike', () => {
  const n = 20_000;
  const zero = [new Float32Array(n)];
  for (const words of [new Rng(11), cryptoWords()]) {
    const out = dpGridMean(zero, 2, 1.5, words, 4);
    const sd = Math.sqrt(out.reduce((s, x) => s + x * x, 0) / n);
    assert.ok(Math.abs(sd / ((1.5 * 2) / 4) - 1) < 5 * Math.sqrt(1 / (2 * n)), `sd ${sd}`);
  }
});

test('the noise is never less than asked: ceil(z 2^16) grid steps', () => {
  assert.equal(gridNoiseSteps(1), 65536);
  assert.equal(gridNoiseSteps(1.1), Math.ceil(1.1 * 65536));
  assert.ok(gridNoiseSteps(0.3) / 65536 >= 0.3);
});

test('gridNormal has unit variance (5 standard errors)', () => {
  const rng = new Rng(4);
  const n = 20_000;
  let sq = 0;
  for (let k = 0; k < n; k++) sq += gridNormal(rng, 2.5) ** 2;
  assert.ok(Math.abs(sq / n - 1) < 5 * Math.sqrt(2 / n));
});

test('dpGridMean refuses bad input with what was wrong', () => {
  const rng = new Rng(1);
  const d = new Float32Array([1, 2]);
  assert.throws(() => dpGridMean([], 1, 1, rng, 1), /no deltas/);
  assert.throws(() => dpGridMean([d], 0, 1, rng, 1), /clipNorm must be a finite number > 0, got 0/);
  assert.throws(() => dpGridMean([d], 1, -1, rng, 1), /noiseMultiplier must be a finite number >= 0/);
  assert.throws(() => dpGridMean([d], 1, 1, rng, 0), /expectedClients must be a finite number > 0/);
  assert.throws(() => dpGridMean([d, new Float32Array(3)], 1, 1, rng, 1), /deltas\[1\] has length 3/);
  assert.throws(() => dpGridMean([new Float32Array([NaN])], 1, 1, rng, 1), /deltas\[0\]\[0\] is NaN/);
  assert.throws(() => preRoundingClip(1, 2 ** 36), /too many for a grid/);
});
