import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RoundEngine } from '../round-engine.js';
import { Strategy, parseStrategy } from '../strategy.js';
import { runIssues, FLAG_WORDING } from '../run-rules.js';
import type { Transport } from '../transport.js';
import { NodeHost, type LocalData } from '../../node/host.js';
import { DirectTransport } from '../../sim/direct.js';
import { batchNormSlots } from '../../core/batchnorm-slots.js';
import { takeHead, withHead } from '../../core/personal-head.js';
import { makeLayout } from '../../core/params.js';
import { Rng } from '../../core/rng.js';
import { EngineTrainer } from '../../model/engine-trainer.js';
import { initialWeights, tensorSpecs, type ModelSpec } from '../../model/spec.js';
import { jsKernels } from '../../nn/kernels-js.js';
import { blobs, toyFederation, toyLayout } from '../../../test/support/toy-federation.js';
import { sgd } from '../../../test/support/skewed-nodes.js';
import { countTrainRepliesKeeping, personalEngine, recording } from '../../../test/support/kept-slots.js';
import type { Dataset } from '../../data/types.js';

/** Dense, BatchNorm, Dense, BatchNorm, output: two normalisation layers between shared layers. */
const bnSpec: ModelSpec = {
  name: 'bn-toy',
  inputShape: [4],
  loss: 'sparse_categorical_crossentropy',
  optimizer: sgd,
  layers: [
    { type: 'dense', name: 'd1', units: 8, activation: 'relu' },
    { type: 'batchnorm', name: 'bn1', momentum: 0.9, epsilon: 1e-3 },
    { type: 'dense', name: 'd2', units: 8, activation: 'relu' },
    { type: 'batchnorm', name: 'bn2', momentum: 0.9, epsilon: 1e-3 },
    { type: 'dense', name: 'out', units: 2, activation: 'softmax' },
  ],
};
const layout = makeLayout(tensorSpecs(bnSpec));
const initial = initialWeights(tensorSpecs(bnSpec), new Rng(7));

/** Feature shift: node i sees the same task with its features scaled by 1 + 2i and offset by 3i. */
function shifted(d: Dataset, i: number): Dataset {
  return { ...d, x: d.x.map((v) => v * (1 + 2 * i) + 3 * i) };
}
function shiftedNodes(k: number): Map<number, LocalData> {
  return new Map(
    Array.from({ length: k }, (_, i) => [
      i,
      { train: shifted(blobs(120, i), i), validation: shifted(blobs(60, 300 + i), i) },
    ]),
  );
}

function run(nodes: Map<number, LocalData>, strategy: string, rounds: number, wrap = (t: Transport) => t) {
  const trainer = new EngineTrainer(bnSpec, jsKernels);
  const transport = new DirectTransport(new NodeHost(layout, trainer, nodes), [...nodes.keys()]);
  return personalEngine(layout, wrap(transport), initial, strategy, rounds);
}

test('FedBN keeps every BatchNormalization tensor (gamma, beta, moving mean and variance), nothing else', () => {
  assert.deepEqual(
    batchNormSlots(layout).map((s) => s.name),
    [
      'bn1/gamma',
      'bn1/beta',
      'bn2/gamma',
      'bn2/beta',
      'bn1/moving_mean',
      'bn1/moving_variance',
      'bn2/moving_mean',
      'bn2/moving_variance',
    ],
  );
});

test('fedbn matches a naive reference: nodes train with their own BatchNorm layers, the server averages the rest', async () => {
  const nodes = shiftedNodes(3);
  const trainer = new EngineTrainer(bnSpec, jsKernels);
  const slots = batchNormSlots(layout);
  let x = new Float32Array(initial);
  const own = new Map<number, Float32Array>();
  for (let round = 1; round <= 3; round++) {
    const acc = new Float64Array(x.length);
    let total = 0;
    for (const [id, { train }] of nodes) {
      const start = own.has(id) ? withHead(x, own.get(id)!, slots) : x;
      const cfg = { epochs: 2, batchSize: 16, optimizer: sgd, proxMu: 0, seed: RoundEngine.nodeSeed(9, round, id) };
      const local = (await trainer.train(start, train, cfg)).weights;
      own.set(id, takeHead(local, slots));
      const sent = withHead(local, takeHead(x, slots), slots);
      for (let j = 0; j < x.length; j++) acc[j] += train.n * (sent[j] - x[j]);
      total += train.n;
    }
    x = x.map((v, j) => v + acc[j] / total);
  }
  const r = await run(nodes, 'fedbn', 3).run();
  let max = 0;
  for (let j = 0; j < x.length; j++) max = Math.max(max, Math.abs(x[j] - r.weights[j]));
  assert.ok(max <= 1e-6, `max |diff| ${max}`);
  // the reference's kept layers moved: FedBN is not FedAvg here
  assert.ok(Math.abs(own.get(2)![0] - own.get(0)![0]) > 1e-4 || Math.abs(own.get(2)![8] - own.get(0)![8]) > 1e-4);
});

test('fedbn: BatchNorm layers never leave a node; nodes report personalised accuracy', async () => {
  const nodes = shiftedNodes(3);
  let replies: Uint8Array[] = [];
  const r = await run(nodes, 'fedbn', 4, (inner) => {
    const rec = recording(inner);
    replies = rec.replies;
    return rec.transport;
  }).run();
  const slots = batchNormSlots(layout);
  const kept = takeHead(initial, slots);
  const trainReplies = countTrainRepliesKeeping(
    layout,
    replies,
    slots,
    kept,
    'a reply carried a trained BatchNorm layer',
  );
  assert.equal(trainReplies, 3 * 4);
  const last = r.rounds.at(-1)!;
  assert.ok(last.personalizedAccuracyMean! > 0.85, `personalised mean ${last.personalizedAccuracyMean}`);
});

test('fedbn refuses models without BatchNormalization: built-ins by the run rules, others on the node', async () => {
  const base = { strategy: 'fedbn', compression: 'none', secagg: false, mode: 'sync' as const };
  assert.deepEqual(runIssues({ ...base, model: 'mobilenet' }, FLAG_WORDING, 4), []);
  assert.deepEqual(runIssues({ ...base, model: 'models/user/model.json' }, FLAG_WORDING, 4), []);
  const issues = runIssues({ ...base, model: 'cnn' }, FLAG_WORDING, 4);
  assert.deepEqual(
    issues.map((i) => i.path),
    [['strategy']],
  );
  assert.match(issues[0].message, /fedbn keeps each node's BatchNormalization layers local, and model 'cnn' has none/);
  assert.match(issues[0].message, /--model mobilenet/);
  assert.match(
    runIssues({ ...base, model: 'mobilenet', compression: 'int8' }, FLAG_WORDING, 4)
      .map((i) => i.message)
      .join(),
    /'fedbn' does not take compressed/,
  );
  // a model whose layers are only known on the node (the toy MLP here): the round fails with the reason
  const { transport, initial: mlpInitial } = toyFederation(shiftedNodes(2), [0, 1]);
  const r = await new RoundEngine({
    layout: toyLayout,
    strategy: new Strategy(parseStrategy('fedbn')),
    transport,
    initial: mlpInitial,
    seed: 1,
    rounds: 1,
    fraction: 1,
    minNodes: 1,
    evalFraction: 0,
    local: { epochs: 1, batchSize: 16, optimizer: sgd },
  }).run();
  assert.equal(r.rounds[0].fused, false);
  assert.match(
    r.rounds[0].failures[0].error,
    /FedBN keeps BatchNormalization layers on the nodes, and this model has none/,
  );
});
