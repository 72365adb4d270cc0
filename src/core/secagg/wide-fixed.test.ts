import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  checkWideConfig,
  decodeWideSum,
  encodeWide,
  MAX_WIDE_CLIENTS,
  wideLimbsFor,
  wideToNumber,
} from './wide-fixed.ts';

/** Naive reference: each client's value rounded to the grid, summed exactly as BigInt. */
const naiveSum = (clients: number[][], fractionBits: number, j: number): bigint =>
  clients.reduce((s, c) => s + BigInt(Math.round(c[j] * 2 ** fractionBits)), 0n);

/** The ring sum secure aggregation reproduces: word-wise mod 2^32. */
function ringSum(encoded: Uint32Array[]): Uint32Array {
  const out = new Uint32Array(encoded[0].length);
  for (const e of encoded) for (let i = 0; i < out.length; i++) out[i] += e[i];
  return out;
}

test('the decoded sum is the exact sum of the rounded values, signs and carries included', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 48 }),
      fc.array(fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 3, maxLength: 3 }), {
        minLength: 1,
        maxLength: 12,
      }),
      (fractionBits, clients) => {
        const limbs = wideLimbsFor(1e6, clients.length, fractionBits);
        const cfg = { fractionBits, limbs };
        const sums = decodeWideSum(ringSum(clients.map((c) => encodeWide(c, cfg))), cfg);
        sums.forEach((s, j) => assert.equal(s, naiveSum(clients, fractionBits, j)));
      },
    ),
    { numRuns: 200 },
  );
});

test('error bound: |decoded - true sum| <= n 2^-(f+1)', () => {
  const cfg = { fractionBits: 20, limbs: wideLimbsFor(10, 7, 20) };
  const clients = Array.from({ length: 7 }, (_, i) => [Math.PI * (i + 1), -Math.E / (i + 1)]);
  const sums = decodeWideSum(ringSum(clients.map((c) => encodeWide(c, cfg))), cfg);
  for (let j = 0; j < 2; j++) {
    const exact = clients.reduce((s, c) => s + c[j], 0);
    assert.ok(Math.abs(wideToNumber(sums[j], cfg) - exact) <= 7 * 2 ** -21 + 1e-12, `coordinate ${j}`);
  }
});

test('the most clients at the largest magnitude still fit; limb digit sums do not wrap', () => {
  const cfg = { fractionBits: 0, limbs: wideLimbsFor(65535, MAX_WIDE_CLIENTS, 0) };
  const one = encodeWide([65535, -65535], cfg);
  const sum = new Uint32Array(one.length);
  for (let i = 0; i < MAX_WIDE_CLIENTS; i++) for (let k = 0; k < sum.length; k++) sum[k] += one[k];
  assert.deepEqual(decodeWideSum(sum, cfg), [65535n * 65536n, -65535n * 65536n]);
});

test('bad configs and values are refused, naming what is wrong', () => {
  assert.throws(
    () => checkWideConfig({ fractionBits: 65, limbs: 2 }),
    /fractionBits must be a whole number in \[0, 64\]/,
  );
  assert.throws(() => checkWideConfig({ fractionBits: 8, limbs: 0 }), /limbs must be a whole number in \[1, 16\]/);
  assert.throws(() => encodeWide([1, NaN], { fractionBits: 8, limbs: 2 }), /values\[1\] is NaN/);
  assert.throws(() => wideLimbsFor(1, MAX_WIDE_CLIENTS + 1, 8), /clients must be a whole number in \[1, 65536\]/);
  assert.throws(() => wideLimbsFor(2 ** 250, 2, 40), /more than 256: declare narrower value ranges/);
  assert.throws(() => decodeWideSum(new Uint32Array(5), { fractionBits: 8, limbs: 2 }), /not whole values of 2/);
});
