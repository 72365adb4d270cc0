import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadMnist } from '../data/mnist.js';
import { subset } from '../data/types.js';
import { builtinModel, initialWeights, tensorSpecs } from '../model/spec.js';
import { makeLayout } from '../core/params.js';
import { Rng } from '../core/rng.js';
import {
  decodeMessage,
  encodeTrainRequest,
  encodeTrainRequestHead,
  trainRequestBody,
  type TrainRequest,
} from '../engine/messages.js';
import type { TrainConfig } from '../model/trainer.js';
import { joinParts, SharedBodies } from './request-parts.js';
import { WorkerPoolTransport } from './pool.js';
import { sharePartitioned } from './shared-data.js';

const spec = builtinModel('2nn', [28, 28, 1], 10);
const layout = makeLayout(tensorSpecs(spec));
const config = (seed: number): TrainConfig => ({
  epochs: 1,
  batchSize: 10,
  optimizer: { name: 'sgd', lr: 0.1 },
  proxMu: 0,
  seed,
});
const requestFor = (nodeId: number, weights: Float32Array, control?: Float32Array): TrainRequest => ({
  round: 3,
  nodeId,
  mode: 'weights',
  config: config(100 + nodeId),
  weights,
  ...(control ? { control } : {}),
});

test('a head joined to the shared body is the whole frame, byte for byte (with and without a control variate)', () => {
  const weights = initialWeights(tensorSpecs(spec), new Rng(4));
  const control = weights.map((v) => v / 3);
  for (const c of [undefined, control]) {
    const bodies = new SharedBodies();
    const body = trainRequestBody(layout, weights, c);
    for (const nodeId of [0, 7]) {
      const request = requestFor(nodeId, weights, c);
      const joined = joinParts(encodeTrainRequestHead(layout, request), bodies.share(body));
      assert.deepEqual(joined, encodeTrainRequest(layout, request));
      assert.ok(!(joined.buffer instanceof SharedArrayBuffer), 'the joined frame is the worker’s own');
      const decoded = decodeMessage(layout, joined);
      assert.equal(decoded.type, 'train');
      if (decoded.type === 'train') assert.deepEqual(decoded.req.weights, weights);
    }
  }
});

test('a round’s body is copied into shared memory once; a new body gets a new buffer and never rewrites the old', () => {
  const bodies = new SharedBodies();
  const first = new Uint8Array([1, 2, 3, 4]);
  const shared = bodies.share(first);
  assert.ok(shared.buffer instanceof SharedArrayBuffer);
  assert.deepEqual([...shared], [1, 2, 3, 4]);
  assert.equal(bodies.share(first), shared, 'every node of the round gets the same copy');
  const second = new Uint8Array([9, 9, 9, 9, 9]);
  const next = bodies.share(second);
  assert.notEqual(next.buffer, shared.buffer);
  assert.deepEqual([...next], [9, 9, 9, 9, 9]);
  assert.deepEqual([...shared], [1, 2, 3, 4], 'a request still reading the earlier round sees its weights');
});

test('the pool answers a request in parts exactly as the whole frame, and counts the same bytes sent', async () => {
  const data = loadMnist();
  const train = subset(
    data.train,
    Int32Array.from({ length: 60 }, (_, i) => i),
  );
  const parts = [Int32Array.from({ length: 30 }, (_, i) => i), Int32Array.from({ length: 30 }, (_, i) => 30 + i)];
  const weights = initialWeights(tensorSpecs(spec), new Rng(5));
  const pool = await WorkerPoolTransport.start(
    { ...sharePartitioned(train, parts), validationFraction: 0, seed: 1, spec, trainer: 'engine' },
    2,
  );
  try {
    const body = trainRequestBody(layout, weights);
    const viaParts = await Promise.all(
      [0, 1].map((nodeId) =>
        pool.requestParts(nodeId, encodeTrainRequestHead(layout, requestFor(nodeId, weights)), body),
      ),
    );
    const sentParts = pool.traffic().sent;
    const whole = [0, 1].map((nodeId) => encodeTrainRequest(layout, requestFor(nodeId, weights)));
    const wholeBytes = whole.reduce((a, f) => a + f.length, 0);
    const viaWhole = await Promise.all(whole.map((frame, nodeId) => pool.request(nodeId, frame)));
    assert.equal(sentParts, wholeBytes);
    assert.equal(pool.traffic().sent, 2 * wholeBytes);
    for (const nodeId of [0, 1]) {
      assert.equal(decodeMessage(layout, viaParts[nodeId]).type, 'train_result');
      assert.deepEqual(viaParts[nodeId], viaWhole[nodeId], `node ${nodeId}: same update, same bytes`);
    }
  } finally {
    await pool.close();
  }
});

test('a request in parts to a closed pool is refused', async () => {
  const data = loadMnist();
  const train = subset(
    data.train,
    Int32Array.from({ length: 10 }, (_, i) => i),
  );
  const pool = await WorkerPoolTransport.start(
    {
      ...sharePartitioned(train, [Int32Array.from({ length: 10 }, (_, i) => i)]),
      validationFraction: 0,
      seed: 1,
      spec,
      trainer: 'engine',
    },
    1,
  );
  await pool.close();
  const weights = initialWeights(tensorSpecs(spec), new Rng(5));
  await assert.rejects(
    pool.requestParts(0, encodeTrainRequestHead(layout, requestFor(0, weights)), trainRequestBody(layout, weights)),
    /transport is closed/,
  );
});
