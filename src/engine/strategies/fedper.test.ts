import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RoundEngine } from '../round-engine.js';
import { parseStrategy } from '../strategy.js';
import { runIssues, FLAG_WORDING } from '../run-rules.js';
import { decodeMessage, encodeEvalRequest, encodeTrainRequest } from '../messages.js';
import { personalizedAccuracy } from '../evaluate-nodes.js';
import type { Transport } from '../transport.js';
import type { LocalData } from '../../node/host.js';
import { headSlots, takeHead, withHead } from '../../core/personal-head.js';
import { blobs, toyFederation, toyLayout } from '../../../test/support/toy-federation.js';
import { sgd } from '../../../test/support/skewed-nodes.js';
import { countTrainRepliesKeeping, personalEngine, recording } from '../../../test/support/kept-slots.js';
import { Rng } from '../../core/rng.js';
import { EngineTrainer } from '../../model/engine-trainer.js';
import { asDenseNet } from '../../model/spec.js';
import { jsKernels } from '../../nn/kernels-js.js';
import { toySpec } from '../../../test/support/toy-federation.js';

/** Two tasks that share features but not labels: odd nodes see y flipped, so no single head fits both. */
function conflictingNodes(k: number): Map<number, LocalData> {
  const flip = (d: ReturnType<typeof blobs>) => ({ ...d, y: d.y.map((v) => 1 - v) });
  return new Map(
    Array.from({ length: k }, (_, i) => {
      const [train, validation] = [blobs(150, i), blobs(60, 300 + i)];
      return [i, i % 2 ? { train: flip(train), validation: flip(validation) } : { train, validation }];
    }),
  );
}

function run(nodes: Map<number, LocalData>, strategy: string, rounds: number, wrap = (t: Transport) => t) {
  const { transport, initial } = toyFederation(nodes, [...nodes.keys()]);
  return personalEngine(toyLayout, wrap(transport), initial, strategy, rounds);
}

for (const strategy of ['fedper', 'fedrep:head-epochs=2'])
  test(`${strategy}: the head (output layer) never leaves a node; personalised accuracy beats the global model on conflicting tasks`, async () => {
    const nodes = conflictingNodes(4);
    let replies: Uint8Array[] = [];
    const r = await run(nodes, strategy, 6, (t) => {
      const rec = recording(t);
      replies = rec.replies;
      return rec.transport;
    }).run();
    const slots = headSlots(toyLayout, 1);
    assert.deepEqual(
      slots.map((s) => s.name),
      ['output/kernel', 'output/bias'],
    );
    const initialHead = takeHead(toyFederation(nodes, []).initial, slots);
    const trainReplies = countTrainRepliesKeeping(
      toyLayout,
      replies,
      slots,
      initialHead,
      'a reply carried a trained head',
    );
    assert.equal(trainReplies, 4 * 6);
    const last = r.rounds.at(-1)!;
    assert.ok(last.personalizedAccuracyMean! > 0.85, `personalised mean ${last.personalizedAccuracyMean}`);
    assert.ok(last.federatedAccuracy < 0.7, `global model per-node accuracy ${last.federatedAccuracy}`);
    assert.ok(
      last.personalizedAccuracyMin! <= last.personalizedAccuracyP10! &&
        last.personalizedAccuracyP10! <= last.personalizedAccuracyMean!,
    );
    const fedavg = (await run(conflictingNodes(4), 'fedavg', 6).run()).rounds.at(-1)!;
    assert.equal(fedavg.personalizedAccuracyMean, undefined, 'only nodes with a personal head report one');
  });

for (const strategy of ['fedper', 'fedrep:head-epochs=2'])
  test(`${strategy} matches a naive reference: nodes train from the global body and their own head, the server averages bodies`, async () => {
    const nodes = conflictingNodes(3);
    const rep = strategy.startsWith('fedrep');
    const { trainer, initial } = toyFederation(nodes, []);
    const slots = headSlots(toyLayout, 1);
    let x = new Float32Array(initial);
    const heads = new Map<number, Float32Array>();
    for (let round = 1; round <= 3; round++) {
      const acc = new Float64Array(x.length);
      let total = 0;
      for (const [id, { train }] of nodes) {
        const start = heads.has(id) ? withHead(x, heads.get(id)!, slots) : x;
        const cfg = { epochs: 2, batchSize: 16, optimizer: sgd, proxMu: 0, seed: RoundEngine.nodeSeed(9, round, id) };
        let local: Float32Array;
        if (rep) {
          // FedRep: two epochs of the head alone (body frozen, its own seed stream), then the body (head frozen)
          const body = toyLayout.filter((s) => !slots.includes(s));
          const first = await trainer.train(
            start,
            train,
            { ...cfg, epochs: 2, seed: new Rng(cfg.seed).fork('head').nextU32() },
            undefined,
            body,
          );
          local = (await trainer.train(first.weights, train, cfg, undefined, slots)).weights;
        } else {
          local = (await trainer.train(start, train, cfg)).weights;
        }
        heads.set(id, takeHead(local, slots));
        const sent = withHead(local, takeHead(x, slots), slots);
        for (let j = 0; j < x.length; j++) acc[j] += train.n * (sent[j] - x[j]);
        total += train.n;
      }
      x = x.map((v, j) => v + acc[j] / total);
    }
    const r = await run(nodes, strategy, 3).run();
    let max = 0;
    for (let j = 0; j < x.length; j++) max = Math.max(max, Math.abs(x[j] - r.weights[j]));
    assert.ok(max <= 1e-6, `max |diff| ${max}`); // the same float32 training; the mean's rounding differs at most by an ulp
  });

test('personalised accuracy statistics: mean, nearest-rank 10th percentile, minimum', () => {
  const results = [0.9, 0.5, 1, 0.7, 0.8, 0.95, 0.85, 0.6, 0.75, 0.65, 0.99].map((accuracy, nodeId) => ({
    nodeId,
    numExamples: 1,
    loss: 0,
    accuracy: 0,
    personal: { loss: 0, accuracy },
  }));
  const s = personalizedAccuracy(results);
  assert.ok(Math.abs(s.personalizedAccuracyMean! - 8.69 / 11) < 1e-12);
  assert.equal(s.personalizedAccuracyP10, 0.6); // rank ceil(1.1) = 2 of 11 sorted
  assert.equal(s.personalizedAccuracyMin, 0.5);
  assert.deepEqual(personalizedAccuracy([{ nodeId: 0, numExamples: 1, loss: 0, accuracy: 1 }]), {});
});

test('FedPer refuses a head with no body left, a bad head parameter, secure aggregation and compression', async () => {
  assert.equal(parseStrategy('fedper').headLayers, 1);
  assert.throws(() => parseStrategy('fedper:head=0'), /head must be a whole number >= 1/);
  assert.throws(() => headSlots(toyLayout, 2), /from 1 to 1 \(the model has 2\), got 2/);
  const r = await run(conflictingNodes(2), 'fedper:head=2', 1).run();
  assert.equal(r.rounds[0].fused, false);
  assert.match(r.rounds[0].failures[0].error, /personal head must be a whole number of layers from 1 to 1/);
  const base = { strategy: 'fedper', compression: 'none', secagg: false, mode: 'sync' as const };
  assert.deepEqual(runIssues(base, FLAG_WORDING, 4), []);
  assert.match(
    runIssues({ ...base, secagg: true }, FLAG_WORDING, 4)
      .map((i) => i.message)
      .join(),
    /'fedper'/,
  );
  assert.match(
    runIssues({ ...base, compression: 'int8' }, FLAG_WORDING, 4)
      .map((i) => i.message)
      .join(),
    /'fedper' does not take compressed/,
  );
});

test('strategies with node state refuse --queue (any worker may take a node) and run on worker threads', async () => {
  const { resolveOptions } = await import('../../sim/options.js');
  for (const s of ['scaffold', 'feddyn', 'fedper', 'fedrep', 'ditto']) {
    assert.throws(
      () => resolveOptions({ queue: 'redis://127.0.0.1:6379', strategy: s }),
      new RegExp(`--queue: strategy '${s}' keeps state on each node`),
    );
    assert.equal(resolveOptions({ strategy: s }).strategy, s);
  }
  assert.equal(resolveOptions({ queue: 'redis://127.0.0.1:6379', strategy: 'fedavg' }).strategy, 'fedavg');
});

test('frozen weight ranges keep their values bit for bit under SGD, momentum and Adam; the rest train', async () => {
  const trainer = new EngineTrainer(asDenseNet(toySpec)!, jsKernels);
  const { initial } = toyFederation(new Map(), []);
  const [frozen, free] = [toyLayout.slice(0, 2), toyLayout.slice(2)];
  for (const optimizer of [sgd, { name: 'momentum' as const, lr: 0.1 }, { name: 'adam' as const, lr: 0.01 }]) {
    const r = await trainer.train(
      initial,
      blobs(64, 1),
      { epochs: 2, batchSize: 8, optimizer, proxMu: 0.1, seed: 3 },
      undefined,
      frozen,
    );
    for (const s of frozen)
      assert.deepEqual(
        r.weights.subarray(s.offset, s.offset + s.size),
        initial.subarray(s.offset, s.offset + s.size),
        `${optimizer.name} ${s.name}`,
      );
    for (const s of free)
      assert.notDeepEqual(
        r.weights.subarray(s.offset, s.offset + s.size),
        initial.subarray(s.offset, s.offset + s.size),
        `${optimizer.name} ${s.name}`,
      );
  }
  assert.equal(parseStrategy('fedrep').headEpochs, 5);
  assert.throws(() => parseStrategy('fedrep:head-epochs=0'), /head-epochs must be a whole number >= 1/);
});

test('Ditto: the node uploads plain local training and keeps a personal model that matches a naive reference (|loss diff| <= 1e-5)', async () => {
  const nodes = conflictingNodes(2);
  const { trainer, transport, initial } = toyFederation(nodes, [0, 1]);
  const { train, validation } = nodes.get(1)!;
  const lambda = 0.5;
  const globals = [initial, initial.map((v) => 0.9 * v), initial.map((v) => v + 0.01)];
  let v = Float64Array.from(initial);
  for (const [t, x] of globals.entries()) {
    const config = {
      epochs: 3,
      batchSize: 1000,
      optimizer: sgd,
      proxMu: 0,
      seed: 40 + t,
      localState: 'ditto' as const,
      personalMu: lambda,
    };
    const reply = decodeMessage(
      toyLayout,
      await transport.request(
        1,
        encodeTrainRequest(toyLayout, { round: t + 1, nodeId: 1, mode: 'weights', config, weights: x }),
      ),
    );
    assert.ok(reply.type === 'train_result');
    assert.deepEqual(
      reply.reply.vector,
      (await trainer.train(x, train, { ...config, localState: undefined })).weights,
      'the upload is plain local training',
    );
    for (let k = 0; k < 3; k++) {
      const g = (await trainer.gradient(Float32Array.from(v), train, train.n)).gradient;
      v = v.map((w, j) => w - sgd.lr * (g[j] + lambda * (w - x[j])));
    }
  }
  const expected = await trainer.evaluate(Float32Array.from(v), validation);
  const evaluated = decodeMessage(
    toyLayout,
    await transport.request(1, encodeEvalRequest(toyLayout, { round: 4, nodeId: 1, weights: globals[2] })),
  );
  assert.ok(evaluated.type === 'eval_result' && evaluated.reply.personal);
  assert.ok(
    Math.abs(evaluated.reply.personal.loss - expected.loss) <= 1e-5,
    `${evaluated.reply.personal.loss} vs ${expected.loss}`,
  );
  assert.equal(evaluated.reply.personal.accuracy, expected.accuracy);
  // on conflicting tasks the personal models fit each node's labels while the global model cannot
  const last = (await run(conflictingNodes(4), 'ditto:lambda=0.01', 6).run()).rounds.at(-1)!;
  assert.ok(
    last.personalizedAccuracyMean! > 0.85 && last.federatedAccuracy < 0.7,
    `${last.personalizedAccuracyMean} / ${last.federatedAccuracy}`,
  );
  assert.throws(() => parseStrategy('ditto:lambda=-1'), /lambda must be a number >= 0/);
});
