import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Rng } from '../rng.js';
import { rngRandomBytes } from './random.js';
import {
  FIELD_PRIME,
  invert,
  lagrangeAtZero,
  randomFieldElement,
  reconstructBytes,
  reconstructField,
  shareByteLength,
  shareBytes,
  shareField,
} from './shamir.js';

/** A threshold t, a number of parties n >= t, a subset of k parties (x = 1..n) and a seed. */
const scheme = fc
  .record({ t: fc.integer({ min: 1, max: 8 }), beyondThreshold: fc.integer({ min: 0, max: 6 }), seed: fc.integer() })
  .chain(({ t, beyondThreshold, seed }) =>
    fc.record({
      t: fc.constant(t),
      n: fc.constant(t + beyondThreshold),
      seed: fc.constant(seed),
      subset: fc.shuffledSubarray(
        Array.from({ length: t + beyondThreshold }, (_, i) => i),
        { minLength: t, maxLength: t + beyondThreshold },
      ),
    }),
  );

test('invert: a * a^-1 = 1 in GF(2^127 - 1), and 0 has no inverse', () => {
  const rb = rngRandomBytes(new Rng(1));
  for (let i = 0; i < 50; i++) {
    const a = randomFieldElement(rb);
    if (a === 0n) continue;
    assert.equal((a * invert(a)) % FIELD_PRIME, 1n);
  }
  assert.equal(invert(FIELD_PRIME - 1n), FIELD_PRIME - 1n);
  assert.throws(() => invert(0n), /0 has no inverse/);
  assert.throws(() => invert(FIELD_PRIME), /0 has no inverse/);
});

test('Lagrange coefficients at 0 sum to 1 (they interpolate the constant polynomial)', () => {
  const l = lagrangeAtZero([3n, 7n, 11n, 20n]);
  assert.equal(
    l.reduce((a, b) => (a + b) % FIELD_PRIME, 0n),
    1n,
  );
});

test('field shares: any t of n shares reconstruct the secret (fast-check)', () => {
  fc.assert(
    fc.property(scheme, fc.bigInt({ min: 0n, max: FIELD_PRIME - 1n }), ({ t, n, seed, subset }, secret) => {
      const xs = Array.from({ length: n }, (_, i) => i + 1);
      const ys = shareField(secret, t, xs, rngRandomBytes(new Rng(seed)));
      assert.equal(reconstructField(subset.map((i) => ({ x: BigInt(xs[i]), y: ys[i] }))), secret);
    }),
    { numRuns: 200 },
  );
});

test('field shares: t-1 shares do not determine the secret', () => {
  fc.assert(
    fc.property(scheme, fc.bigInt({ min: 0n, max: FIELD_PRIME - 1n }), ({ t, n, seed, subset }, secret) => {
      fc.pre(t >= 2);
      const xs = Array.from({ length: n }, (_, i) => i + 1);
      const ys = shareField(secret, t, xs, rngRandomBytes(new Rng(seed)));
      const few = subset.slice(0, t - 1).map((i) => ({ x: BigInt(xs[i]), y: ys[i] }));
      // Interpolating too few points gives an unrelated value.
      assert.notEqual(reconstructField(few), secret);
    }),
    { numRuns: 100 },
  );
});

test('t = 2: one share is consistent with every secret (it is uniform whatever the secret)', () => {
  // For t = 2, the single share f(x) = s + a x is uniform over the field for every s: two different
  // secrets shared with coefficients a and a' = a + (s - s')/x give the same share, so nothing is learned.
  const s1 = 5n;
  const s2 = 99n;
  const x = 3n;
  const a = 777n;
  const a2 = (((a + (s1 - s2) * invert(x)) % FIELD_PRIME) + FIELD_PRIME) % FIELD_PRIME;
  assert.equal((s1 + a * x) % FIELD_PRIME, (s2 + a2 * x) % FIELD_PRIME);
});

test('byte secrets: any t shares rebuild 32-byte secrets; t-1 shares give a wrong value or an error (fast-check)', () => {
  fc.assert(
    fc.property(scheme, fc.uint8Array({ minLength: 0, maxLength: 70 }), ({ t, n, seed, subset }, secret) => {
      const xs = Array.from({ length: n }, (_, i) => 10 * (i + 1)); // any distinct non-zero x's
      const shares = shareBytes(secret, t, xs, rngRandomBytes(new Rng(seed)));
      assert.equal(shares[0].y.length, shareByteLength(secret.length));
      const picked = subset.map((i) => shares[i]);
      assert.deepEqual(reconstructBytes(picked, t, secret.length), secret);
      if (t >= 2) {
        let wrong: Uint8Array | null = null;
        try {
          wrong = reconstructBytes(picked.slice(0, t - 1), t - 1, secret.length);
        } catch (e) {
          assert.match((e as Error).message, /reconstructs out of range/);
        }
        // An empty secret is the only one t-1 shares can "guess" (there is nothing to guess).
        if (wrong !== null && secret.length > 0) assert.notDeepEqual(wrong, secret);
      }
    }),
    { numRuns: 150 },
  );
});

test('a 32-byte secret is 3 field elements (48-byte shares), and shares of the same secret differ per run', () => {
  const secret = new Uint8Array(32).map((_, i) => 255 - i);
  const a = shareBytes(secret, 3, [1, 2, 3, 4, 5], rngRandomBytes(new Rng(1)));
  const b = shareBytes(secret, 3, [1, 2, 3, 4, 5], rngRandomBytes(new Rng(2)));
  assert.equal(a[0].y.length, 48);
  assert.notDeepEqual(a[0].y, b[0].y);
  assert.deepEqual(reconstructBytes([a[4], a[0], a[2]], 3, 32), secret);
  assert.deepEqual(reconstructBytes([b[1], b[3], b[2], b[0]], 3, 32), secret);
});

test('Shamir validates its inputs with clear errors', () => {
  const rb = rngRandomBytes(new Rng(3));
  assert.throws(() => shareField(1n, 3, [1, 2], rb), /2 shares cannot meet threshold 3/);
  assert.throws(() => shareField(1n, 0, [1, 2], rb), /threshold must be an integer >= 1/);
  assert.throws(() => shareField(1n, 2, [1, 1], rb), /x-coordinate 1 appears twice/);
  assert.throws(() => shareField(1n, 2, [0, 1], rb), /integers >= 1/);
  assert.throws(() => shareField(FIELD_PRIME, 2, [1, 2], rb), /secret must be in \[0, p\)/);
  assert.throws(() => reconstructField([]), /no shares/);
  assert.throws(
    () =>
      reconstructField([
        { x: 1n, y: 1n },
        { x: 1n, y: 2n },
      ]),
    /same x-coordinate/,
  );
  const shares = shareBytes(new Uint8Array(32), 2, [1, 2, 3], rb);
  assert.throws(() => reconstructBytes(shares.slice(0, 1), 2, 32), /1 shares given but 2 are needed/);
  assert.throws(() => reconstructBytes(shares, 2, 10), /expected 16/);
  assert.throws(() => reconstructBytes([shares[0], shares[0]], 2, 32), /appears twice/);
  assert.throws(() => shareField(1n, 2, [1, 2], () => new Uint8Array(3)), /returned 3 bytes/);
});
