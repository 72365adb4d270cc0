import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseStrategy, Strategy } from './strategy.js';
import { averageDelta, fedNova, weightedAverage } from '../core/aggregate.js';
import { makeServerOptimizer } from '../core/server-opt.js';

test('parses names, positional mu and key=value parameters', () => {
  assert.deepEqual(parseStrategy('fedavg'), { name: 'fedavg', proxMu: 0, serverOpt: 'fedavg', hyper: {} });
  assert.equal(parseStrategy('fedprox:0.01').proxMu, 0.01);
  assert.equal(parseStrategy('fedprox:mu=0.5').proxMu, 0.5);
  assert.deepEqual(parseStrategy('fedadam:eta=0.01,tau=0.001').hyper, { eta: 0.01, tau: 0.001 });
  assert.equal(parseStrategy('fedsgd:adam,lr=0.001').serverOpt, 'adam');
  assert.equal(parseStrategy('FedAvgM').serverOpt, 'fedavgm');
});

test('rejects bad strategy text with a one-line reason', () => {
  for (const [text, re] of [
    ['fedfoo', /unknown strategy/], ['fedprox', /needs mu > 0/], ['fedprox:-1', /mu must be a number >= 0/],
    ['fedprox:abc', /mu must be a number/], ['fedadam:eta=x', /eta must be a number/], ['fedadam:beta=0.9', /beta/],
    ['fedavg:', /empty parameter/], ['fedavg:lr', /key=value/],
  ] as const) {
    assert.throws(() => parseStrategy(text), (e: Error) => re.test(e.message) && !e.message.includes('\n'), text);
  }
});

const g = new Float32Array([1, 2, 3]);
const results = [
  { nodeId: 2, numExamples: 30, steps: 3, vector: new Float32Array([2, 2, 2]), metrics: { loss: 1, accuracy: 0.5 } },
  { nodeId: 0, numExamples: 10, steps: 1, vector: new Float32Array([0, 4, 1]), metrics: { loss: 2, accuracy: 0.25 } },
];

test('aggregateTrain routes to the core fusion functions in node-id order', () => {
  const sorted = [results[1], results[0]];
  const fedavg = new Strategy(parseStrategy('fedavg')).aggregateTrain(g, results);
  assert.deepEqual(fedavg, makeServerOptimizer('fedavg').step(g, averageDelta(g, sorted.map((r) => r.vector), [10, 30])));
  const nova = new Strategy(parseStrategy('fednova')).aggregateTrain(g, results);
  assert.deepEqual(nova, fedNova(g, sorted.map((r) => r.vector), [10, 30], [1, 3]));
  const sgd = new Strategy(parseStrategy('fedsgd:lr=0.5')).aggregateTrain(g, results);
  const avgGrad = weightedAverage(sorted.map((r) => r.vector), [10, 30]);
  assert.deepEqual(sgd, Float32Array.from(g, (x, i) => Math.fround(x - 0.5 * avgGrad[i])));
});

test('stateful server optimizers carry state across rounds and restore exactly', () => {
  const a = new Strategy(parseStrategy('fedadam:eta=0.1'));
  const w1 = a.aggregateTrain(g, results);
  const saved = a.state();
  const w2 = a.aggregateTrain(w1, results);
  const b = new Strategy(parseStrategy('fedadam:eta=0.1'), saved);
  assert.deepEqual(b.aggregateTrain(w1, results), w2);
});

test('aggregateEvaluate weights metrics by examples', () => {
  const s = new Strategy(parseStrategy('fedavg'));
  const m = s.aggregateEvaluate([{ nodeId: 0, numExamples: 10, loss: 1, accuracy: 1 }, { nodeId: 1, numExamples: 30, loss: 3, accuracy: 0 }]);
  assert.deepEqual(m, { loss: 2.5, accuracy: 0.25, numExamples: 40 });
});
