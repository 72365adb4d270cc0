import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { weightedAverage } from '../aggregate.js';
import {
  addMod32,
  decodeAverage,
  decodeFixedSum,
  decodeWeightedAverage,
  encodeFixed,
  encodeFixedInto,
  encodeWeightedUpdate,
  fixedPointConfig,
  fixedPointErrorBound,
} from './fixed-point.js';

const f32 = (lo: number, hi: number) =>
  fc.float({ min: Math.fround(lo), max: Math.fround(hi), noNaN: true, noDefaultInfinity: true });

test('fixedPointConfig validates its fields and rejects configs that could overflow, naming a scale that fits', () => {
  const cfg = fixedPointConfig({ maxClients: 10 });
  assert.deepEqual({ ...cfg }, { scaleBits: 16, clip: 1, maxWeight: 1, maxClients: 10 });
  assert.throws(() => fixedPointConfig({ maxClients: 0 }), /maxClients must be an integer >= 1/);
  assert.throws(() => fixedPointConfig({ maxClients: 2, scaleBits: 31 }), /scaleBits must be an integer in \[0, 30\]/);
  assert.throws(() => fixedPointConfig({ maxClients: 2, scaleBits: 1.5 }), /scaleBits/);
  assert.throws(() => fixedPointConfig({ maxClients: 2, clip: 0 }), /clip must be a finite number > 0/);
  assert.throws(() => fixedPointConfig({ maxClients: 2, clip: Infinity }), /clip/);
  assert.throws(() => fixedPointConfig({ maxClients: 2, maxWeight: -1 }), /maxWeight/);
  // 1000 clients * 600 examples * clip 1 * 2^16 = 3.9e10 > 2^31 - 1: 2^11 fits (1.23e9), 2^12 does not.
  assert.throws(
    () => fixedPointConfig({ maxClients: 1000, maxWeight: 600 }),
    /overflow: .* exceeds 2\^31 - 1; use scaleBits <= 11/,
  );
  assert.equal(fixedPointConfig({ maxClients: 1000, maxWeight: 600, scaleBits: 11 }).scaleBits, 11);
  // Exactly at the limit: 2^15 clients at 2^16 = 2^31 > 2^31 - 1.
  assert.throws(() => fixedPointConfig({ maxClients: 2 ** 15, scaleBits: 16 }), /overflow/);
  assert.ok(fixedPointConfig({ maxClients: 2 ** 15 - 1, scaleBits: 16 }));
});

test('encode/decode round trip: each in-range value comes back within 2^-(scaleBits+1), clipped ones at +-clip', () => {
  fc.assert(
    fc.property(fc.array(f32(-8, 8), { maxLength: 64 }), fc.integer({ min: 0, max: 24 }), (xs, scaleBits) => {
      const cfg = fixedPointConfig({ maxClients: 1, clip: 2, scaleBits });
      const values = new Float32Array(xs);
      const out = new Uint32Array(values.length);
      const clipped = encodeFixedInto(values, cfg, 1, out);
      const back = decodeFixedSum(out, cfg);
      let expectClipped = 0;
      for (let j = 0; j < values.length; j++) {
        const c = Math.max(-2, Math.min(2, values[j]));
        if (c !== values[j]) expectClipped++;
        assert.ok(Math.abs(back[j] - c) <= 2 ** -(scaleBits + 1), `${values[j]} -> ${back[j]}`);
      }
      assert.equal(clipped, expectClipped);
    }),
    { numRuns: 200 },
  );
});

test('values on the fixed-point grid are exact, and negatives are two-s complement words', () => {
  const cfg = fixedPointConfig({ maxClients: 4, scaleBits: 16 });
  const enc = encodeFixed(new Float32Array([0, 1, -1, 0.5, -(2 ** -16), -0]), cfg);
  assert.deepEqual([...enc], [0, 65536, 2 ** 32 - 65536, 32768, 2 ** 32 - 1, 0]);
  assert.deepEqual([...decodeFixedSum(enc, cfg)], [0, 1, -1, 0.5, -(2 ** -16), 0]);
});

test('the mod-2^32 sum of n encodings decodes to the float sum within n * 2^-(scaleBits+1), even at full clip', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 12 }),
      fc.integer({ min: 1, max: 16 }),
      fc.integer({ min: 0, max: 20 }),
      fc.integer(),
      (n, len, scaleBits, seed) => {
        // The largest clip that this config allows: sums of n clients at +-clip must not wrap.
        const clip = Math.floor((2 ** 31 - 1) / n / 2 ** scaleBits);
        fc.pre(clip >= 1);
        const cfg = fixedPointConfig({ maxClients: n, clip, scaleBits });
        const g = fc.sample(fc.array(f32(-clip * 1.5, clip * 1.5), { minLength: len, maxLength: len }), {
          seed,
          numRuns: n,
        });
        const acc = new Uint32Array(len);
        const exact = new Float64Array(len);
        for (const xs of g) {
          addMod32(acc, encodeFixed(xs, cfg));
          for (let j = 0; j < len; j++) exact[j] += Math.max(-clip, Math.min(clip, Math.fround(xs[j])));
        }
        const dec = decodeFixedSum(acc, cfg);
        for (let j = 0; j < len; j++)
          assert.ok(Math.abs(dec[j] - exact[j]) <= fixedPointErrorBound(cfg, n), `${dec[j]} vs ${exact[j]}`);
      },
    ),
    { numRuns: 150 },
  );
});

test('worst case: maxClients clients all at +clip (or -clip) sum without wrapping', () => {
  const cfg = fixedPointConfig({ maxClients: 2 ** 15 - 1, scaleBits: 16, clip: 1 });
  for (const v of [1, -1]) {
    const one = encodeFixed([v * 5], cfg); // clipped to v
    const acc = new Uint32Array(1);
    for (let i = 0; i < cfg.maxClients; i++) addMod32(acc, one);
    assert.equal(decodeFixedSum(acc, cfg)[0], v * cfg.maxClients);
  }
});

test('encode rejects non-finite values, bad weights and a too-small output with clear errors', () => {
  const cfg = fixedPointConfig({ maxClients: 2, maxWeight: 10 });
  assert.throws(() => encodeFixed([0, NaN], cfg), /values\[1\] is NaN/);
  assert.throws(() => encodeFixed([Infinity], cfg), /values\[0\] is Infinity/);
  assert.throws(() => encodeFixed([1], cfg, 11), /weight must be a finite number in \[0, maxWeight = 10\]/);
  assert.throws(() => encodeFixed([1], cfg, -1), /weight/);
  assert.throws(() => encodeFixedInto([1, 2], cfg, 1, new Uint32Array(2), 1), /do not fit/);
  assert.throws(() => encodeWeightedUpdate([1], 2.5, cfg), /numExamples must be an integer/);
  assert.throws(() => encodeWeightedUpdate([1], 11, cfg), /numExamples/);
  assert.throws(() => decodeWeightedAverage(encodeWeightedUpdate([1], 0, cfg), cfg), /total weight is 0/);
  assert.throws(() => decodeWeightedAverage(new Uint32Array([0, 2 ** 32 - 1]), cfg), /overflowed/);
  assert.throws(() => addMod32(new Uint32Array(1), new Uint32Array(2)), /lengths differ/);
  assert.throws(() => decodeAverage(new Uint32Array(1), 0, cfg), /count/);
});

test('weighted encoding: decodeWeightedAverage of summed [n_i x_i, n_i] matches weightedAverage within the bound', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.array(f32(-1, 1), { minLength: 8, maxLength: 8 }), fc.integer({ min: 0, max: 500 })), {
        minLength: 1,
        maxLength: 8,
      }),
      (clients) => {
        const weights = clients.map(([, w]) => w);
        fc.pre(weights.some((w) => w > 0));
        const cfg = fixedPointConfig({ maxClients: 8, maxWeight: 500, clip: 1, scaleBits: 16 });
        const acc = new Uint32Array(9);
        for (const [xs, w] of clients) addMod32(acc, encodeWeightedUpdate(xs, w, cfg));
        const { average, totalWeight } = decodeWeightedAverage(acc, cfg);
        const total = weights.reduce((a, b) => a + b, 0);
        assert.equal(totalWeight, total);
        const ref = weightedAverage(
          clients.map(([xs]) => new Float32Array(xs)),
          weights,
        );
        const tol = fixedPointErrorBound(cfg, clients.length) / total + 2 ** -23; // + float32 rounding of both
        for (let j = 0; j < 8; j++) assert.ok(Math.abs(average[j] - ref[j]) <= tol, `${average[j]} vs ${ref[j]}`);
      },
    ),
    { numRuns: 200 },
  );
});

test('decodeAverage divides the decoded sum by the count', () => {
  const cfg = fixedPointConfig({ maxClients: 3 });
  const acc = new Uint32Array(2);
  for (const xs of [
    [0.25, -1],
    [0.5, -1],
    [0.75, 0.5],
  ])
    addMod32(acc, encodeFixed(xs, cfg));
  assert.deepEqual([...decodeAverage(acc, 3, cfg)], [0.5, Math.fround(-1.5 / 3)]);
});
