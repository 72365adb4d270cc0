import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RoundEngine } from './round-engine.js';
import { Strategy, parseStrategy } from './strategy.js';
import type { LocalData } from '../node/host.js';
import { Rng } from '../core/rng.js';
import { initialWeights, tensorSpecs, asDenseNet } from '../model/spec.js';
import { EngineTrainer } from '../model/engine-trainer.js';
import { jsKernels } from '../nn/kernels-js.js';
import { weightedAverage } from '../core/aggregate.js';
import {
  blobs,
  emptyData as empty,
  healthyNodes,
  toyFederation,
  toyLayout,
  toySpec as spec,
} from '../../test/support/toy-federation.js';

function setup(
  nodes: Map<number, LocalData>,
  ids: number[],
  strategy = 'fedavg',
  overrides: Partial<ConstructorParameters<typeof RoundEngine>[0]> = {},
) {
  const { transport, initial, centralEval } = toyFederation(nodes, ids);
  return new RoundEngine({
    layout: toyLayout,
    strategy: new Strategy(parseStrategy(strategy)),
    transport,
    initial,
    seed: 3,
    rounds: 3,
    fraction: 1,
    minNodes: 1,
    evalFraction: 1,
    local: { epochs: 1, batchSize: 16, optimizer: { name: 'adam', lr: 0.01 } },
    centralEval,
    ...overrides,
  });
}

test('federated training improves accuracy and records every round', async () => {
  const r = await setup(healthyNodes(4), [0, 1, 2, 3]).run();
  assert.equal(r.rounds.length, 3);
  assert.ok(r.rounds[2].testAccuracy > 0.9, `accuracy ${r.rounds[2].testAccuracy}`);
  for (const rec of r.rounds) {
    assert.deepEqual(rec.contributed, [0, 1, 2, 3]);
    assert.ok(rec.bytesSent > toyLayout.length && rec.bytesReceived > 0);
    assert.ok(Number.isFinite(rec.federatedAccuracy));
  }
});

test('the same seed gives bitwise the same model; another seed does not', async () => {
  const a = await setup(healthyNodes(3), [0, 1, 2]).run();
  const b = await setup(healthyNodes(3), [0, 1, 2]).run();
  assert.deepEqual(Buffer.from(a.weights.buffer), Buffer.from(b.weights.buffer));
  const c = await setup(healthyNodes(3), [0, 1, 2], 'fedavg', { seed: 4 }).run();
  assert.notDeepEqual(Buffer.from(a.weights.buffer), Buffer.from(c.weights.buffer));
});

test('failures arrive as data: a missing node and a NaN update are recorded, the round fuses the rest', async () => {
  const nodes = healthyNodes(3);
  const bad = blobs(200, 5);
  bad.x.fill(NaN);
  nodes.set(1, { train: bad, validation: blobs(10, 6) });
  const r = await setup(nodes, [0, 1, 2, 3]).run(); // node 3 is not hosted anywhere
  const first = r.rounds[0];
  assert.deepEqual(first.contributed, [0, 2]);
  assert.deepEqual(
    first.failures.map((f) => f.nodeId),
    [1, 3],
  );
  assert.match(first.failures[0].error, /non-finite/);
  assert.match(first.failures[1].error, /not hosted/);
  assert.ok(first.fused);
  assert.ok(r.rounds[2].testAccuracy > 0.85);
});

test('a round with fewer answers than minNodes is not fused and keeps the model', async () => {
  const nodes = healthyNodes(1);
  const initial = initialWeights(tensorSpecs(spec), new Rng(7));
  const r = await setup(nodes, [0, 5, 6], 'fedavg', { minNodes: 2, rounds: 1 }).run();
  assert.equal(r.rounds[0].fused, false);
  assert.deepEqual(r.weights, initial);
});

test('FedAvg fuses with example weights: one round equals the weighted average of the local models', async () => {
  const nodes = new Map<number, LocalData>([
    [0, { train: blobs(100, 1), validation: empty(blobs(1, 1)) }],
    [1, { train: blobs(300, 2), validation: empty(blobs(1, 2)) }],
  ]);
  const trainer = new EngineTrainer(asDenseNet(spec)!, jsKernels);
  const initial = initialWeights(tensorSpecs(spec), new Rng(7));
  const local = { epochs: 1, batchSize: 16, optimizer: { name: 'sgd' as const, lr: 0.1 }, proxMu: 0 };
  const w0 = await trainer.train(initial, nodes.get(0)!.train, { ...local, seed: RoundEngine.nodeSeed(3, 1, 0) });
  const w1 = await trainer.train(initial, nodes.get(1)!.train, { ...local, seed: RoundEngine.nodeSeed(3, 1, 1) });
  const expected = weightedAverage([w0.weights, w1.weights], [100, 300]);
  const r = await setup(nodes, [0, 1], 'fedavg', {
    rounds: 1,
    evalFraction: 0,
    local: { epochs: 1, batchSize: 16, optimizer: local.optimizer },
  }).run();
  let maxDiff = 0;
  for (let i = 0; i < expected.length; i++) maxDiff = Math.max(maxDiff, Math.abs(expected[i] - r.weights[i]));
  assert.ok(maxDiff < 1e-6, `max diff ${maxDiff}`);
});

test('FedSGD: nodes send gradients and the coordinator takes the step', async () => {
  const r = await setup(healthyNodes(4), [0, 1, 2, 3], 'fedsgd:lr=0.5', { rounds: 30, evalFraction: 0 }).run();
  assert.ok(r.rounds[29].testAccuracy > 0.85, `accuracy ${r.rounds[29].testAccuracy}`);
  assert.ok(r.rounds[29].testLoss < r.rounds[0].testLoss);
});

test('every strategy trains the toy problem', async () => {
  for (const s of [
    'fedprox:0.01',
    'fedavgm',
    'fedadam:eta=0.01',
    'fedyogi',
    'fedadagrad:eta=0.01',
    'fednova',
    'fedsgd:adam,lr=0.05',
  ]) {
    const r = await setup(healthyNodes(3), [0, 1, 2], s, {
      rounds: s.startsWith('fedsgd') ? 20 : 4,
      evalFraction: 0,
    }).run();
    const last = r.rounds[r.rounds.length - 1];
    assert.ok(last.testAccuracy > 0.8, `${s}: accuracy ${last.testAccuracy}`);
  }
});

test('target accuracy stops the run early', async () => {
  const r = await setup(healthyNodes(4), [0, 1, 2, 3], 'fedavg', { rounds: 50, targetAccuracy: 0.8 }).run();
  assert.ok(r.reachedTarget);
  assert.ok(r.rounds.length < 50);
  assert.ok(r.rounds[r.rounds.length - 1].testAccuracy >= 0.8);
});

test('DP-FedAvg trains the toy problem and reports the privacy spent each round', async () => {
  const r = await setup(healthyNodes(4), [0, 1, 2, 3], 'dpfedavg:clip=1,noise=0.5', {
    rounds: 6,
    evalFraction: 0,
    fraction: 0.5,
    minNodes: 1,
    dpNoise: 'seeded',
  }).run();
  const eps = r.rounds.map((x) => x.epsilon!);
  // Poisson sampling can pick nobody: such a round fuses nothing and costs nothing.
  assert.ok(
    eps.every((e, i) => Number.isFinite(e) && (i === 0 || (r.rounds[i].fused ? e > eps[i - 1] : e === eps[i - 1]))),
    `epsilon grows: ${eps.join(', ')}`,
  );
  assert.ok(r.rounds.every((x) => x.delta === 1e-5));
  assert.ok(r.rounds[5].testAccuracy > 0.75, `accuracy ${r.rounds[5].testAccuracy}`);
});

test('compressed updates: every kind trains the toy problem with fewer bytes received, deterministically', async () => {
  const { parseCompression } = await import('../core/compress-update.js');
  const plain = await setup(healthyNodes(3), [0, 1, 2]).run();
  for (const text of ['fp16', 'int8-block:8,rounding=stochastic', 'topk:0.2']) {
    const a = await setup(healthyNodes(3), [0, 1, 2], 'fedavg', { compression: parseCompression(text) }).run();
    const b = await setup(healthyNodes(3), [0, 1, 2], 'fedavg', { compression: parseCompression(text) }).run();
    assert.deepEqual(Buffer.from(a.weights.buffer), Buffer.from(b.weights.buffer), `${text} is deterministic`);
    assert.ok(
      a.rounds.every((r) => r.contributed.length === 3 && r.failures.length === 0),
      text,
    );
    assert.ok(a.rounds[2].testAccuracy > 0.85, `${text}: accuracy ${a.rounds[2].testAccuracy}`);
    assert.ok(
      a.rounds[0].bytesReceived < plain.rounds[0].bytesReceived,
      `${text}: ${a.rounds[0].bytesReceived} >= ${plain.rounds[0].bytesReceived}`,
    );
  }
  // FedSGD: gradients are compressed as they are, never as deltas.
  const sgd = await setup(healthyNodes(3), [0, 1, 2], 'fedsgd', { compression: parseCompression('int8') }).run();
  assert.ok(
    sgd.rounds.every((r) => r.contributed.length === 3),
    'fedsgd with int8',
  );
});

test('a reply not compressed as the run asked is a failure, never fused', async () => {
  const { parseCompression } = await import('../core/compress-update.js');
  const { decodeMessage, encodeTrainReply } = await import('./messages.js');
  // Node 1's replies are rewritten as plain float32 on the way back (a node ignoring the run's compression).
  const direct = toyFederation(healthyNodes(2), [0, 1]).transport;
  const transport = {
    nodeIds: () => direct.nodeIds(),
    traffic: () => direct.traffic(),
    close: () => direct.close(),
    request: async (nodeId: number, frame: Uint8Array) => {
      const reply = await direct.request(nodeId, frame);
      const msg = decodeMessage(toyLayout, reply);
      return nodeId === 1 && msg.type === 'train_result'
        ? encodeTrainReply(toyLayout, { ...msg.reply, compression: undefined })
        : reply;
    },
  };
  const engine = setup(healthyNodes(2), [0, 1], 'fedavg', {
    compression: parseCompression('topk:0.1'),
    rounds: 1,
    transport,
  });
  const r = await engine.run();
  assert.deepEqual(r.rounds[0].contributed, [0]);
  assert.match(r.rounds[0].failures[0].error, /compressed as 'none', the run asked for 'topk:0.1,ef=on,delta=on'/);
});
