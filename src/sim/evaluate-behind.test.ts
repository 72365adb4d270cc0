import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluation, runSimulation } from './simulate.js';
import type { SimulationOptions } from './options.js';
import type { RoundRecord } from '../engine/round-engine.js';

// 1,200 test rows: three evaluation batches of 512, so an evaluation behind training is queued as several ranges.
const base: SimulationOptions = {
  dataset: 'mnist',
  model: 'mlp',
  nodes: 8,
  rounds: 4,
  limitTrain: 1600,
  limitTest: 1200,
  seed: 3,
  validationFraction: 0,
};

/** A record without its wall-clock duration, the one field that may differ between runs. */
const timeless = ({ seconds, ...rest }: RoundRecord) => (void seconds, rest);

/** A run evaluated behind training (the default) or in step (each round evaluated before the next starts). */
async function run(options: SimulationOptions, behind = true) {
  const seen: RoundRecord[] = [];
  evaluation.behind = behind;
  try {
    const result = await runSimulation(options, (r) => seen.push(r));
    return { result, seen };
  } finally {
    evaluation.behind = true;
  }
}

test('evaluated behind training (2 workers), a run gives the records and model of one evaluated in step (1 worker)', async () => {
  const inStep = await run({ ...base, workers: 1 }, false);
  const behind = await run({ ...base, workers: 2 });
  assert.equal(behind.result.modelSha256, inStep.result.modelSha256);
  assert.deepEqual(behind.result.rounds.map(timeless), inStep.result.rounds.map(timeless));
  assert.deepEqual(
    behind.seen.map((r) => r.round),
    [1, 2, 3, 4],
    'every record reported once, in order',
  );
  assert.deepEqual(behind.seen.map(timeless), inStep.seen.map(timeless));
});

test("a run evaluated behind that reaches its target stops at that round, with that round's model", async () => {
  const free = await run({ ...base, workers: 1 }, false);
  const acc = free.result.rounds.map((r) => r.testAccuracy);
  // The first round after round 1 whose accuracy beats every earlier one: a target only it and later rounds reach.
  const k = acc.findIndex((a, i) => i >= 1 && i < acc.length - 1 && a > Math.max(...acc.slice(0, i)));
  assert.ok(k > 0, `no round to stop at in ${acc.join(', ')}`);
  const target = { ...base, targetAccuracy: acc[k] };
  const inStep = await run({ ...target, workers: 1 }, false);
  const behind = await run({ ...target, workers: 2 });
  for (const { result, seen } of [inStep, behind]) {
    assert.equal(result.reachedTarget, true);
    assert.equal(result.rounds.length, k + 1);
    assert.deepEqual(
      seen.map((r) => r.round),
      result.rounds.map((r) => r.round),
    );
  }
  assert.equal(behind.result.modelSha256, inStep.result.modelSha256);
  assert.deepEqual(behind.result.rounds.map(timeless), inStep.result.rounds.map(timeless));
  // The round trained behind the target and dropped is not in the run's totals.
  assert.equal(behind.result.bytesSent, inStep.result.bytesSent);
  assert.equal(behind.result.bytesReceived, inStep.result.bytesReceived);
});
