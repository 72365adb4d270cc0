import { test } from 'node:test';
import assert from 'node:assert/strict';
import { minUpdates, parseStrategy, Strategy, type TrainResult } from './strategy.js';
import { applyDelta, averageDelta, deltas, fedNova, weightedAverage } from '../core/aggregate.js';
import { bulyan, clipUpdates, coordinateMedian, krum, multiKrum, trimmedMean } from '../core/robust.js';
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
    ['fedfoo', /unknown strategy/],
    ['fedprox', /needs mu > 0/],
    ['fedprox:-1', /mu must be a number >= 0/],
    ['fedprox:abc', /mu must be a number/],
    ['fedadam:eta=x', /eta must be a number/],
    ['fedadam:beta=0.9', /beta/],
    ['fedavg:', /empty parameter/],
    ['fedavg:lr', /key=value/],
    ['krum', /krum needs f, the number of Byzantine nodes to tolerate, e\.g\. krum:f=2/],
    ['multikrum:m=3', /multikrum needs f/],
    ['bulyan:f=-1', /f must be a whole number >= 0, got '-1'/],
    ['krum:f=1.5', /f must be a whole number/],
    ['krum:f=', /f must be a whole number/],
    ['multikrum:f=1,m=0', /m must be a whole number >= 1/],
    ['fedtrimmedavg:beta=0.5', /beta \(fraction trimmed from each side\) must be in \[0, 0\.5\)/],
    ['fedtrimmedavg:beta=-0.1', /beta must be a number >= 0/],
    ['fedavg:clip=0', /clip must be a number > 0/],
    ['fedavg:clip=x', /clip must be a number/],
    ['fednova:clip=1', /clip works with fedavg.*not fednova/],
    ['fedsgd:clip=1', /not fedsgd/],
    ['fedavg:f=1', /'f' applies to krum, multikrum and bulyan only/],
    ['krum:f=1,m=2', /'m' applies to multikrum only/],
    ['fedmedian:beta=0.1', /unknown hyper-parameter 'beta'/],
  ] as const) {
    assert.throws(
      () => parseStrategy(text),
      (e: Error) => re.test(e.message) && !e.message.includes('\n'),
      text,
    );
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
  assert.deepEqual(
    fedavg,
    makeServerOptimizer('fedavg').step(
      g,
      averageDelta(
        g,
        sorted.map((r) => r.vector),
        [10, 30],
      ),
    ),
  );
  const nova = new Strategy(parseStrategy('fednova')).aggregateTrain(g, results);
  assert.deepEqual(
    nova,
    fedNova(
      g,
      sorted.map((r) => r.vector),
      [10, 30],
      [1, 3],
    ),
  );
  const sgd = new Strategy(parseStrategy('fedsgd:lr=0.5')).aggregateTrain(g, results);
  const avgGrad = weightedAverage(
    sorted.map((r) => r.vector),
    [10, 30],
  );
  assert.deepEqual(
    sgd,
    Float32Array.from(g, (x, i) => Math.fround(x - 0.5 * avgGrad[i])),
  );
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
  const m = s.aggregateEvaluate([
    { nodeId: 0, numExamples: 10, loss: 1, accuracy: 1 },
    { nodeId: 1, numExamples: 30, loss: 3, accuracy: 0 },
  ]);
  assert.deepEqual(m, { loss: 2.5, accuracy: 0.25, numExamples: 40 });
});

test('parses the robust strategies and clip', () => {
  assert.deepEqual(parseStrategy('fedmedian'), { name: 'fedmedian', proxMu: 0, serverOpt: 'fedavg', hyper: {} });
  assert.equal(parseStrategy('fedtrimmedavg').beta, 0.2);
  assert.equal(parseStrategy('FedTrimmedAvg:beta=0.1').beta, 0.1);
  assert.equal(parseStrategy('krum:f=2').f, 2);
  assert.deepEqual([parseStrategy('multikrum:f=2,m=5').f, parseStrategy('multikrum:f=2,m=5').m], [2, 5]);
  assert.equal(parseStrategy('multikrum:f=2').m, undefined, 'm defaults to n - f at fusion time');
  assert.equal(parseStrategy('bulyan:f=0').f, 0);
  assert.deepEqual(parseStrategy('fedavg:clip=5'), {
    name: 'fedavg',
    proxMu: 0,
    serverOpt: 'fedavg',
    hyper: {},
    clip: 5,
  });
  assert.deepEqual([parseStrategy('fedprox:0.01,clip=2').proxMu, parseStrategy('fedprox:0.01,clip=2').clip], [0.01, 2]);
  assert.equal(parseStrategy('krum:f=1,clip=3').clip, 3);
  assert.deepEqual(parseStrategy('fedmedian:eta=0.5').hyper, { eta: 0.5 });
  assert.deepEqual(
    ['fedavg', 'fedmedian', 'fedtrimmedavg', 'krum:f=2', 'multikrum:f=2', 'multikrum:f=1,m=9', 'bulyan:f=4'].map((t) =>
      minUpdates(parseStrategy(t)),
    ),
    [1, 1, 1, 7, 7, 9, 19],
  );
});

/** 6 honest nodes whose locals sit near global + [1, -1], and node 3 sending a huge update. */
const g2 = new Float32Array([0.5, 0.25]);
const attacked: TrainResult[] = [0, 1, 2, 3, 4, 5, 6].map((nodeId) => ({
  nodeId,
  numExamples: 10 + nodeId,
  steps: 1,
  metrics: { loss: 1, accuracy: 0.5 },
  vector:
    nodeId === 3
      ? new Float32Array([-1000, 1000])
      : new Float32Array([g2[0] + 1 + nodeId / 100, g2[1] - 1 - nodeId / 50]),
}));

test('robust strategies fuse the deltas with the core rule of the same name and apply them to the global model', () => {
  const shuffled = [attacked[4], attacked[0], attacked[6], attacked[3], attacked[1], attacked[5], attacked[2]];
  const ds = deltas(
    g2,
    attacked.map((r) => r.vector),
  );
  for (const [text, fuse] of [
    ['fedmedian', () => coordinateMedian(ds)],
    ['fedtrimmedavg', () => trimmedMean(ds, 0.2)],
    ['fedtrimmedavg:beta=0.3', () => trimmedMean(ds, 0.3)],
    ['krum:f=1', () => krum(ds, 1)],
    ['multikrum:f=2', () => multiKrum(ds, 2)],
    ['multikrum:f=1,m=3', () => multiKrum(ds, 1, 3)],
    ['bulyan:f=1', () => bulyan(ds, 1)],
    ['fedmedian:clip=5', () => coordinateMedian(clipUpdates(ds, 5))],
    ['krum:f=1,clip=5', () => krum(clipUpdates(ds, 5), 1)],
  ] as const) {
    const got = new Strategy(parseStrategy(text)).aggregateTrain(g2, shuffled);
    assert.deepEqual(got, applyDelta(g2, fuse()), text);
    // the attacker's [-1000, 1000] does not pull the model out of the honest range
    assert.ok(
      got[0] > g2[0] + 0.4 && got[0] < g2[0] + 1.1 && got[1] < g2[1] - 0.4 && got[1] > g2[1] - 1.2,
      `${text}: ${Array.from(got)}`,
    );
  }
  // the server step still applies: eta scales the fused delta
  assert.deepEqual(
    new Strategy(parseStrategy('fedmedian:eta=0.5')).aggregateTrain(g2, attacked),
    applyDelta(g2, coordinateMedian(ds), 0.5),
  );
  // plain FedAvg is dragged far away by the single attacker
  const avg = new Strategy(parseStrategy('fedavg')).aggregateTrain(g2, attacked);
  assert.ok(avg[0] < -100 && avg[1] > 100, `fedavg: ${Array.from(avg)}`);
});

test('clip=NORM with the FedAvg family clips each delta, then takes the example-weighted mean', () => {
  const ds = deltas(
    g2,
    attacked.map((r) => r.vector),
  );
  const w = attacked.map((r) => r.numExamples);
  const clipped = new Strategy(parseStrategy('fedavg:clip=2')).aggregateTrain(g2, attacked);
  assert.deepEqual(clipped, applyDelta(g2, weightedAverage(clipUpdates(ds, 2), w)));
  assert.ok(
    Math.hypot(clipped[0] - g2[0], clipped[1] - g2[1]) <= 2 * (1 + 1e-6),
    'one round moves the model by at most the clip norm',
  );
  const adam = new Strategy(parseStrategy('fedadam:eta=0.1,clip=2'));
  assert.deepEqual(
    adam.aggregateTrain(g2, attacked),
    makeServerOptimizer('fedadam', { eta: 0.1 }).step(g2, weightedAverage(clipUpdates(ds, 2), w)),
  );
  // a large bound changes nothing but float rounding: the FedAvg delta path without clip is untouched
  const loose = new Strategy(parseStrategy('fedavg:clip=1e9')).aggregateTrain(g2, attacked);
  const plain = new Strategy(parseStrategy('fedavg')).aggregateTrain(g2, attacked);
  loose.forEach((x, i) => assert.ok(Math.abs(x - plain[i]) <= 1e-3 * Math.abs(plain[i]), `${x} vs ${plain[i]}`));
});

test('a round with too few updates for the robust rule fails with a clear error', () => {
  assert.throws(
    () => new Strategy(parseStrategy('krum:f=2')).aggregateTrain(g2, attacked.slice(0, 6)),
    /krum with f = 2 needs at least 7 updates in a round, got 6/,
  );
  assert.throws(
    () => new Strategy(parseStrategy('bulyan:f=1')).aggregateTrain(g2, attacked.slice(0, 6)),
    /bulyan with f = 1 needs at least 7 updates in a round, got 6/,
  );
  assert.throws(
    () => new Strategy(parseStrategy('multikrum:f=0,m=8')).aggregateTrain(g2, attacked),
    /multikrum needs at least 8 updates in a round, got 7/,
  );
  assert.deepEqual(
    new Strategy(parseStrategy('fedmedian')).aggregateTrain(g2, attacked.slice(0, 1)),
    attacked[0].vector,
  );
});

test('dpfedavg: parses clip/noise/delta, clips and noises with a seeded stream, and accounts privacy', async () => {
  const { clipUpdates } = await import('../core/robust.js');
  const { computeRdp, getPrivacySpent, DEFAULT_ORDERS } = await import('../core/rdp.js');
  assert.throws(() => parseStrategy('dpfedavg'), /needs clip and noise/);
  assert.throws(() => parseStrategy('dpfedavg:clip=1,noise=1,delta=2'), /delta must be in/);
  const cfg = parseStrategy('dpfedavg:clip=0.5,noise=0');
  assert.equal(cfg.delta, 1e-5);
  const g0 = new Float32Array([0, 0, 0]);
  const rs = [
    { nodeId: 0, numExamples: 10, steps: 1, vector: new Float32Array([3, 4, 0]), metrics: { loss: 0, accuracy: 0 } },
    { nodeId: 1, numExamples: 90, steps: 1, vector: new Float32Array([0.1, 0, 0]), metrics: { loss: 0, accuracy: 0 } },
  ];
  const ctx = { round: 1, seed: 1, sampled: 2, population: 10, noise: 'seeded' as const };
  // noise 0: the unweighted mean of the clipped updates, rounded to the grid (clip norm / 2^16 steps)
  const clipped = clipUpdates(
    rs.map((r) => r.vector),
    0.5,
  );
  const expected = Float32Array.from(clipped[0], (x, i) => (x + clipped[1][i]) / 2);
  const got = new Strategy(cfg).aggregateTrain(g0, rs, ctx);
  got.forEach((x, i) => assert.ok(Math.abs(x - expected[i]) < 2e-5, `${x} vs ${expected[i]}`));
  const noisy = new Strategy(parseStrategy('dpfedavg:clip=0.5,noise=1'));
  const a = noisy.aggregateTrain(g0, rs, ctx);
  assert.deepEqual(
    a,
    new Strategy(parseStrategy('dpfedavg:clip=0.5,noise=1')).aggregateTrain(g0, rs, ctx),
    'seeded noise',
  );
  assert.notDeepEqual(
    a,
    new Strategy(parseStrategy('dpfedavg:clip=0.5,noise=1')).aggregateTrain(g0, rs, { ...ctx, round: 2 }),
  );
  assert.notDeepEqual(
    noisy.aggregateTrain(g0, rs, { ...ctx, noise: 'csprng' }),
    noisy.aggregateTrain(g0, rs, { ...ctx, noise: 'csprng' }),
    'CSPRNG noise',
  );
  assert.throws(() => noisy.aggregateTrain(g0, rs), /round context/);
  for (let k = 0; k < 5; k++) noisy.recordPrivacyRound(0.2);
  const p = noisy.privacySpent()!;
  assert.equal(p.epsilon, getPrivacySpent(DEFAULT_ORDERS, computeRdp(0.2, 1, 5, DEFAULT_ORDERS), 1e-5).epsilon);
  noisy.recordPrivacyRound(0.2);
  assert.ok(noisy.privacySpent()!.epsilon > p.epsilon);
  assert.equal(new Strategy(parseStrategy('fedavg')).privacySpent(), null);
});
