import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bufferedDelta, checkFedBuffOptions, stalenessWeight, type BufferedUpdate } from './fedbuff.js';
import { assertClose } from '../../test/support/numeric.js';
import { Rng } from './rng.js';

test('staleness weight 1/sqrt(1+s) against the written-out values', () => {
  const expected = [1, 1 / Math.SQRT2, 1 / Math.sqrt(3), 0.5, 1 / Math.sqrt(5)];
  expected.forEach((w, s) => assert.ok(Math.abs(stalenessWeight(s) - w) < 1e-15, `s=${s}`));
  assert.equal(stalenessWeight(99), 0.1);
  for (const bad of [-1, 1.5, NaN, Infinity])
    assert.throws(() => stalenessWeight(bad), /staleness must be a whole number >= 0/);
});

/** Naive reference: per coordinate, in plain doubles, sum of w(s) * delta over the buffer, divided by K. */
function bufferedRef(buffer: BufferedUpdate[]): number[] {
  const n = buffer[0].delta.length;
  return Array.from(
    { length: n },
    (_, j) => buffer.reduce((a, u) => a + Math.pow(1 + u.staleness, -0.5) * u.delta[j], 0) / buffer.length,
  );
}

test('buffered delta: staleness-weighted mean over K matches the naive reference', () => {
  const rng = new Rng(5);
  const buffer = [0, 0, 3, 8].map((s) => ({
    staleness: s,
    delta: Float32Array.from({ length: 50 }, () => rng.normal()),
  }));
  assertClose(bufferedDelta(buffer), bufferedRef(buffer));
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 1, max: 20 }),
      fc.array(fc.nat(30), { minLength: 8, maxLength: 8 }),
      fc.nat(),
      (k, n, stale, seed) => {
        const r = new Rng(seed);
        const buf = stale
          .slice(0, k)
          .map((s) => ({ staleness: s, delta: Float32Array.from({ length: n }, () => r.uniform(-5, 5)) }));
        const got = bufferedDelta(buf);
        assertClose(got, bufferedRef(buf));
        // all fresh: FedBuff is the plain mean of the deltas
        if (buf.every((u) => u.staleness === 0))
          assertClose(
            got,
            Array.from({ length: n }, (_, j) => buf.reduce((a, u) => a + u.delta[j], 0) / k),
          );
      },
    ),
    { numRuns: 200 },
  );
});

test('bad buffers and settings are refused with the reason', () => {
  assert.throws(() => bufferedDelta([]), /at least one update/);
  assert.throws(
    () =>
      bufferedDelta([
        { staleness: 0, delta: new Float32Array(2) },
        { staleness: 0, delta: new Float32Array(3) },
      ]),
    /lengths 2 and 3/,
  );
  assert.throws(() => bufferedDelta([{ staleness: -2, delta: new Float32Array(2) }]), /staleness/);
  assert.doesNotThrow(() => checkFedBuffOptions({ bufferSize: 3, concurrency: 3, serverLr: 1 }));
  assert.throws(
    () => checkFedBuffOptions({ bufferSize: 0, concurrency: 3, serverLr: 1 }),
    /buffer size K must be a whole number >= 1, got 0/,
  );
  assert.throws(
    () => checkFedBuffOptions({ bufferSize: 4, concurrency: 3, serverLr: 1 }),
    /concurrency must be .* >= the buffer size K = 4.*got 3/,
  );
  assert.throws(
    () => checkFedBuffOptions({ bufferSize: 2, concurrency: 3, serverLr: 0 }),
    /server learning rate must be a number > 0/,
  );
  assert.throws(() => checkFedBuffOptions({ bufferSize: 2, concurrency: 3, serverLr: NaN }), /server learning rate/);
});
