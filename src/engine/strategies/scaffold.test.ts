import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Strategy, parseStrategy } from '../strategy.js';
import { runIssues, FLAG_WORDING } from '../run-rules.js';
import type { LocalData } from '../../node/host.js';
import { toyFederation, toyLayout } from '../../../test/support/toy-federation.js';
import { engine, LR, sgd, sha, skewedNodes } from '../../../test/support/skewed-nodes.js';
import { decodeMessage, encodeTrainReply, encodeTrainRequest } from '../messages.js';
import { FrameError, decodeFrame, encodeFrame } from '../../core/wire.js';

/**
 * SCAFFOLD option II in plain loops (Karimireddy et al. 2020, Algorithm 1), full-batch local gradient descent:
 * K = epochs steps per round, every node every round; the gradient comes from the trainer's full-data gradient.
 */
async function naiveScaffold(nodes: Map<number, LocalData>, rounds: number, epochs: number): Promise<Float32Array> {
  const { trainer, initial } = toyFederation(nodes, [...nodes.keys()]);
  const N = nodes.size;
  const x = Float64Array.from(initial);
  const c = new Float64Array(x.length);
  const ci = new Map([...nodes.keys()].map((id) => [id, new Float64Array(x.length)]));
  for (let t = 0; t < rounds; t++) {
    const dy = new Float64Array(x.length);
    const dc = new Float64Array(x.length);
    let total = 0;
    for (const [id, { train }] of nodes) {
      const y = Float64Array.from(x);
      for (let k = 0; k < epochs; k++) {
        const g = (await trainer.gradient(Float32Array.from(y), train, train.n)).gradient;
        for (let j = 0; j < y.length; j++) y[j] -= LR * (g[j] - ci.get(id)![j] + c[j]);
      }
      const own = ci.get(id)!;
      for (let j = 0; j < y.length; j++) {
        const next = own[j] - c[j] + (x[j] - y[j]) / (epochs * LR);
        dc[j] += next - own[j];
        own[j] = next;
        dy[j] += train.n * (y[j] - x[j]);
      }
      total += train.n;
    }
    for (let j = 0; j < x.length; j++) {
      x[j] += dy[j] / total;
      c[j] += dc[j] / N;
    }
  }
  return Float32Array.from(x);
}

test('SCAFFOLD matches a naive float64 reference over 4 rounds of full-batch GD on 3 skewed nodes (|diff| <= 2e-5)', async () => {
  const nodes = skewedNodes([40, 70, 100]);
  const expected = await naiveScaffold(nodes, 4, 3);
  const r = await engine(nodes, 'scaffold', { rounds: 4, epochs: 3, batchSize: 1000 }).run();
  let max = 0;
  for (let j = 0; j < expected.length; j++) max = Math.max(max, Math.abs(expected[j] - r.weights[j]));
  // float32 state and gradients summed in another order, against float64 loops: a few ulps per step
  assert.ok(max <= 2e-5, `max |diff| ${max}`);
  // the correction matters here: FedAvg lands elsewhere, so the comparison above can fail
  const fedavg = await engine(nodes, 'fedavg', { rounds: 4, epochs: 3, batchSize: 1000 }).run();
  let apart = 0;
  for (let j = 0; j < expected.length; j++) apart = Math.max(apart, Math.abs(fedavg.weights[j] - r.weights[j]));
  assert.ok(apart > 1e-3, `SCAFFOLD and FedAvg differ by only ${apart}`);
});

test('with one node the control variates cancel: SCAFFOLD equals FedAvg bit for bit (full batch and minibatches)', async () => {
  for (const batchSize of [1000, 16]) {
    const one = skewedNodes([80]);
    const a = await engine(one, 'scaffold', { rounds: 5, epochs: 2, batchSize }).run();
    const b = await engine(skewedNodes([80]), 'fedavg', { rounds: 5, epochs: 2, batchSize }).run();
    assert.equal(sha(a.weights), sha(b.weights), `batch ${batchSize}`);
  }
});

test('SCAFFOLD is deterministic by seed; the control delta doubles the upload', async () => {
  const run = (seed: number, s = 'scaffold') =>
    engine(skewedNodes([40, 60]), s, { rounds: 2, epochs: 1, batchSize: 8, seed }).run();
  const [a, b, c, f] = [await run(1), await run(1), await run(2), await run(1, 'fedavg')];
  assert.equal(sha(a.weights), sha(b.weights));
  assert.notEqual(sha(a.weights), sha(c.weights));
  const ratio = a.rounds[0].bytesReceived / f.rounds[0].bytesReceived;
  assert.ok(ratio > 1.9 && ratio < 2.1, `upload ratio ${ratio}`);
  assert.ok(a.rounds[0].bytesSent > 1.9 * f.rounds[0].bytesSent, 'the server control travels down too');
});

test('SCAFFOLD server control survives the checkpoint (extraState -> restore) bit for bit', () => {
  const config = parseStrategy('scaffold');
  const s = new Strategy(config);
  const global = new Float32Array([0.5, -1, 2, 0]);
  const results = [0, 1].map((nodeId) => ({
    nodeId,
    numExamples: 10 + nodeId,
    steps: 3,
    metrics: { loss: 1, accuracy: 0.5 },
    vector: global.map((v, j) => v + 0.1 * (j + nodeId)),
    controlDelta: new Float32Array([0.25, -nodeId, 1 / 3, 7]),
  }));
  s.aggregateTrain(global, results, { round: 1, seed: 1, sampled: 2, population: 4 });
  const c = s.control(4)!;
  assert.deepEqual([...c], [...new Float32Array([0.125, -0.25, Math.fround(1 / 3) / 2, 3.5])]);
  const resumed = new Strategy(config, s.state(), JSON.parse(JSON.stringify(s.extraState())));
  assert.deepEqual(resumed.control(4), c);
  assert.throws(
    () => new Strategy(config, s.state(), { scaffoldControl: 'AAAA' }).control(4),
    /checkpoint holds 3 bytes, a model of 4 values needs 16/,
  );
  assert.throws(
    () => s.aggregateTrain(global, [{ ...results[0], controlDelta: undefined }]),
    /node\(s\) 0 sent no control delta/,
  );
});

test('combination rules refuse SCAFFOLD with secure aggregation, compression and FedBuff', () => {
  const base = { strategy: 'scaffold', compression: 'none', secagg: false, mode: 'sync' as const };
  assert.deepEqual(runIssues(base, FLAG_WORDING, 4), []);
  assert.match(
    runIssues({ ...base, secagg: true }, FLAG_WORDING, 4)
      .map((i) => i.message)
      .join(),
    /'scaffold' needs the individual updates/,
  );
  assert.match(
    runIssues({ ...base, compression: 'int8' }, FLAG_WORDING, 4)
      .map((i) => i.message)
      .join(),
    /'scaffold' does not take compressed/,
  );
  assert.match(
    runIssues({ ...base, mode: 'async' }, FLAG_WORDING, 4)
      .map((i) => i.message)
      .join(),
    /fuses with FedBuff/,
  );
});

test('control variates travel as named tensors; a bad control frame is refused on decode', () => {
  const w = new Float32Array(toyLayout.at(-1)!.offset + toyLayout.at(-1)!.size).map((_, i) => i / 7);
  const control = w.map((v) => -v);
  const config = { epochs: 1, batchSize: 4, optimizer: sgd, proxMu: 0, seed: 1, localState: 'scaffold' as const };
  const req = decodeMessage(
    toyLayout,
    encodeTrainRequest(toyLayout, { round: 1, nodeId: 2, mode: 'weights', config, weights: w, control }),
  );
  assert.ok(req.type === 'train' && req.req.control);
  assert.deepEqual(req.req.control, control);
  const reply = decodeMessage(
    toyLayout,
    encodeTrainReply(toyLayout, {
      round: 1,
      nodeId: 2,
      numExamples: 3,
      steps: 1,
      metrics: { loss: 0, accuracy: 1 },
      vector: w,
      controlDelta: control,
    }),
  );
  assert.ok(reply.type === 'train_result');
  assert.deepEqual(reply.reply.controlDelta, control);
  const frame = decodeFrame(
    encodeTrainRequest(toyLayout, { round: 1, nodeId: 2, mode: 'weights', config, weights: w }),
  );
  const renamed = encodeFrame('train', { ...frame.header, control: true }, [
    ...frame.tensors,
    ...frame.tensors.map((t) => ({ ...t, name: `other/${t.name}` })),
  ]);
  assert.throws(
    () => decodeMessage(toyLayout, renamed),
    (e) => e instanceof FrameError && /named 'control\/<tensor>'/.test(e.message),
  );
  const short = encodeFrame('train', { ...frame.header, control: true }, frame.tensors);
  assert.throws(() => decodeMessage(toyLayout, short), /holds \d+ tensors, got \d+/);
});

test('a node refuses a SCAFFOLD request without the server control, and a control without SCAFFOLD', async () => {
  const { transport, initial } = toyFederation(skewedNodes([30]), [0]);
  const config = { epochs: 1, batchSize: 4, optimizer: sgd, proxMu: 0, seed: 1 };
  const ask = async (c: object, control?: Float32Array) =>
    decodeMessage(
      toyLayout,
      await transport.request(
        0,
        encodeTrainRequest(toyLayout, {
          round: 1,
          nodeId: 0,
          mode: 'weights',
          config: { ...config, ...c },
          weights: initial,
          ...(control ? { control } : {}),
        }),
      ),
    );
  const missing = await ask({ localState: 'scaffold' });
  assert.ok(missing.type === 'error' && /must carry the server control variate/.test(missing.message));
  const stray = await ask({}, new Float32Array(initial.length));
  assert.ok(stray.type === 'error' && /local state is 'none', not 'scaffold'/.test(stray.message));
  const bad = await ask({ localState: 'fedsomething' });
  assert.ok(
    bad.type === 'error' &&
      /local state must be 'scaffold', 'feddyn', 'fedper', 'fedrep', 'ditto' or 'fedbn'/.test(bad.message),
  );
});
