import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { averageDelta } from '../core/aggregate.js';
import { bitsEqual } from '../../test/support/numeric.js';
import { Rng } from '../core/rng.js';
import { InOrderFusion } from './in-order-fusion.js';
import type { TrainResult } from './strategy.js';

const result = (nodeId: number, vector: Float32Array, numExamples: number): TrainResult => ({
  nodeId,
  numExamples,
  steps: 1,
  vector,
  metrics: { loss: 0, accuracy: 0 },
});

test('in-order fusion: any arrival order, failures and stragglers give the batch mean delta to the bit', async () => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 150 }), fc.integer({ min: 0, max: 2 ** 31 }), async (count, seed) => {
      const rng = new Rng(seed);
      const n = 1 + rng.int(3000);
      const vector = () => Float32Array.from({ length: n }, () => rng.uniform(-3, 3));
      const global = vector();
      const selected = Array.from({ length: count }, (_, i) => 10 + 3 * i);
      // Each node answers (fate 0), fails (1) or straggles and never settles (2); replies come in shuffled.
      const fate = selected.map(() => [0, 0, 0, 1, 2][rng.int(5)]);
      const results = selected.map((id) => result(id, vector(), rng.int(50)));
      const kept = results.filter((_, i) => fate[i] === 0);
      fc.pre(kept.some((r) => r.numExamples > 0));
      const expected = averageDelta(
        global,
        kept.map((r) => r.vector),
        kept.map((r) => r.numExamples),
      );
      const fusion = new InOrderFusion(selected, global);
      for (const i of rng.permutation(count))
        if (fate[i] !== 2) fusion.settle(selected[i], fate[i] === 0 ? results[i] : null);
      let yields = 0;
      const got = await fusion.finish(async () => void yields++);
      assert.ok(bitsEqual(got, expected));
      assert.ok(yields <= Math.ceil(count / 64));
    }),
    { numRuns: 40 },
  );
});

test('in-order fusion adds an update once every earlier node has settled, and then lets its vector go', async () => {
  const global = new Float32Array([0, 0]);
  const fusion = new InOrderFusion([1, 2, 3], global);
  const third = result(3, new Float32Array([3, 3]), 1);
  fusion.settle(3, third);
  assert.equal(third.vector.length, 2, 'node 3 waits for nodes 1 and 2');
  const first = result(1, new Float32Array([1, 1]), 1);
  fusion.settle(1, first);
  assert.equal(first.vector.length, 0, 'node 1 is first: added at once');
  fusion.settle(2, null);
  assert.equal(third.vector.length, 0, 'node 2 failed, so node 3 is added');
  assert.deepEqual(await fusion.finish(), new Float32Array([2, 2]));
});

test('in-order fusion round after round in one sums buffer gives each round’s batch mean delta to the bit', async () => {
  const rng = new Rng(11);
  const n = 2000;
  const vector = () => Float32Array.from({ length: n }, () => rng.uniform(-3, 3));
  const sums = new Float64Array(n);
  for (let round = 0; round < 3; round++) {
    const global = vector();
    const results = [2, 5, 9].map((id) => result(id, vector(), 10 + rng.int(50)));
    const expected = averageDelta(
      global,
      results.map((r) => r.vector),
      results.map((r) => r.numExamples),
    );
    const fusion = new InOrderFusion([2, 5, 9], global, sums);
    for (const i of rng.permutation(3)) fusion.settle(results[i].nodeId, results[i]);
    assert.ok(bitsEqual(await fusion.finish(), expected), `round ${round}`);
  }
});
