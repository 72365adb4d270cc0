/**
 * Strategies whose nodes keep state between rounds give the same result on one worker thread or two: each node
 * stays on the worker that holds its state (SCAFFOLD's control variates, Ditto's personal model). Before nodes
 * were pinned, a node served by the other worker started from no state, and the model depended on --workers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSimulation } from '../src/sim/simulate.js';

const run = (strategy: string, workers: number) =>
  runSimulation({
    strategy,
    nodes: 8,
    fraction: 0.5,
    rounds: 3,
    limitTrain: 1600,
    limitTest: 200,
    validationFraction: 0.2,
    evalFraction: 1,
    seed: 1,
    workers,
  });

for (const strategy of ['scaffold', 'ditto']) {
  test(`${strategy}: the same model and personalised accuracy on 1 and 2 worker threads`, async () => {
    const [one, two] = [await run(strategy, 1), await run(strategy, 2)];
    assert.equal(two.modelSha256, one.modelSha256);
    const personal = (r: typeof one) => r.rounds.map((x) => x.personalizedAccuracyMean ?? null);
    assert.deepEqual(personal(two), personal(one));
    if (strategy === 'ditto') assert.ok(personal(one).at(-1)! > 0, 'Ditto reports personalised accuracy');
  });
}
