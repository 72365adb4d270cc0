import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { makeLayout } from '../core/params.ts';
import { encodeFrame, encodeFrameBody, encodeFrameHead, peekHeader, type WireTensor } from '../core/wire.ts';
import { concatBytes } from '../core/concat.ts';
import { bindFrame, bindingPrefix, type Binding } from '../core/identity.ts';
import { encodeTrainRequest, encodeTrainRequestHead, trainRequestBody, type TrainRequest } from './messages.ts';
import { Strategy, parseStrategy } from './strategy.ts';
import type { Transport } from './transport.ts';
import { healthyNodes, toyFederation, twoToyRounds } from '../../test/support/toy-federation.ts';

const layout = makeLayout([
  { name: 'dense/kernel', shape: [3, 2] },
  { name: 'dense/bias', shape: [2] },
  { name: 'scale', shape: [] },
]);
const vec = (seed: number) => Float32Array.from({ length: 9 }, (_, i) => Math.fround(Math.sin(seed * 31 + i) * 10));

test('a head and the shared body are encodeFrame, byte for byte, whatever the dtypes and padding', () => {
  const dtypeOf = { float32: Float32Array, int32: Int32Array, float16: Uint16Array, int8: Int8Array } as const;
  fc.assert(
    fc.property(
      fc.array(
        fc.record({ dtype: fc.constantFrom(...(Object.keys(dtypeOf) as (keyof typeof dtypeOf)[])), n: fc.nat(7) }),
        { maxLength: 4 },
      ),
      fc.string({ maxLength: 40 }),
      (specs, note) => {
        const tensors: WireTensor[] = specs.map((s, i) => ({
          name: `t${i}`,
          dtype: s.dtype,
          shape: [s.n],
          data: new dtypeOf[s.dtype](Array.from({ length: s.n }, (_, k) => (k * 37 + i) % 100)),
        }));
        const whole = encodeFrame('x', { note }, tensors);
        const parts = concatBytes([encodeFrameHead('x', { note }, tensors), encodeFrameBody(tensors)]);
        assert.deepEqual(Buffer.from(parts), Buffer.from(whole));
      },
    ),
  );
});

test('per node, a train request head and the round body are encodeTrainRequest, with and without a control variate', () => {
  const weights = vec(1);
  for (const control of [undefined, vec(2)]) {
    const body = trainRequestBody(layout, weights, control);
    for (const nodeId of [0, 7, 12345]) {
      for (const secagg of [undefined, { session: 'abc', peers: [1, 2] }]) {
        const request: TrainRequest = {
          round: 3,
          nodeId,
          mode: nodeId % 2 ? 'gradient' : 'weights',
          config: { epochs: 1, batchSize: 32, optimizer: { name: 'sgd', lr: 0.1 }, proxMu: 0, seed: nodeId * 3 + 1 },
          weights,
          ...(control ? { control } : {}),
          ...(secagg ? { secagg } : {}),
        };
        const whole = encodeTrainRequest(layout, request);
        const head = encodeTrainRequestHead(layout, request);
        assert.deepEqual(Buffer.from(concatBytes([head, body])), Buffer.from(whole), `node ${nodeId}`);
        const binding: Binding = { run: 2, round: 3, node: nodeId, nonce: 'ab'.repeat(16) };
        assert.deepEqual(
          Buffer.from(concatBytes([bindingPrefix(binding), head, body])),
          Buffer.from(bindFrame(binding, whole)),
        );
      }
    }
  }
});

/** The toy federation, logging each request frame by node; with parts, requestParts joins head and body. */
function federation(parts: boolean) {
  const { transport, initial, centralEval } = toyFederation(healthyNodes(4), [0, 1, 2, 3]);
  const frames: string[] = [];
  const bodies = new Set<Uint8Array>();
  const wrapped: Transport = {
    nodeIds: () => transport.nodeIds(),
    request: (nodeId, frame) => {
      frames.push(`${nodeId}:${Buffer.from(frame).toString('base64')}`);
      return transport.request(nodeId, frame);
    },
    traffic: () => transport.traffic(),
    close: () => transport.close(),
  };
  if (parts)
    wrapped.requestParts = (nodeId, head, body) => {
      bodies.add(body);
      return wrapped.request(nodeId, concatBytes([head, body]));
    };
  return { transport: wrapped, initial, centralEval, frames, bodies };
}

test('a transport that takes parts gets the same request frames and gives the same model, one body per round', async () => {
  for (const name of ['fedavg', 'scaffold']) {
    const runs = await Promise.all(
      [false, true].map(async (parts) => {
        const f = federation(parts);
        const weights = await twoToyRounds(new Strategy(parseStrategy(name)), f.transport, f.initial, f.centralEval);
        return { weights, frames: f.frames, bodies: f.bodies.size };
      }),
    );
    const [whole, split] = runs;
    assert.equal(split.bodies, 2, `${name}: one body per round`);
    const controls = split.frames.filter((f) => peekHeader(Buffer.from(f.split(':')[1], 'base64')).control === true);
    assert.equal(controls.length, name === 'scaffold' ? 8 : 0, `${name}: requests with a control variate`);
    assert.equal(split.frames.length, 8);
    assert.deepEqual(split.frames.sort(), whole.frames.sort(), `${name}: the same frames per node`);
    assert.ok(split.weights.equals(whole.weights), `${name}: the same model to the bit`);
  }
});
