import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Strategy, parseStrategy } from '../strategy.js';
import { runIssues, FLAG_WORDING } from '../run-rules.js';
import type { LocalData } from '../../node/host.js';
import { toyFederation } from '../../../test/support/toy-federation.js';
import { engine, LR, sha, skewedNodes } from '../../../test/support/skewed-nodes.js';

/**
 * FedDyn in plain float64 loops (Acar et al. 2021, Algorithm 1), full-batch local gradient descent on
 * L_i(w) - <g_i, w> + alpha/2 ||w - x||^2, every node every round (so the uniform mean is over all N).
 */
async function naiveFeddyn(
  nodes: Map<number, LocalData>,
  rounds: number,
  epochs: number,
  alpha: number,
): Promise<Float32Array> {
  const { trainer, initial } = toyFederation(nodes, [...nodes.keys()]);
  const N = nodes.size;
  const x = Float64Array.from(initial);
  const h = new Float64Array(x.length);
  const gi = new Map([...nodes.keys()].map((id) => [id, new Float64Array(x.length)]));
  for (let t = 0; t < rounds; t++) {
    const sumY = new Float64Array(x.length);
    for (const [id, { train }] of nodes) {
      const y = Float64Array.from(x);
      const own = gi.get(id)!;
      for (let k = 0; k < epochs; k++) {
        const g = (await trainer.gradient(Float32Array.from(y), train, train.n)).gradient;
        for (let j = 0; j < y.length; j++) y[j] -= LR * (g[j] - own[j] + alpha * (y[j] - x[j]));
      }
      for (let j = 0; j < y.length; j++) {
        own[j] -= alpha * (y[j] - x[j]);
        h[j] -= (alpha / N) * (y[j] - x[j]);
        sumY[j] += y[j];
      }
    }
    for (let j = 0; j < x.length; j++) x[j] = sumY[j] / N - h[j] / alpha;
  }
  return Float32Array.from(x);
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let j = 0; j < a.length; j++) m = Math.max(m, Math.abs(a[j] - b[j]));
  return m;
}

test('FedDyn matches a naive float64 reference over 4 rounds of full-batch GD on 3 skewed nodes (|diff| <= 2e-5)', async () => {
  const nodes = skewedNodes([40, 70, 100]);
  const expected = await naiveFeddyn(nodes, 4, 3, 0.1);
  const r = await engine(nodes, 'feddyn:alpha=0.1', { rounds: 4, epochs: 3, batchSize: 1000 }).run();
  const diff = maxDiff(expected, r.weights);
  assert.ok(diff <= 2e-5, `max |diff| ${diff}`);
  // the node state and h matter: FedProx with mu = alpha (same proximal term, no linear term) lands elsewhere
  const prox = await engine(nodes, 'fedprox:0.1', { rounds: 4, epochs: 3, batchSize: 1000 }).run();
  assert.ok(maxDiff(prox.weights, r.weights) > 1e-3, 'FedDyn and FedProx should differ after round 1');
});

test('FedDyn is deterministic by seed and trains the toy problem', async () => {
  const run = (seed: number) =>
    engine(skewedNodes([60, 80, 100]), 'feddyn:0.01', { rounds: 3, epochs: 1, batchSize: 16, seed }).run();
  const [a, b, c] = [await run(1), await run(1), await run(2)];
  assert.equal(sha(a.weights), sha(b.weights));
  assert.notEqual(sha(a.weights), sha(c.weights));
  assert.ok(a.rounds.every((r) => r.fused && Number.isFinite(r.trainLoss)));
  assert.ok(a.rounds[2].trainAccuracy > 0.8, `train accuracy ${a.rounds[2].trainAccuracy}`);
});

test('FedDyn parameters: alpha defaults to 0.01, a bad alpha is refused, h survives the checkpoint', () => {
  assert.equal(parseStrategy('feddyn').proxMu, 0.01);
  assert.equal(parseStrategy('feddyn:0.1').proxMu, 0.1);
  assert.equal(parseStrategy('feddyn:alpha=0.5').localState, 'feddyn');
  assert.throws(() => parseStrategy('feddyn:alpha=0'), /feddyn needs alpha > 0/);
  assert.throws(() => parseStrategy('feddyn:alpha=big'), /alpha must be a number/);
  assert.throws(() => parseStrategy('fedavg:alpha=0.1'), /'alpha' applies to feddyn only/);
  const config = parseStrategy('feddyn:alpha=0.5');
  const s = new Strategy(config);
  const global = new Float32Array([1, 2, 3]);
  const results = [0, 1].map((nodeId) => ({
    nodeId,
    numExamples: 5,
    steps: 1,
    metrics: { loss: 1, accuracy: 0 },
    vector: global.map((v) => v + nodeId + 1),
  }));
  const next = s.aggregateTrain(global, results, { round: 1, seed: 1, sampled: 2, population: 4 });
  // h = -0.5/4 * (1 + 2) = -0.375; x = mean(y) - h / 0.5 = global + 1.5 + 0.75
  assert.deepEqual([...next], [1 + 2.25, 2 + 2.25, 3 + 2.25]);
  const resumed = new Strategy(config, s.state(), JSON.parse(JSON.stringify(s.extraState())));
  assert.deepEqual(
    resumed.aggregateTrain(next, results, { round: 2, seed: 1, sampled: 2, population: 4 }),
    s.aggregateTrain(next, results, { round: 2, seed: 1, sampled: 2, population: 4 }),
  );
});

test('combination rules refuse FedDyn with secure aggregation, compression and FedBuff', () => {
  const base = { strategy: 'feddyn', compression: 'none', secagg: false, mode: 'sync' as const };
  assert.deepEqual(runIssues(base, FLAG_WORDING, 4), []);
  assert.match(
    runIssues({ ...base, secagg: true }, FLAG_WORDING, 4)
      .map((i) => i.message)
      .join(),
    /'feddyn' needs the individual updates/,
  );
  assert.match(
    runIssues({ ...base, compression: 'int8' }, FLAG_WORDING, 4)
      .map((i) => i.message)
      .join(),
    /'feddyn' does not take compressed/,
  );
  assert.match(
    runIssues({ ...base, mode: 'async' }, FLAG_WORDING, 4)
      .map((i) => i.message)
      .join(),
    /fuses with FedBuff/,
  );
});
