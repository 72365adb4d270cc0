import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RoundEngine, type RoundRecord } from './round-engine.js';
import { Strategy, parseStrategy } from './strategy.js';
import { healthyNodes, toyFederation, toyLayout } from '../../test/support/toy-federation.js';

function engine(
  strategy: string,
  behind: boolean,
  overrides: Partial<ConstructorParameters<typeof RoundEngine>[0]> = {},
) {
  const ids = [0, 1, 2, 3, 4];
  const { transport, initial, centralEval } = toyFederation(healthyNodes(5), ids);
  const seen: number[] = [];
  const run = new RoundEngine({
    layout: toyLayout,
    strategy: new Strategy(parseStrategy(strategy)),
    transport,
    initial,
    seed: 5,
    rounds: 4,
    fraction: 1,
    minNodes: 1,
    evalFraction: 0.5,
    local: { epochs: 1, batchSize: 16, optimizer: { name: 'sgd', lr: 0.05 } },
    centralEval,
    evaluateBehind: behind,
    dpNoise: 'seeded',
    onRound: (r) => void seen.push(r.round),
    ...overrides,
  });
  return { run, seen };
}

const timeless = ({ seconds, ...rest }: RoundRecord) => (void seconds, rest);

test('evaluating behind training gives the records, order and model of evaluating in step, for every kind of fusion', async () => {
  for (const strategy of [
    'fedavg',
    'fedavgm',
    'fedadam:eta=0.01',
    'fedmedian',
    'krum:f=1',
    'dpfedavg:clip=1,noise=0.5',
  ]) {
    const inStep = engine(strategy, false);
    const behind = engine(strategy, true);
    const a = await inStep.run.run();
    const b = await behind.run.run();
    assert.deepEqual(Buffer.from(b.weights.buffer), Buffer.from(a.weights.buffer), strategy);
    assert.deepEqual(b.rounds.map(timeless), a.rounds.map(timeless), strategy);
    assert.deepEqual(behind.seen, [1, 2, 3, 4], strategy);
  }
});

test('evaluating behind, a target reached stops the run at that round with its model; the next round is dropped', async () => {
  const free = await engine('fedavg', false).run.run();
  const acc = free.rounds.map((r) => r.testAccuracy);
  const target = Math.max(acc[1], acc[0]) + 1e-9 <= acc[2] ? acc[2] : acc[1];
  const stopAt = acc.findIndex((a) => a >= target);
  assert.ok(stopAt >= 1 && stopAt < 3, `accuracies ${acc.join(', ')}`);
  const a = await engine('fedavg', false, { targetAccuracy: target }).run.run();
  const b = engine('fedavg', true, { targetAccuracy: target });
  const r = await b.run.run();
  assert.equal(r.reachedTarget, true);
  assert.equal(r.rounds.length, stopAt + 1);
  assert.deepEqual(
    b.seen,
    r.rounds.map((x) => x.round),
  );
  assert.deepEqual(Buffer.from(r.weights.buffer), Buffer.from(a.weights.buffer));
  assert.deepEqual(r.rounds.map(timeless), a.rounds.map(timeless));
});

test('evaluating behind, a central evaluation that fails fails the run (after the round trained meanwhile settles)', async () => {
  let calls = 0;
  const failing = engine('fedavg', true, {
    centralEval: async () => {
      calls++;
      throw new Error('evaluation broke');
    },
  });
  await assert.rejects(failing.run.run(), /evaluation broke/);
  assert.equal(calls, 1);
  assert.deepEqual(failing.seen, []);
});
