import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { makeLayout } from '../core/params.ts';
import { adoptFrame, decodeFrame, encodeFrame, FrameError, type WireTensor } from '../core/wire.ts';
import type { TrainConfig } from '../model/trainer.ts';
import {
  decodeMessage,
  encodeError,
  encodeEvalReply,
  encodeEvalRequest,
  encodeTrainReply,
  encodeTrainRequest,
  fromTensors,
  toTensors,
  type Decoded,
} from './messages.ts';

// ---------- fixtures ----------

const layout = makeLayout([
  { name: 'dense/kernel', shape: [3, 2] },
  { name: 'dense/bias', shape: [2] },
  { name: 'scale', shape: [] },
]);
const SIZE = 9;

function vec(seed: number): Float32Array {
  return Float32Array.from({ length: SIZE }, (_, i) => Math.fround(Math.sin(seed * 31 + i) * 10));
}

const config: TrainConfig = {
  epochs: 2,
  batchSize: 16,
  optimizer: { name: 'sgd', lr: 0.05 },
  proxMu: 0.01,
  seed: 1234,
  maxSteps: 50,
};

/** Asserts that fn throws a FrameError (and not some other error), optionally with a given code. */
function throwsFrameError(fn: () => unknown, code?: string, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(
      e instanceof FrameError,
      `expected a FrameError, got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`,
    );
    assert.ok(e.code.length > 0);
    if (code !== undefined) assert.equal(e.code, code, e.message);
    if (message !== undefined) assert.match(e.message, message);
    return true;
  });
}

/** Re-frames a valid message with its header fields patched (undefined deletes a field), keeping its tensors. */
function patched(bytes: Uint8Array, patch: Record<string, unknown>): Uint8Array {
  const { header, tensors } = decodeFrame(bytes);
  const fields: Record<string, unknown> = { ...header };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) delete fields[k];
    else fields[k] = v;
  }
  const type = typeof fields.type === 'string' ? fields.type : 'train';
  delete fields.type;
  delete fields.v;
  return encodeFrame(type, fields, tensors);
}

// ---------- round trips ----------

test('train request round trip', () => {
  for (const mode of ['weights', 'gradient'] as const) {
    const weights = vec(1);
    const d = decodeMessage(layout, encodeTrainRequest(layout, { round: 4, nodeId: 17, mode, config, weights }));
    assert.equal(d.type, 'train');
    if (d.type !== 'train') return;
    assert.deepEqual(d.req, { round: 4, nodeId: 17, mode, config, weights });
    assert.notEqual(d.req.weights.buffer, weights.buffer);
  }
});

test('an adopted frame (transferred from another thread) decodes to the same values, its vector a view into it', () => {
  const reply = {
    round: 9,
    nodeId: 2,
    numExamples: 600,
    steps: 38,
    metrics: { loss: 0.5, accuracy: 0.75 },
    vector: vec(3),
  };
  const frame = encodeTrainReply(layout, reply);
  const d = decodeMessage(layout, adoptFrame(frame));
  assert.deepEqual(d, { type: 'train_result', reply });
  if (d.type !== 'train_result') return;
  assert.equal(d.reply.vector.buffer, frame.buffer);
  const request = encodeTrainRequest(layout, { round: 1, nodeId: 2, mode: 'weights', config, weights: vec(4) });
  const r = decodeMessage(layout, adoptFrame(request));
  assert.ok(r.type === 'train' && r.req.weights.buffer === request.buffer);
  assert.deepEqual(r, decodeMessage(layout, request.slice()));
});

test('evaluate request round trip', () => {
  const weights = vec(2);
  const d = decodeMessage(layout, encodeEvalRequest(layout, { round: 0, nodeId: 3, weights }));
  assert.deepEqual(d, { type: 'evaluate', req: { round: 0, nodeId: 3, weights } });
});

test('train reply round trip', () => {
  const reply = {
    round: 9,
    nodeId: 2,
    numExamples: 600,
    steps: 38,
    metrics: { loss: 0.4375, accuracy: 0.875 },
    vector: vec(3),
  };
  assert.deepEqual(decodeMessage(layout, encodeTrainReply(layout, reply)), { type: 'train_result', reply });
});

test('eval reply round trip', () => {
  const reply = { round: 9, nodeId: 2, numExamples: 100, loss: 1.25, accuracy: 0.5 };
  assert.deepEqual(decodeMessage(layout, encodeEvalReply(reply)), { type: 'eval_result', reply });
});

test('error round trip; long messages are cut to 500 characters', () => {
  assert.deepEqual(decodeMessage(layout, encodeError(5, 6, 'out of memory')), {
    type: 'error',
    round: 5,
    nodeId: 6,
    message: 'out of memory',
  });
  const long = decodeMessage(layout, encodeError(5, 6, 'x'.repeat(5_000_000)));
  assert.ok(long.type === 'error' && long.message === 'x'.repeat(500));
});

test('a NaN or infinite loss stays NaN (JSON carries it as null), it does not become 0', () => {
  const e = decodeMessage(layout, encodeEvalReply({ round: 1, nodeId: 1, numExamples: 10, loss: NaN, accuracy: 0.1 }));
  assert.ok(e.type === 'eval_result' && Number.isNaN(e.reply.loss));
  const t = decodeMessage(
    layout,
    encodeTrainReply(layout, {
      round: 1,
      nodeId: 1,
      numExamples: 10,
      steps: 1,
      metrics: { loss: Infinity, accuracy: 0 },
      vector: vec(0),
    }),
  );
  assert.ok(t.type === 'train_result' && Number.isNaN(t.reply.metrics.loss) && t.reply.metrics.accuracy === 0);
});

test('round trip property over layouts, ids and weights', () => {
  const specsArb = fc.uniqueArray(
    fc.record({
      name: fc.string({ minLength: 1, maxLength: 10 }),
      shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }),
    }),
    { maxLength: 5, selector: (s) => s.name },
  );
  fc.assert(
    fc.property(specsArb, fc.nat(1e6), fc.nat(1e6), fc.nat(1000), (specs, round, nodeId, seed) => {
      const lay = makeLayout(specs);
      const size = lay.reduce((a, s) => a + s.size, 0);
      const w = Float32Array.from({ length: size }, (_, i) => Math.fround(Math.cos(seed + i)));
      assert.deepEqual(decodeMessage(lay, encodeEvalRequest(lay, { round, nodeId, weights: w })), {
        type: 'evaluate',
        req: { round, nodeId, weights: w },
      });
      assert.deepEqual(fromTensors(lay, toTensors(lay, w)), w);
    }),
    { numRuns: 200 },
  );
});

// ---------- fromTensors ----------

test('toTensors gives views with the layout names and shapes', () => {
  const flat = vec(7);
  const ts = toTensors(layout, flat);
  assert.deepEqual(
    ts.map((t) => [t.name, t.dtype, t.shape, t.data.length]),
    [
      ['dense/kernel', 'float32', [3, 2], 6],
      ['dense/bias', 'float32', [2], 2],
      ['scale', 'float32', [], 1],
    ],
  );
  assert.equal(ts[1].data.buffer, flat.buffer);
  assert.equal(ts[1].data[0], flat[6]);
});

test('fromTensors rejects wrong names, order, shapes, dtype, count and sizes with FrameError', () => {
  const good = (): WireTensor[] =>
    toTensors(layout, vec(5)).map((t) => ({ ...t, shape: [...t.shape], data: new Float32Array(t.data) }));
  assert.deepEqual(fromTensors(layout, good()), vec(5));

  const renamed = good();
  renamed[1].name = 'dense/b';
  throwsFrameError(() => fromTensors(layout, renamed), 'bad_tensors', /dense\/b/);

  const swapped = good();
  [swapped[0], swapped[1]] = [swapped[1], swapped[0]];
  throwsFrameError(() => fromTensors(layout, swapped), 'bad_tensors');

  const reshaped = good();
  reshaped[0].shape = [2, 3]; // same size, different shape
  throwsFrameError(() => fromTensors(layout, reshaped), 'bad_tensors', /shape/);

  const flattened = good();
  flattened[0].shape = [6]; // same size, different rank
  throwsFrameError(() => fromTensors(layout, flattened), 'bad_tensors', /shape/);

  const scalarAsVector = good();
  scalarAsVector[2].shape = [1];
  throwsFrameError(() => fromTensors(layout, scalarAsVector), 'bad_tensors', /shape/);

  const ints = good();
  ints[1] = { name: 'dense/bias', dtype: 'int32', shape: [2], data: new Int32Array(2) };
  throwsFrameError(() => fromTensors(layout, ints), 'bad_tensors', /int32/);

  throwsFrameError(() => fromTensors(layout, good().slice(0, 2)), 'bad_tensors', /expected 3/);
  throwsFrameError(
    () => fromTensors(layout, [...good(), { name: 'extra', dtype: 'float32', shape: [1], data: new Float32Array(1) }]),
    'bad_tensors',
  );
  throwsFrameError(() => fromTensors(layout, []), 'bad_tensors');

  // a hand-made tensor whose data does not match its own shape
  const tooLong = good();
  tooLong[1].data = new Float32Array(5);
  throwsFrameError(() => fromTensors(layout, tooLong), 'bad_tensors');
  const tooShort = good();
  tooShort[0].data = new Float32Array(1);
  throwsFrameError(() => fromTensors(layout, tooShort), 'bad_tensors');

  // an empty layout takes exactly no tensors
  assert.deepEqual(fromTensors([], []), new Float32Array(0));
});

test('decodeMessage passes tensor mismatches through as FrameError', () => {
  const other = makeLayout([
    { name: 'dense/kernel', shape: [2, 3] },
    { name: 'dense/bias', shape: [2] },
    { name: 'scale', shape: [] },
  ]);
  throwsFrameError(
    () => decodeMessage(other, encodeEvalRequest(layout, { round: 1, nodeId: 1, weights: vec(1) })),
    'bad_tensors',
  );
  throwsFrameError(
    () =>
      decodeMessage(
        layout,
        encodeFrame('train_result', { round: 1, node: 1, numExamples: 1, steps: 1, metrics: { loss: 0, accuracy: 0 } }),
      ),
    'bad_tensors',
  );
});

// ---------- decodeMessage field validation ----------

test('decodeMessage rejects missing or non-integer round and node, and unknown types', () => {
  const valid = encodeEvalRequest(layout, { round: 1, nodeId: 2, weights: vec(1) });
  assert.equal(decodeMessage(layout, patched(valid, {})).type, 'evaluate'); // the patching itself keeps a frame valid
  for (const key of ['round', 'node']) {
    for (const bad of [undefined, 1.5, '1', null, true, [1], { n: 1 }, 1e400 /* Infinity -> null */]) {
      throwsFrameError(() => decodeMessage(layout, patched(valid, { [key]: bad })), 'bad_field', new RegExp(key));
    }
  }
  for (const type of ['bogus', 'Train', '', 'toString', '__proto__']) {
    throwsFrameError(() => decodeMessage(layout, patched(valid, { type })), 'bad_type');
  }
});

test('decodeMessage rejects train requests without a config or with a bad mode', () => {
  const valid = encodeTrainRequest(layout, { round: 1, nodeId: 2, mode: 'weights', config, weights: vec(1) });
  assert.equal(decodeMessage(layout, patched(valid, {})).type, 'train');
  for (const bad of [undefined, null, 5, 'cfg', true, []]) {
    throwsFrameError(() => decodeMessage(layout, patched(valid, { config: bad })), 'bad_field', /config/);
  }
  for (const bad of [undefined, null, 'Weights', 'delta', 1, ['weights']]) {
    throwsFrameError(() => decodeMessage(layout, patched(valid, { mode: bad })), 'bad_field', /mode/);
  }
});

test('decodeMessage rejects train results with numExamples < 1, bad steps or bad metrics', () => {
  const valid = encodeTrainReply(layout, {
    round: 1,
    nodeId: 2,
    numExamples: 5,
    steps: 3,
    metrics: { loss: 1, accuracy: 0.5 },
    vector: vec(1),
  });
  assert.equal(decodeMessage(layout, patched(valid, {})).type, 'train_result');
  for (const bad of [0, -1, 0.5, 2.5, undefined, '5', null]) {
    throwsFrameError(() => decodeMessage(layout, patched(valid, { numExamples: bad })), 'bad_field', /numExamples/);
  }
  for (const bad of [undefined, 1.5, 'x'])
    throwsFrameError(() => decodeMessage(layout, patched(valid, { steps: bad })), 'bad_field', /steps/);
  for (const bad of [undefined, null, 3, 'm', [0.1, 0.2]])
    throwsFrameError(() => decodeMessage(layout, patched(valid, { metrics: bad })), 'bad_field', /metrics/);
  // values that Number() would silently turn into 0 or NaN, or throw a TypeError on
  for (const bad of [
    { loss: '0.5', accuracy: 1 },
    { loss: [], accuracy: 1 },
    { loss: 1 },
    { loss: { toString: 0 }, accuracy: 1 },
    { loss: 1, accuracy: { valueOf: 1, toString: 2 } },
  ]) {
    throwsFrameError(() => decodeMessage(layout, patched(valid, { metrics: bad })), 'bad_field', /metrics/);
  }
});

test('decodeMessage rejects eval results with bad numbers', () => {
  const valid = encodeEvalReply({ round: 1, nodeId: 2, numExamples: 5, loss: 1, accuracy: 0.5 });
  assert.equal(decodeMessage(layout, patched(valid, {})).type, 'eval_result');
  throwsFrameError(() => decodeMessage(layout, patched(valid, { numExamples: 1.5 })), 'bad_field');
  for (const bad of [undefined, '1', [], { toString: 0 }]) {
    throwsFrameError(() => decodeMessage(layout, patched(valid, { loss: bad })), 'bad_field', /loss/);
    throwsFrameError(() => decodeMessage(layout, patched(valid, { accuracy: bad })), 'bad_field', /accuracy/);
  }
});

test('error messages with a non-text message decode to a fallback, never a TypeError', () => {
  const valid = encodeError(1, 2, 'boom');
  for (const bad of [undefined, null, { toString: 0 }, [{ toString: 0 }], { a: 1 }]) {
    const d = decodeMessage(layout, patched(valid, { message: bad }));
    assert.deepEqual(d, { type: 'error', round: 1, nodeId: 2, message: 'unknown error' });
  }
  const n = decodeMessage(layout, patched(valid, { message: 42 }));
  assert.ok(n.type === 'error' && n.message === '42');
});

test('decodeMessage rejects frames that are not frames', () => {
  throwsFrameError(() => decodeMessage(layout, new Uint8Array(0)), 'truncated');
  throwsFrameError(() => decodeMessage(layout, new TextEncoder().encode('{"type":"train"}')), 'bad_magic');
});

// ---------- fuzzing ----------

function validMessages(seed: number): Uint8Array[] {
  const w = vec(seed);
  return [
    encodeTrainRequest(layout, { round: seed, nodeId: 1, mode: 'gradient', config, weights: w }),
    encodeEvalRequest(layout, { round: seed, nodeId: 2, weights: w }),
    encodeTrainReply(layout, {
      round: seed,
      nodeId: 3,
      numExamples: 7,
      steps: 2,
      metrics: { loss: 0.5, accuracy: 0.25 },
      vector: w,
    }),
    encodeEvalReply({ round: seed, nodeId: 4, numExamples: 9, loss: 0.75, accuracy: 1 }),
    encodeError(seed, 5, 'failed'),
  ];
}

function decodeSafely(bytes: Uint8Array): Decoded | FrameError {
  try {
    const d = decodeMessage(layout, bytes);
    assert.ok(['train', 'evaluate', 'train_result', 'eval_result', 'error'].includes(d.type));
    if (d.type === 'train' || d.type === 'evaluate') assert.equal(d.req.weights.length, SIZE);
    if (d.type === 'train_result') assert.equal(d.reply.vector.length, SIZE);
    return d;
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    assert.ok(
      e instanceof FrameError,
      `expected a FrameError, got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`,
    );
    assert.ok(e.code.length > 0);
    return e;
  }
}

test('fuzz: mutated valid messages decode or throw FrameError, nothing else', () => {
  const messages = [0, 1, 2].flatMap(validMessages);
  const edit = fc.oneof(
    fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.nat(255) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('extend' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  );
  let decoded = 0;
  let rejected = 0;
  fc.assert(
    fc.property(fc.nat(messages.length - 1), fc.array(edit, { minLength: 1, maxLength: 3 }), (which, edits) => {
      let bytes = messages[which].slice();
      for (const e of edits) {
        if (e.kind === 'set') bytes[e.at % bytes.length] = e.value;
        else if (e.kind === 'truncate') bytes = bytes.slice(0, e.at % (bytes.length + 1));
        else {
          const out = new Uint8Array(bytes.length + e.extra.length);
          out.set(bytes);
          out.set(e.extra, bytes.length);
          bytes = out;
        }
        if (bytes.length === 0) break;
      }
      if (decodeSafely(bytes) instanceof FrameError) rejected++;
      else decoded++;
    }),
    { numRuns: 600 },
  );
  assert.ok(decoded > 20 && rejected > 100, `decoded ${decoded}, rejected ${rejected}`);
});

test('fuzz: valid messages with header fields replaced by arbitrary JSON', () => {
  const messages = validMessages(3);
  const keys = [
    'type',
    'round',
    'node',
    'mode',
    'config',
    'numExamples',
    'steps',
    'metrics',
    'loss',
    'accuracy',
    'message',
  ];
  fc.assert(
    fc.property(
      fc.nat(messages.length - 1),
      fc.array(
        fc.tuple(
          fc.constantFrom(...keys),
          fc.oneof(
            fc.jsonValue({ maxDepth: 2 }),
            fc.constantFrom('train', 'evaluate', 'train_result', 'eval_result', 'error', 'weights', 'gradient'),
          ),
        ),
        { minLength: 1, maxLength: 3 },
      ),
      (which, edits) => {
        decodeSafely(patched(messages[which], Object.fromEntries(edits)));
      },
    ),
    { numRuns: 400 },
  );
});
