import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { averageDelta, MeanDeltaAccumulator } from './aggregate.ts';
import { bitsEqual } from '../../test/support/numeric.js';

const f32 = (xs: number[]) => new Float32Array(xs);

function accumulate(global: Float32Array, locals: Float32Array[], weights: number[]): Float32Array {
  const acc = new MeanDeltaAccumulator(global);
  locals.forEach((l, i) => acc.add(l, weights[i]));
  return acc.finish();
}

test('MeanDeltaAccumulator equals averageDelta to the bit, one local at a time', () => {
  const vec = (n: number) => fc.float32Array({ minLength: n, maxLength: n, noNaN: true, noDefaultInfinity: true });
  fc.assert(
    fc.property(
      fc
        .integer({ min: 1, max: 5000 })
        .chain((n) =>
          fc.tuple(
            vec(n),
            fc.array(fc.tuple(vec(n), fc.integer({ min: 0, max: 100_000 })), { minLength: 1, maxLength: 12 }),
          ),
        ),
      ([global, clients]) => {
        const weights = clients.map(([, w]) => w);
        fc.pre(weights.some((w) => w > 0));
        const locals = clients.map(([l]) => l);
        assert.ok(bitsEqual(accumulate(global, locals, weights), averageDelta(global, locals, weights)));
      },
    ),
    { numRuns: 60 },
  );
});

test('MeanDeltaAccumulator: a NaN local with weight 0 adds nothing, as in averageDelta', () => {
  const global = f32([1, 2]);
  const locals = [f32([NaN, NaN]), f32([3, 5])];
  assert.deepEqual(accumulate(global, locals, [0, 4]), averageDelta(global, locals, [0, 4]));
  assert.deepEqual(accumulate(global, locals, [0, 4]), f32([2, 3]));
});

test('MeanDeltaAccumulator refuses what averageDelta refuses, with its words', () => {
  const g = f32([1, 2]);
  assert.throws(() => new MeanDeltaAccumulator(g).finish(), /averageDelta: no locals given/);
  assert.throws(() => accumulate(g, [f32([1, 2])], [0]), /averageDelta: all weights are zero/);
  assert.throws(() => accumulate(g, [f32([1, 2])], [-1]), /averageDelta: weights\[0\] must be a finite number >= 0/);
  assert.throws(() => accumulate(g, [f32([1, 2]), f32([1])], [1, 1]), /averageDelta: .*locals\[1\] has length 1/);
});

test('MeanDeltaAccumulator summing in a reused buffer (an earlier round’s sums, even NaN) gives averageDelta’s bits', () => {
  const rng = (seed: number) => () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5;
  const next = rng(7);
  const n = 3001;
  const vec = () => Float32Array.from({ length: n }, () => next() * 6);
  const sums = new Float64Array(n).fill(Number.NaN);
  for (let round = 0; round < 3; round++) {
    const global = vec();
    const locals = [vec(), vec(), vec()];
    const weights = [600, 0, 599 + round];
    const acc = new MeanDeltaAccumulator(global, sums);
    locals.forEach((l, i) => acc.add(l, weights[i]));
    assert.ok(bitsEqual(acc.finish(), averageDelta(global, locals, weights)), `round ${round}`);
  }
});

test('MeanDeltaAccumulator refuses a sums buffer of another length, naming both lengths', () => {
  assert.throws(
    () => new MeanDeltaAccumulator(f32([1, 2, 3]), new Float64Array(2)),
    /MeanDeltaAccumulator: sums buffer has length 2, global 3/,
  );
});
