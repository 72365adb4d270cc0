// The gateway's request handler: bad requests get error frames; with real agents on loopback, K edge rounds
// match a naive HierFAVG reference (each node trained by hand, example-weighted means in Float64).
import { test } from 'node:test';
import { parseCompression } from '../core/compress-update.js';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import pino from 'pino';
import { startCoordinator } from '../coordinator/server.js';
import { Registry } from '../coordinator/registry.js';
import { Agent } from '../node/agent.js';
import type { LocalData } from '../node/host.js';
import { loadMnist } from '../data/mnist.js';
import { subset } from '../data/types.js';
import { builtinModel, initialWeights, tensorSpecs, type ModelSpec } from '../model/spec.js';
import { makeTrainer } from '../model/make-trainer.js';
import { makeLayout } from '../core/params.js';
import { Rng } from '../core/rng.js';
import { encodeFrame } from '../core/wire.js';
import { decodeMessage, encodeEvalRequest, encodeTrainRequest, encodeTrainReply } from '../engine/messages.js';
import { RoundEngine } from '../engine/round-engine.js';
import type { TrainConfig } from '../model/trainer.js';
import { edgeHandler, edgeRoundsOf, type EdgeOptions } from './edge-federation.js';

const log = pino({ level: 'silent' });
const mnist = loadMnist();
const spec: ModelSpec = builtinModel('linear', mnist.test.featureShape, mnist.test.numClasses);
const layout = makeLayout(tensorSpecs(spec));
const initial = initialWeights(tensorSpecs(spec), new Rng(7).fork('init'));
const config: TrainConfig = { epochs: 1, batchSize: 32, optimizer: spec.optimizer, proxMu: 0, seed: 12345 };
const edge = (overrides: Partial<EdgeOptions> = {}): EdgeOptions => ({
  edgeRounds: 2,
  minNodes: 1,
  fraction: 1,
  roundTimeoutMs: 30_000,
  waitForNodesMs: 50,
  auth: false,
  log,
  ...overrides,
});

function errorOf(reply: Uint8Array): { round: number; nodeId: number; message: string } {
  const msg = decodeMessage(layout, reply);
  assert.equal(msg.type, 'error');
  return msg as { round: number; nodeId: number; message: string };
}

test('edge rounds of consecutive cloud rounds are K long, contiguous and never overlap', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 1e6 }), fc.integer({ min: 1, max: 1000 }), (r, k) => {
      const a = edgeRoundsOf(r, k);
      const b = edgeRoundsOf(r + 1, k);
      return a.first >= 1 && a.last - a.first + 1 === k && b.first === a.last + 1;
    }),
  );
});

test('bad requests and a gateway with no live nodes get error frames for the cloud', async () => {
  const h = edgeHandler(new Registry(), edge(), 1, spec);
  const train = (round: number, cfg: object, mode: 'weights' | 'gradient' = 'weights') =>
    h.handle(encodeTrainRequest(layout, { round, nodeId: 4, mode, config: cfg as TrainConfig, weights: initial }));
  const none = errorOf(await train(3, config));
  assert.deepEqual([none.round, none.nodeId], [3, 4], 'the error answers the cloud request');
  assert.match(none.message, /gateway could fuse no edge round: 0 live nodes, 1 needed/);
  assert.match(
    errorOf(await h.handle(encodeEvalRequest(layout, { round: 3, nodeId: 4, weights: initial }))).message,
    /no live nodes/,
  );
  assert.match(errorOf(await train(3, config, 'gradient')).message, /not gradient mode/);
  const secure = await h.handle(
    encodeTrainRequest(layout, {
      round: 3,
      nodeId: 4,
      mode: 'weights',
      config: config as TrainConfig,
      weights: initial,
      secagg: { session: 's' },
    }),
  );
  assert.match(
    errorOf(secure).message,
    /cannot take part in secure aggregation/,
    'a site model must never reach the cloud unmasked',
  );
  assert.match(errorOf(await train(0, config)).message, /round must be >= 1/);
  assert.match(errorOf(await train(3, { ...config, epochs: 0 })).message, /local epochs/);
  assert.match(errorOf(await train(3, { ...config, seed: -1 })).message, /seed/);
  assert.match(errorOf(await train(3, { ...config, seed: 'x' })).message, /seed/);
  assert.match(errorOf(await h.handle(new Uint8Array([1, 2, 3]))).message, /frame|magic|short/i);
  assert.match(
    errorOf(await h.handle(encodeFrame('train', { round: 1, node: 4, mode: 'weights', config }))).message,
    /tensors/,
  );
  const reply = encodeTrainReply(layout, {
    round: 1,
    nodeId: 4,
    numExamples: 1,
    steps: 1,
    metrics: { loss: 0, accuracy: 0 },
    vector: initial,
  });
  assert.match(errorOf(await h.handle(reply)).message, /does not accept 'train_result'/);
});

/** Float64 example-weighted mean, written out independently of core/aggregate. */
function naiveMean(vectors: Float32Array[], weights: number[]): Float32Array {
  const total = weights.reduce((a, w) => a + w, 0);
  return Float32Array.from(vectors[0], (_, i) => vectors.reduce((a, v, j) => a + v[i] * weights[j], 0) / total);
}

test("K edge rounds over real agents equal HierFAVG done by hand; evaluation is the nodes' weighted mean", async () => {
  const local = await startCoordinator({
    port: 0,
    db: ':memory:',
    auth: false,
    gateway: true,
    logger: log,
    heartbeatMs: 60_000,
  });
  const shard = (from: number, n: number): LocalData => ({
    train: subset(
      mnist.train,
      Array.from({ length: n }, (_, i) => from + i),
    ),
    validation: subset(
      mnist.train,
      Array.from({ length: 100 }, (_, i) => from + n + i),
    ),
  });
  const data = new Map([
    ['p', shard(0, 300)],
    ['q', shard(1000, 200)],
    ['r', shard(2000, 250)],
  ]);
  const agents = [...data].map(([name, d]) => new Agent({ coordinator: local.url, name, data: d, tags: {}, log }));
  const reference = await makeTrainer(spec);
  try {
    await Promise.all(agents.map((a) => a.start()));
    await local.registry.waitFor({ tags: {} }, 3, 30_000);
    const byId = local.registry.all().map((n) => ({ id: n.id, data: data.get(n.name)! }));
    assert.equal(byId.length, 3);
    const k = 2;
    const h = edgeHandler(local.registry, edge({ edgeRounds: k }), 9, spec);
    const cloudRound = 2;
    const msg = decodeMessage(
      layout,
      await h.handle(
        encodeTrainRequest(layout, { round: cloudRound, nodeId: 5, mode: 'weights', config, weights: initial }),
      ),
    );
    assert.equal(msg.type, 'train_result', JSON.stringify(msg));
    if (msg.type !== 'train_result') return;

    let global = initial;
    const { first, last } = edgeRoundsOf(cloudRound, k);
    for (let round = first; round <= last; round++) {
      const outs = [];
      for (const n of byId)
        outs.push(
          await reference.train(global, n.data.train, {
            ...config,
            seed: RoundEngine.nodeSeed(config.seed, round, n.id),
          }),
        );
      global = naiveMean(
        outs.map((outcome) => outcome.weights),
        outs.map((outcome) => outcome.numExamples),
      );
    }
    assert.deepEqual([msg.reply.round, msg.reply.nodeId], [cloudRound, 5]);
    assert.equal(msg.reply.numExamples, 750, "the site speaks for all its nodes' examples");
    let worst = 0;
    for (let i = 0; i < global.length; i++) worst = Math.max(worst, Math.abs(global[i] - msg.reply.vector[i]));
    assert.ok(worst <= 1e-5, `edge model differs from the reference by ${worst}`);
    assert.ok(worst < Math.max(...global.map((w, i) => Math.abs(w - initial[i]))), 'training moved the weights');

    const ev = decodeMessage(
      layout,
      await h.handle(encodeEvalRequest(layout, { round: cloudRound, nodeId: 5, weights: global })),
    );
    assert.equal(ev.type, 'eval_result');
    if (ev.type !== 'eval_result') return;
    const evals = await Promise.all(byId.map((n) => reference.evaluate(global, n.data.validation)));
    assert.equal(ev.reply.numExamples, 300);
    assert.ok(Math.abs(ev.reply.accuracy - evals.reduce((a, e) => a + e.accuracy * 100, 0) / 300) < 1e-9);
    assert.ok(Math.abs(ev.reply.loss - evals.reduce((a, e) => a + e.loss * 100, 0) / 300) < 1e-6);

    // A cloud run with compression: the site answers compressed as asked, a delta against the weights it was sent.
    const int8 = parseCompression('int8');
    const next = decodeMessage(
      layout,
      await h.handle(
        encodeTrainRequest(layout, {
          round: cloudRound + 1,
          nodeId: 5,
          mode: 'weights',
          config: { ...config, compression: int8 },
          weights: global,
        }),
      ),
    );
    assert.equal(next.type, 'train_result', JSON.stringify(next));
    if (next.type !== 'train_result') return;
    assert.deepEqual(next.reply.compression, int8);
    const moved = Math.max(...next.reply.vector.map(Math.abs));
    assert.ok(moved > 0 && moved < 1, `the delta's largest entry is ${moved}`);
  } finally {
    reference.dispose();
    for (const a of agents) a.stop();
    await local.close();
  }
});
