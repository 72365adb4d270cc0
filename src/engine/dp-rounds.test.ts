import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RoundEngine, type EngineOptions } from './round-engine.js';
import { Strategy, parseStrategy } from './strategy.js';
import { PrivacyLedger } from './privacy-ledger.js';
import { CONFIG_WORDING, runIssues } from './run-rules.js';
import { Rng } from '../core/rng.js';
import { computeRdp, DEFAULT_ORDERS, getPrivacySpent } from '../core/rdp.js';
import { discreteGaussianVector } from '../core/discrete-gaussian.js';
import { GRID_BITS, gridNoiseSteps, preRoundingClip } from '../core/dp-grid.js';
import { poissonSample } from '../core/sampling.js';
import { deltas } from '../core/aggregate.js';
import { EngineTrainer } from '../model/engine-trainer.js';
import { asDenseNet } from '../model/spec.js';
import { jsKernels } from '../nn/kernels-js.js';
import { healthyNodes, toyFederation, toyLayout, toySpec } from '../../test/support/toy-federation.js';

const SGD = { name: 'sgd' as const, lr: 0.1 };

function dpEngine(strategy: Strategy, ids: number[], overrides: Partial<EngineOptions> = {}) {
  const { transport, initial, centralEval } = toyFederation(healthyNodes(4), ids);
  return new RoundEngine({
    layout: toyLayout,
    strategy,
    transport,
    initial,
    seed: 3,
    rounds: 1,
    fraction: 1,
    minNodes: 1,
    evalFraction: 0,
    local: { epochs: 1, batchSize: 16, optimizer: SGD },
    centralEval,
    ...overrides,
  });
}

/**
 * The attack: a node knows the run seed (GET /v1/runs/:id shows it) and the global models before and after a
 * round. It regenerates the seeded noise and subtracts it from the scaled model change, which leaves the exact
 * (grid-rounded) sum of the clipped updates when the noise came from the seed.
 */
function recoverClippedSum(
  before: Float32Array,
  after: Float32Array,
  clip: number,
  noise: number,
  expected: number,
  seed: number,
): Float64Array {
  const step = clip / 2 ** GRID_BITS;
  const regenerated = discreteGaussianVector(new Rng(seed).fork('dp-noise:1'), gridNoiseSteps(noise), before.length);
  return Float64Array.from(before, (b, j) => ((after[j] - b) * expected) / step - regenerated[j]);
}

/** The true grid-rounded sum of the clipped updates of round 1, from the nodes' own (seeded) training. */
async function trueClippedSum(initial: Float32Array, ids: number[], clip: number): Promise<Float64Array> {
  const trainer = new EngineTrainer(asDenseNet(toySpec)!, jsKernels);
  const nodes = healthyNodes(4);
  const locals = [];
  for (const id of ids) {
    const seed = RoundEngine.nodeSeed(3, 1, id);
    locals.push(
      (
        await trainer.train(initial, nodes.get(id)!.train, {
          epochs: 1,
          batchSize: 16,
          optimizer: SGD,
          proxMu: 0,
          seed,
        })
      ).weights,
    );
  }
  const step = clip / 2 ** GRID_BITS;
  const inner = preRoundingClip(clip, initial.length);
  const sum = new Float64Array(initial.length);
  for (const d of deltas(initial, locals)) {
    const norm = Math.hypot(...d);
    d.forEach((x, j) => (sum[j] += Math.round((x * Math.min(1, inner / norm)) / step)));
  }
  return sum;
}

const maxGap = (a: Float64Array, b: Float64Array) => a.reduce((m, x, j) => Math.max(m, Math.abs(x - b[j])), 0);

test('the seed regenerates seeded DP noise (the attack works), but not CSPRNG noise, the deployment source', async () => {
  const ids = [0, 1, 2, 3];
  const spec = 'dpfedavg:clip=0.5,noise=1';
  const { initial } = toyFederation(healthyNodes(4), ids);
  const truth = await trueClippedSum(initial, ids, 0.5);
  const seeded = await dpEngine(new Strategy(parseStrategy(spec)), ids, { dpNoise: 'seeded' }).run();
  assert.equal(seeded.rounds[0].noiseSource, 'seeded');
  const fromSeeded = recoverClippedSum(initial, seeded.weights, 0.5, 1, 4, 3);
  // Seeded: exact to float32 rounding of the global model (far below one grid step).
  assert.ok(
    maxGap(fromSeeded, truth) < 0.05,
    `seeded: the sum is recovered to ${maxGap(fromSeeded, truth)} grid steps`,
  );

  const deployed = await dpEngine(new Strategy(parseStrategy(spec)), ids).run();
  assert.equal(deployed.rounds[0].noiseSource, 'csprng');
  const fromDeployed = recoverClippedSum(initial, deployed.weights, 0.5, 1, 4, 3);
  // CSPRNG: what is left is the truth plus the difference of two independent noises (stddev sqrt(2) 2^16 steps).
  const gap = maxGap(fromDeployed, truth);
  assert.ok(gap > 2 ** GRID_BITS, `csprng: the attack should be off by about the noise, got ${gap} grid steps`);
});

test('accounting: the Opacus reference, 2250 steps at sigma 1.5, q 0.04, delta 1e-5 give epsilon 7.3291', () => {
  const ledger = new PrivacyLedger(1.5, 1e-5);
  for (let k = 0; k < 2250; k++) ledger.recordRound(0.04);
  assert.ok(Math.abs(ledger.spent().epsilon - 7.3291) < 5e-4, `epsilon ${ledger.spent().epsilon}`);
  assert.equal(ledger.spent().rounds, 2250);
});

test('accounting: 50 rounds at q 0.5 then one at q 0.1 cost what a step-by-step accountant says (27.88, not 5.93)', () => {
  const ledger = new PrivacyLedger(1, 1e-5);
  const rates = [...Array(50).fill(0.5), 0.1];
  for (const q of rates) ledger.recordRound(q);
  // Independent: the RDP of each step computed on its own, summed order by order, then converted.
  const total = DEFAULT_ORDERS.map(() => 0);
  for (const q of rates) computeRdp(q, 1, 1, DEFAULT_ORDERS).forEach((r, k) => (total[k] += r));
  const independent = getPrivacySpent(DEFAULT_ORDERS, total, 1e-5).epsilon;
  assert.ok(Math.abs(ledger.spent().epsilon - independent) < 1e-9 * independent);
  assert.ok(Math.abs(independent - 27.88) < 0.005, `independent epsilon ${independent}`);
});

test('accounting: a q = 0 round adds nothing and resets nothing', () => {
  const ledger = new PrivacyLedger(1, 1e-5);
  for (let k = 0; k < 50; k++) ledger.recordRound(0.5);
  const before = ledger.spent();
  ledger.recordRound(0);
  assert.equal(ledger.spent().epsilon, before.epsilon);
  assert.equal(ledger.spent().rounds, 50);
  assert.equal(ledger.spent().accounted, 51);
  assert.throws(() => ledger.recordRound(1.5), /sampling rate must be in \[0, 1\], got 1.5/);
});

test('every round steps the ledger with its own rate; rounds that fuse nothing are charged 0', async () => {
  // Nodes 5 and 6 are not hosted: with minNodes 3, a round fuses only if 3 hosted nodes are sampled.
  const strategy = new Strategy(parseStrategy('dpfedavg:clip=1,noise=0.8'));
  const run = await dpEngine(strategy, [0, 1, 2, 3, 5, 6], {
    rounds: 8,
    fraction: 0.6,
    minNodes: 3,
    dpNoise: 'seeded',
  }).run();
  const rates = run.rounds.map((r) => r.samplingRate!);
  assert.deepEqual(
    rates,
    run.rounds.map((r) => (r.fused ? 0.6 : 0)),
  );
  assert.ok(rates.includes(0) && rates.includes(0.6), `want both kinds of round: ${rates.join(', ')}`);
  const check = new PrivacyLedger(0.8, 1e-5);
  run.rounds.forEach((r) => {
    check.recordRound(r.samplingRate!);
    assert.equal(r.epsilon, check.spent().epsilon, `round ${r.round}`);
  });
});

test('the ledger rides in the checkpoint: a resumed strategy continues the same epsilon; an old checkpoint is charged q = 1', async () => {
  const spec = parseStrategy('dpfedavg:clip=1,noise=0.8');
  const first = new Strategy(spec);
  for (const q of [0.3, 0.3, 0, 0.5]) first.recordPrivacyRound(q);
  const extraState = JSON.parse(JSON.stringify(first.extraState())) as Record<string, unknown>;
  const resumed = new Strategy(spec, first.state(), extraState);
  assert.deepEqual(resumed.privacySpent(), first.privacySpent());
  resumed.recordPrivacyRound(0.3);
  first.recordPrivacyRound(0.3);
  assert.deepEqual(resumed.privacySpent(), first.privacySpent());
  // A checkpoint of 4 rounds without a ledger: the engine charges the 4 rounds at q = 1, the most they can cost.
  const legacy = new Strategy(spec, first.state(), {});
  dpEngine(legacy, [0, 1], { startRound: 5, rounds: 5 });
  const worst = new PrivacyLedger(0.8, 1e-5);
  for (let k = 0; k < 4; k++) worst.recordRound(1);
  assert.deepEqual(legacy.privacySpent(), worst.spent());
  assert.throws(
    () => new Strategy(spec, undefined, { privacyLedger: { kind: 'other' } }),
    /not an RDP accountant state/,
  );
});

test('over-selection (and secure aggregation) with dpfedavg is refused, in configs and by the engine', () => {
  const issues = runIssues(
    { secagg: false, compression: 'none', mode: 'sync', overSelect: 0.3, strategy: 'dpfedavg:clip=1,noise=1' },
    CONFIG_WORDING,
    2,
  );
  assert.deepEqual(
    issues.map((i) => i.path),
    [['overSelect']],
  );
  assert.match(issues[0].message, /Poisson sampling .* leave it out/);
  assert.deepEqual(
    runIssues(
      { secagg: false, compression: 'none', mode: 'sync', overSelect: 0.3, strategy: 'fedavg' },
      CONFIG_WORDING,
      2,
    ),
    [],
  );
  assert.throws(
    () => dpEngine(new Strategy(parseStrategy('dpfedavg:clip=1,noise=1')), [0, 1], { overSelect: 0.5 }),
    /does not combine with over-selection/,
  );
  assert.throws(
    () =>
      dpEngine(new Strategy(parseStrategy('dpfedavg:clip=1,noise=1')), [0, 1], { secure: { clip: 4, maxWeight: 100 } }),
    /does not combine with secure aggregation/,
  );
});

test('Poisson sampling: each node in with probability q, independently; the sample size varies', () => {
  const ids = Array.from({ length: 50 }, (_, i) => i);
  const rng = new Rng(8);
  const hits = new Array(50).fill(0);
  const sizes = new Set<number>();
  const rounds = 4000;
  for (let r = 0; r < rounds; r++) {
    const s = poissonSample(ids, 0.2, rng);
    sizes.add(s.length);
    for (const id of s) hits[id]++;
    assert.deepEqual(
      s,
      [...s].sort((a, b) => a - b),
    );
  }
  const se = Math.sqrt((0.2 * 0.8) / rounds);
  for (const h of hits) assert.ok(Math.abs(h / rounds - 0.2) < 5 * se, `frequency ${h / rounds}`);
  assert.ok(sizes.size > 5, 'the sample size is random');
  assert.throws(() => poissonSample(ids, 0, rng), /rate must be in \(0, 1\], got 0/);
});

test('DP-FedAvg divides by the fixed q N, not by the nodes that answered', () => {
  const strategy = new Strategy(parseStrategy('dpfedavg:clip=10,noise=0'));
  const g = new Float32Array(2);
  const result = {
    nodeId: 0,
    numExamples: 5,
    steps: 1,
    vector: new Float32Array([1, 0]),
    metrics: { loss: 0, accuracy: 0 },
  };
  const out = strategy.aggregateTrain(g, [result], {
    round: 1,
    seed: 1,
    sampled: 1,
    population: 10,
    expectedClients: 4,
    noise: 'seeded',
  });
  assert.ok(Math.abs(out[0] - 0.25) < 1e-4, `mean ${out[0]}`);
});
