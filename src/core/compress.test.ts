import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  blockCount,
  decodeFp16,
  densify,
  dequantizeInt8,
  encodeFp16,
  fromHalf,
  quantizeInt8,
  residualOf,
  toHalf,
  topK,
  topkCount,
  withResidual,
} from './compress.ts';
import { Rng } from './rng.ts';

/** Every finite half value, ascending, with its bits: the naive reference for rounding to fp16. */
const HALVES = (() => {
  const all: { v: number; h: number }[] = [];
  for (let h = 0; h < 0x10000; h++) {
    const e = (h >>> 10) & 0x1f;
    if (e === 31) continue;
    const m = h & 0x3ff;
    const v = (h & 0x8000 ? -1 : 1) * (e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15));
    all.push({ v, h });
  }
  return all.filter((x) => !Object.is(x.v, -0) && !(x.v === 0 && x.h !== 0)).sort((a, b) => a.v - b.v);
})();

/** Nearest half by search over all finite halves; ties to the even mantissa; beyond 65520 to Inf. */
function referenceHalf(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  if (Math.abs(x) >= 65520) return sign | 0x7c00;
  let lo = 0;
  let hi = HALVES.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (HALVES[mid].v <= x) lo = mid;
    else hi = mid;
  }
  const a = HALVES[lo];
  const b = HALVES[hi];
  const da = Math.abs(x - a.v);
  const db = Math.abs(x - b.v);
  const pick = da < db ? a : db < da ? b : (a.h & 1) === 0 ? a : b;
  return pick.v === 0 ? sign : pick.h;
}

test('fp16: rounding matches a search over every half value (random floats of every magnitude and the edge cases)', () => {
  const specials = [
    0,
    -0,
    1,
    -1,
    65504,
    65519.99,
    65520,
    -65520,
    1e9,
    -1e9,
    2 ** -14,
    2 ** -24,
    2 ** -25,
    2 ** -25 * 1.0001,
    3 * 2 ** -26,
    2 ** -26,
    1 + 2 ** -11,
    1 + 3 * 2 ** -11,
    1e-30,
    -1e-30,
    2 ** -14 - 2 ** -25,
    0.1,
    1 / 3,
    Math.fround(1.0009765625),
  ];
  const rng = new Rng(7);
  const randoms = Array.from({ length: 20000 }, () => Math.fround((rng.next() - 0.5) * 2 ** (rng.int(64) - 32)));
  for (const x of [...specials.map(Math.fround), ...randoms]) {
    const got = toHalf(x);
    const want = referenceHalf(x);
    assert.equal(got, want, `toHalf(${x}) = 0x${got.toString(16)}, expected 0x${want.toString(16)}`);
  }
});

test('fp16: inf, NaN, signed zero and every half decode exactly and re-encode to themselves', () => {
  assert.equal(toHalf(Infinity), 0x7c00);
  assert.equal(toHalf(-Infinity), 0xfc00);
  assert.ok(Number.isNaN(fromHalf(toHalf(NaN))));
  assert.ok(Object.is(fromHalf(toHalf(-0)), -0));
  for (let h = 0; h < 0x10000; h++) {
    const v = fromHalf(h);
    if (Number.isNaN(v)) continue;
    assert.equal(toHalf(v), h, `half 0x${h.toString(16)}`);
  }
  const x = new Float32Array([1.5, -2.25, 1e-8, 70000, NaN]);
  const y = decodeFp16(encodeFp16(x));
  assert.deepEqual(Array.from(y.subarray(0, 3)), [1.5, -2.25, Math.fround(fromHalf(toHalf(1e-8)))]);
  assert.equal(y[3], Infinity);
  assert.ok(Number.isNaN(y[4]));
});

test('fp16 property: relative error <= 2^-11 in the normal range, absolute <= 2^-25 below it', () => {
  fc.assert(
    fc.property(fc.float({ min: -65000, max: 65000, noNaN: true }), (x) => {
      const y = fromHalf(toHalf(x));
      return Math.abs(x) >= 2 ** -14 ? Math.abs(y - x) <= Math.abs(x) * 2 ** -11 : Math.abs(y - x) <= 2 ** -25;
    }),
    { numRuns: 2000 },
  );
});

test('int8: nearest errs by at most scale/2, stochastic by less than scale, per block; scale = block max / 127', () => {
  const rng = new Rng(3);
  const x = Float32Array.from({ length: 1000 }, () => (rng.next() - 0.5) * 10 ** rng.int(4));
  for (const block of [0, 1, 7, 256, 1000, 5000]) {
    for (const rounding of ['nearest', 'stochastic'] as const) {
      const q = quantizeInt8(x, block, rounding, new Rng(1));
      assert.equal(q.scales.length, blockCount(x.length, block));
      const y = dequantizeInt8(q, block);
      const size = block === 0 ? x.length : block;
      for (let b = 0; b < q.scales.length; b++) {
        const part = Array.from(x.subarray(b * size, (b + 1) * size));
        assert.equal(q.scales[b], Math.fround(Math.max(...part.map(Math.abs)) / 127));
      }
      for (let i = 0; i < x.length; i++) {
        const s = q.scales[Math.floor(i / size)];
        const bound = (rounding === 'nearest' ? s / 2 : s) * (1 + 1e-6) + 1e-12;
        assert.ok(
          Math.abs(y[i] - x[i]) <= bound,
          `block ${block} ${rounding} value ${i}: |${y[i]} - ${x[i]}| > ${bound}`,
        );
        assert.ok(q.q[i] >= -127 && q.q[i] <= 127);
      }
    }
  }
});

test('int8: all-zero blocks, seeded stochastic rounding is reproducible and unbiased, bad input is refused', () => {
  const z = quantizeInt8(new Float32Array([0, 0, 0, 5]), 2, 'nearest');
  assert.deepEqual(Array.from(z.scales), [0, Math.fround(5 / 127)]);
  assert.deepEqual(Array.from(dequantizeInt8(z, 2)), [0, 0, 0, 5]);
  const x = new Float32Array(20000).fill(0.3);
  x[0] = 1;
  const a = quantizeInt8(x, 0, 'stochastic', new Rng(5));
  const b = quantizeInt8(x, 0, 'stochastic', new Rng(5));
  assert.deepEqual(a.q, b.q);
  const y = dequantizeInt8(a, 0);
  const mean = y.subarray(1).reduce((s, v) => s + v, 0) / (y.length - 1);
  assert.ok(Math.abs(mean - 0.3) < 0.002, `stochastic mean ${mean} is not about 0.3`); // std of the mean ~ 0.004/sqrt(2e4)
  assert.throws(() => quantizeInt8(new Float32Array([1, NaN]), 0, 'nearest'), /not finite/);
  assert.throws(() => quantizeInt8(new Float32Array([1]), -1, 'nearest'), /block size/);
  assert.throws(() => quantizeInt8(new Float32Array([1]), 0, 'stochastic'), /Rng/);
});

test('int8 property: every decoded value within scale/2 (nearest) of its input', () => {
  fc.assert(
    fc.property(
      fc.float32Array({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6, maxLength: 300 }),
      fc.integer({ min: 0, max: 64 }),
      (arr, block) => {
        const q = quantizeInt8(arr, block, 'nearest');
        const y = dequantizeInt8(q, block);
        const size = block === 0 ? arr.length : block;
        return Array.from(arr).every(
          (v, i) => Math.abs(y[i] - v) <= (q.scales[Math.floor(i / size)] / 2) * (1 + 1e-6) + 1e-30,
        );
      },
    ),
    { numRuns: 300 },
  );
});

/** Reference top-k: sort all positions by |x| descending, index ascending; keep k; back to index order. */
function referenceTopK(x: Float32Array, k: number): number[] {
  return Array.from(x.keys())
    .sort((a, b) => Math.abs(x[b]) - Math.abs(x[a]) || a - b)
    .slice(0, k)
    .sort((a, b) => a - b);
}

test('top-k: the k largest |x| by a full sort, ties to the lower index, values carried exactly', () => {
  const x = new Float32Array([0.5, -3, 3, 0, -0.5, 2, 3, -1]);
  assert.deepEqual(Array.from(topK(x, 3).indices), [1, 2, 6]);
  assert.deepEqual(Array.from(topK(x, 4).indices), [1, 2, 5, 6]);
  assert.deepEqual(Array.from(topK(x, 5).indices), [1, 2, 5, 6, 7]);
  assert.deepEqual(Array.from(topK(x, 3).values), [-3, 3, 3]);
  assert.deepEqual(Array.from(densify(topK(x, 2), 8)), [0, -3, 3, 0, 0, 0, 0, 0]);
  assert.equal(topK(x, 0).indices.length, 0);
  assert.throws(() => topK(x, 9), /k must be/);
  assert.throws(() => topK(new Float32Array([1, Infinity]), 1), /not finite/);
  assert.equal(topkCount(100352, 0.01), 1004);
  assert.equal(topkCount(10, 0.01), 1);
  assert.equal(topkCount(1000, 0.01), 10);
  assert.equal(topkCount(0, 0.5), 0);
  assert.equal(topkCount(3, 1), 3);
});

test('top-k property: keeps exactly k values, the same positions as the reference sort', () => {
  fc.assert(
    fc.property(
      fc
        .float32Array({ noNaN: true, noDefaultInfinity: true, maxLength: 200 })
        .chain((x) => fc.tuple(fc.constant(x), fc.integer({ min: 0, max: x.length }))),
      ([x, k]) => {
        const s = topK(x, k);
        assert.equal(s.indices.length, k);
        assert.deepEqual(Array.from(s.indices), referenceTopK(x, k));
        s.indices.forEach((i, j) => assert.ok(Object.is(s.values[j], x[i])));
      },
    ),
    { numRuns: 300 },
  );
});

test('error feedback property: what was sent plus the final residual equals the sum of the inputs', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 40 }),
      fc.integer({ min: 1, max: 6 }),
      fc.integer({ min: 0, max: 2 ** 31 }),
      (n, rounds, seed) => {
        const rng = new Rng(seed);
        const k = Math.max(1, Math.floor(n / 4));
        const inputs = new Float64Array(n);
        const sent = new Float64Array(n);
        let residual: Float32Array | undefined;
        for (let r = 0; r < rounds; r++) {
          const input = Float32Array.from({ length: n }, () => rng.normal());
          input.forEach((v, i) => (inputs[i] += v));
          const corrected = withResidual(input, residual);
          const decoded = densify(topK(corrected, k), n);
          decoded.forEach((v, i) => (sent[i] += v));
          residual = residualOf(corrected, decoded);
        }
        // Float32 rounding of each addition is the only difference: a few ulps of the running magnitude.
        for (let i = 0; i < n; i++)
          assert.ok(Math.abs(sent[i] + residual![i] - inputs[i]) <= 1e-5 * rounds * 8, `coordinate ${i}`);
      },
    ),
    { numRuns: 200 },
  );
  assert.throws(() => withResidual(new Float32Array(2), new Float32Array(3)), /residual has 3 values/);
});
