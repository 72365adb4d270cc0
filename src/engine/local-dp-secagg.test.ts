/**
 * Local DP composes with secure aggregation: nodes noise their own updates before masking, so the coordinator's
 * unmasked sum is the sum of already-private updates (the per-coordinate secagg clip after the noise is
 * post-processing). Checked with the toy federation: the secure round's fused model equals plaintext FedAvg over
 * the same locally noised updates, and differs from FedAvg over the noise-free ones.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RoundEngine } from './round-engine.js';
import { Strategy, parseStrategy, type TrainResult } from './strategy.js';
import { decodeMessage, encodeTrainRequest } from './messages.js';
import { DEFAULT_SECAGG } from './secure-round.js';
import { NodeHost } from '../node/host.js';
import { LocalPrivacy } from '../node/local-privacy.js';
import { PrivacyLedger } from './privacy-ledger.js';
import { DirectTransport } from '../sim/direct.js';
import { simulationIdentities } from '../sim/sim-host.js';
import { EngineTrainer } from '../model/engine-trainer.js';
import { asDenseNet } from '../model/spec.js';
import { jsKernels } from '../nn/kernels-js.js';
import { healthyNodes, toyFederation, toyLayout, toySpec } from '../../test/support/toy-federation.js';

const SPEC = { clip: 0.5, noise: 0.2, delta: 1e-5 };
const local = { epochs: 1, batchSize: 16, optimizer: { name: 'sgd' as const, lr: 0.1 } };
const IDS = [0, 1, 2, 3];

function host(privacy?: LocalPrivacy): NodeHost {
  const secure = { identity: simulationIdentities(3, IDS.length) };
  return new NodeHost(
    toyLayout,
    new EngineTrainer(asDenseNet(toySpec)!, jsKernels),
    healthyNodes(4),
    undefined,
    secure,
    privacy,
  );
}

/** What each node sends in plaintext for round 1 (same node seed as the engine's, so the same training and noise). */
async function plainUpdates(h: NodeHost, global: Float32Array): Promise<TrainResult[]> {
  return Promise.all(
    IDS.map(async (nodeId) => {
      const config = { ...local, proxMu: 0, seed: RoundEngine.nodeSeed(3, 1, nodeId) };
      const msg = decodeMessage(
        toyLayout,
        await h.handle(encodeTrainRequest(toyLayout, { round: 1, nodeId, mode: 'weights', config, weights: global })),
      );
      const r = (msg as Extract<typeof msg, { type: 'train_result' }>).reply;
      return { nodeId, numExamples: r.numExamples, steps: r.steps, vector: r.vector, metrics: r.metrics };
    }),
  );
}

test('local DP + secure aggregation: the unmasked sum is the sum of the locally noised updates', async () => {
  const { initial } = toyFederation(healthyNodes(4), IDS);
  const privacy = new LocalPrivacy(SPEC, 'seeded');
  const engine = new RoundEngine({
    layout: toyLayout,
    strategy: new Strategy(parseStrategy('fedavg')),
    transport: new DirectTransport(host(privacy), IDS),
    initial,
    seed: 3,
    rounds: 1,
    fraction: 1,
    minNodes: 2,
    evalFraction: 0,
    local,
    secure: DEFAULT_SECAGG,
  });
  const run = await engine.run();
  assert.deepEqual(run.rounds[0].contributed, IDS);
  const fedavg = new Strategy(parseStrategy('fedavg'));
  const noised = fedavg.aggregateTrain(initial, await plainUpdates(host(new LocalPrivacy(SPEC, 'seeded')), initial));
  const clean = fedavg.aggregateTrain(initial, await plainUpdates(host(), initial));
  const gap = (a: Float32Array, b: Float32Array) => a.reduce((m, x, j) => Math.max(m, Math.abs(x - b[j])), 0);
  // Secure aggregation's fixed-point rounding is ~1e-5 here; the local noise (stddev 0.1 / sqrt(4) on the mean) is far larger.
  assert.ok(
    gap(run.weights, noised) < 1e-4,
    `secure vs plaintext over the noised updates: ${gap(run.weights, noised)}`,
  );
  assert.ok(gap(run.weights, clean) > 0.05, `the noise must be there: ${gap(run.weights, clean)}`);
  // Each node has paid for one update released whole: one step at q = 1.
  const one = new PrivacyLedger(SPEC.noise, SPEC.delta);
  one.recordRound(1);
  for (const id of IDS) assert.equal(privacy.epsilon(id), one.spent().epsilon);
});

test('local DP noise from the CSPRNG differs on every update; a node with local DP refuses gradient rounds', async () => {
  const { initial } = toyFederation(healthyNodes(4), IDS);
  const a = await plainUpdates(host(new LocalPrivacy(SPEC, 'csprng')), initial);
  const b = await plainUpdates(host(new LocalPrivacy(SPEC, 'csprng')), initial);
  assert.notDeepEqual(a[0].vector, b[0].vector);
  const h = host(new LocalPrivacy(SPEC, 'csprng'));
  const config = { ...local, proxMu: 0, seed: 1 };
  const reply = decodeMessage(
    toyLayout,
    await h.handle(encodeTrainRequest(toyLayout, { round: 1, nodeId: 0, mode: 'gradient', config, weights: initial })),
  );
  assert.equal(reply.type, 'error');
  assert.match((reply as { message?: string }).message ?? JSON.stringify(reply), /local DP noises model updates/);
});
