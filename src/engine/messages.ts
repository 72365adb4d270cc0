/**
 * The messages between coordinator and nodes, as wire frames. Both transports (worker threads and the
 * network) carry exactly these bytes, so bytes sent and received are measured the same way in both.
 */
import {
  decodeFrame,
  encodeFrame,
  encodeFrameBody,
  encodeFrameHead,
  FrameError,
  type WireTensor,
} from '../core/wire.js';
import type { TensorSlot } from '../core/params.js';
import type { Metrics, TrainConfig } from '../model/trainer.js';
import {
  checkCompressionSpec,
  decompressVector,
  type CompressedTensor,
  type CompressionSpec,
} from '../core/compress-update.js';
import { compressedToTensors, tensorsToCompressed } from './compressed-tensors.js';

export interface TrainRequest {
  round: number;
  nodeId: number;
  mode: 'weights' | 'gradient';
  config: TrainConfig;
  weights: Float32Array;
  /** Secure aggregation: the session settings (validated node-side by secure-messages.ts); absent = plaintext. */
  secagg?: unknown;
  /** SCAFFOLD: the server control variate c, one more set of tensors after the weights. */
  control?: Float32Array;
}

export interface EvalRequest {
  round: number;
  nodeId: number;
  weights: Float32Array;
}

export interface TrainReply {
  round: number;
  nodeId: number;
  numExamples: number;
  steps: number;
  metrics: Metrics;
  vector: Float32Array;
  /** Set when the update arrived compressed: the spec it was decoded with (vector is then local - global when spec.delta). */
  compression?: CompressionSpec;
  /** SCAFFOLD: the node's control delta c_i+ - c_i, the extra upload (plain float32 tensors after the update). */
  controlDelta?: Float32Array;
}

export interface EvalReply extends Metrics {
  round: number;
  nodeId: number;
  numExamples: number;
  /** FedPer: the node's personalised model (its own head) on the same held-out split. */
  personal?: Metrics;
}

/** The flat vector as named tensors (views, no copy). */
export function toTensors(layout: readonly TensorSlot[], flat: Float32Array): WireTensor[] {
  return layout.map((slot) => ({
    name: slot.name,
    dtype: 'float32',
    shape: slot.shape,
    data: flat.subarray(slot.offset, slot.offset + slot.size),
  }));
}

/** Named tensors back to the flat vector, checking names, shapes and order against the layout. */
export function fromTensors(layout: readonly TensorSlot[], tensors: readonly WireTensor[]): Float32Array {
  if (tensors.length !== layout.length)
    throw new FrameError('bad_tensors', `expected ${layout.length} tensors, got ${tensors.length}`);
  const size = layout.length === 0 ? 0 : layout[layout.length - 1].offset + layout[layout.length - 1].size;
  layout.forEach((slot, i) => {
    const tensor = tensors[i];
    if (typeof tensor !== 'object' || tensor === null) throw new FrameError('bad_tensors', `tensor ${i} is missing`);
    if (tensor.name !== slot.name)
      throw new FrameError('bad_tensors', `tensor ${i} is '${tensor.name}', expected '${slot.name}'`);
    if (tensor.dtype !== 'float32')
      throw new FrameError('bad_tensors', `tensor ${tensor.name} is ${tensor.dtype}, expected float32`);
    if (tensor.shape.length !== slot.shape.length || tensor.shape.some((d, j) => d !== slot.shape[j])) {
      throw new FrameError(
        'bad_tensors',
        `tensor ${tensor.name} has shape [${tensor.shape.join(',')}], expected [${slot.shape.join(',')}]`,
      );
    }
    if (tensor.data.length !== slot.size)
      throw new FrameError(
        'bad_tensors',
        `tensor ${tensor.name} holds ${tensor.data.length} values, expected ${slot.size}`,
      );
  });
  // Tensors decoded as views of one adopted frame (adoptFrame) lie back to back in layout order: the flat vector
  // is a view too.
  const first = tensors[0]?.data;
  if (
    first &&
    tensors.every(
      (t, i) => t.data.buffer === first.buffer && t.data.byteOffset === first.byteOffset + 4 * layout[i].offset,
    )
  )
    return new Float32Array(first.buffer, first.byteOffset, size);
  const out = new Float32Array(size);
  layout.forEach((slot, i) => out.set(tensors[i].data as Float32Array, slot.offset));
  return out;
}

/** Prefix of the names of a control variate's tensors (SCAFFOLD), which follow the model's tensors in a frame. */
const CONTROL = 'control/';

function controlTensors(layout: readonly TensorSlot[], control: Float32Array | undefined): WireTensor[] {
  return control ? toTensors(layout, control).map((t) => ({ ...t, name: CONTROL + t.name })) : [];
}

/** Splits a frame's tensors into the model's and, when the header says `control: true`, the control variate's. */
function splitControl(
  layout: readonly TensorSlot[],
  h: Record<string, unknown>,
  tensors: readonly WireTensor[],
): [WireTensor[], Float32Array | undefined] {
  if (h.control === undefined) return [[...tensors], undefined];
  if (h.control !== true) throw new FrameError('bad_field', "field 'control' must be true when present");
  if (tensors.length !== 2 * layout.length) {
    throw new FrameError(
      'bad_tensors',
      `a frame with a control variate holds ${2 * layout.length} tensors, got ${tensors.length}`,
    );
  }
  const own = tensors.slice(tensors.length - layout.length);
  const renamed = own.map((tensor) => {
    if (typeof tensor !== 'object' || tensor === null || !String(tensor.name).startsWith(CONTROL)) {
      throw new FrameError('bad_tensors', `the control variate's tensors must be named '${CONTROL}<tensor>'`);
    }
    return { ...tensor, name: tensor.name.slice(CONTROL.length) };
  });
  return [tensors.slice(0, tensors.length - layout.length), fromTensors(layout, renamed)];
}

/** A train request's header fields and tensors (the weights, then the control variate's when there is one). */
function trainRequestParts(
  layout: readonly TensorSlot[],
  request: TrainRequest,
): [Record<string, unknown>, WireTensor[]] {
  const secagg = request.secagg === undefined ? {} : { secagg: request.secagg };
  const control = request.control ? { control: true } : {};
  return [
    { round: request.round, node: request.nodeId, mode: request.mode, config: request.config, ...secagg, ...control },
    [...toTensors(layout, request.weights), ...controlTensors(layout, request.control)],
  ];
}

export function encodeTrainRequest(layout: readonly TensorSlot[], request: TrainRequest): Uint8Array {
  return encodeFrame('train', ...trainRequestParts(layout, request));
}

/**
 * encodeTrainRequest's frame in two parts (encodeFrameHead): the node's own head, then trainRequestBody of the
 * same weights and control variate, which every node of a round shares. head + body = encodeTrainRequest.
 */
export function encodeTrainRequestHead(layout: readonly TensorSlot[], request: TrainRequest): Uint8Array {
  return encodeFrameHead('train', ...trainRequestParts(layout, request));
}

/** The tensor bytes of a train request with these weights and control variate (see encodeTrainRequestHead). */
export function trainRequestBody(
  layout: readonly TensorSlot[],
  weights: Float32Array,
  control?: Float32Array,
): Uint8Array {
  return encodeFrameBody([...toTensors(layout, weights), ...controlTensors(layout, control)]);
}

export function encodeEvalRequest(layout: readonly TensorSlot[], request: EvalRequest): Uint8Array {
  return encodeFrame('evaluate', { round: request.round, node: request.nodeId }, toTensors(layout, request.weights));
}

export function encodeTrainReply(layout: readonly TensorSlot[], reply: TrainReply): Uint8Array {
  const control = reply.controlDelta ? { control: true } : {};
  return encodeFrame(
    'train_result',
    {
      round: reply.round,
      node: reply.nodeId,
      numExamples: reply.numExamples,
      steps: reply.steps,
      metrics: reply.metrics,
      ...control,
    },
    [...toTensors(layout, reply.vector), ...controlTensors(layout, reply.controlDelta)],
  );
}

/** A train reply whose update travels compressed (the header names the spec; compressed-tensors.ts the layout). */
export function encodeCompressedTrainReply(
  layout: readonly TensorSlot[],
  r: Omit<TrainReply, 'vector' | 'compression'>,
  spec: CompressionSpec,
  parts: readonly CompressedTensor[],
): Uint8Array {
  return encodeFrame(
    'train_result',
    {
      round: r.round,
      node: r.nodeId,
      numExamples: r.numExamples,
      steps: r.steps,
      metrics: r.metrics,
      compression: spec,
    },
    compressedToTensors(layout, parts),
  );
}

/** The dense update of a train result: plain float32 tensors, or compressed ones checked and decoded. */
function trainVector(
  layout: readonly TensorSlot[],
  h: Record<string, unknown>,
  tensors: Parameters<typeof fromTensors>[1],
): { vector: Float32Array; compression?: CompressionSpec } {
  if (h.compression === undefined) return { vector: fromTensors(layout, tensors) };
  let spec: CompressionSpec;
  try {
    spec = checkCompressionSpec(h.compression);
  } catch (e) {
    throw new FrameError('bad_field', (e as Error).message);
  }
  const parts = tensorsToCompressed(layout, spec, tensors);
  try {
    return { vector: decompressVector(spec, layout, parts), compression: spec };
  } catch (e) {
    throw new FrameError('bad_tensors', (e as Error).message);
  }
}

export function encodeEvalReply(reply: EvalReply): Uint8Array {
  const personal = reply.personal ? { personal: { loss: reply.personal.loss, accuracy: reply.personal.accuracy } } : {};
  return encodeFrame('eval_result', {
    round: reply.round,
    node: reply.nodeId,
    numExamples: reply.numExamples,
    loss: reply.loss,
    accuracy: reply.accuracy,
    ...personal,
  });
}

export function encodeError(round: number, nodeId: number, message: string): Uint8Array {
  // The decoder keeps 500 characters; cutting here too keeps a huge message from overflowing the header limit.
  return encodeFrame('error', { round, node: nodeId, message: String(message).slice(0, 500) });
}

function num(h: Record<string, unknown>, key: string, integer = false): number {
  const v = h[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || (integer && !Number.isInteger(v))) {
    throw new FrameError('bad_field', `field '${key}' must be a finite ${integer ? 'whole ' : ''}number`);
  }
  return v;
}

/** A loss or accuracy: a number, or null, which is how JSON carries NaN and +-Infinity (decoded as NaN, not 0). */
function metric(v: unknown, key: string): number {
  if (v === null) return NaN;
  if (typeof v !== 'number') throw new FrameError('bad_field', `field '${key}' must be a number`);
  return v;
}

export type Decoded =
  | { type: 'train'; req: TrainRequest }
  | { type: 'evaluate'; req: EvalRequest }
  | { type: 'train_result'; reply: TrainReply }
  | { type: 'eval_result'; reply: EvalReply }
  | { type: 'error'; round: number; nodeId: number; message: string };

/** Decodes any coordinator/node message, validating every field it uses. */
export function decodeMessage(layout: readonly TensorSlot[], bytes: Uint8Array): Decoded {
  const { header: h, tensors } = decodeFrame(bytes);
  const round = num(h, 'round', true);
  const nodeId = num(h, 'node', true);
  switch (h.type) {
    case 'train': {
      if (h.mode !== 'weights' && h.mode !== 'gradient')
        throw new FrameError('bad_field', `mode must be weights or gradient`);
      if (typeof h.config !== 'object' || h.config === null || Array.isArray(h.config))
        throw new FrameError('bad_field', 'train request has no config');
      const secagg = h.secagg === undefined ? {} : { secagg: h.secagg };
      const [model, control] = splitControl(layout, h, tensors);
      return {
        type: 'train',
        req: {
          round,
          nodeId,
          mode: h.mode,
          config: h.config as TrainConfig,
          weights: fromTensors(layout, model),
          ...secagg,
          ...(control ? { control } : {}),
        },
      };
    }
    case 'evaluate':
      return { type: 'evaluate', req: { round, nodeId, weights: fromTensors(layout, tensors) } };
    case 'train_result': {
      const m = h.metrics as Record<string, unknown> | undefined;
      if (typeof m !== 'object' || m === null || Array.isArray(m))
        throw new FrameError('bad_field', 'train result has no metrics');
      const numExamples = num(h, 'numExamples', true);
      if (numExamples < 1) throw new FrameError('bad_field', 'numExamples must be >= 1');
      if (h.control !== undefined && h.compression !== undefined)
        throw new FrameError('bad_field', 'a control delta travels with uncompressed updates only');
      const [update, controlDelta] = splitControl(layout, h, tensors);
      return {
        type: 'train_result',
        reply: {
          round,
          nodeId,
          numExamples,
          steps: num(h, 'steps', true),
          metrics: { loss: metric(m.loss, 'metrics.loss'), accuracy: metric(m.accuracy, 'metrics.accuracy') },
          ...trainVector(layout, h, update),
          ...(controlDelta ? { controlDelta } : {}),
        },
      };
    }
    case 'eval_result': {
      const p = h.personal as Record<string, unknown> | undefined;
      if (p !== undefined && (typeof p !== 'object' || p === null || Array.isArray(p)))
        throw new FrameError('bad_field', "field 'personal' must be an object");
      const personal = p
        ? { personal: { loss: metric(p.loss, 'personal.loss'), accuracy: metric(p.accuracy, 'personal.accuracy') } }
        : {};
      return {
        type: 'eval_result',
        reply: {
          round,
          nodeId,
          numExamples: num(h, 'numExamples', true),
          loss: metric(h.loss, 'loss'),
          accuracy: metric(h.accuracy, 'accuracy'),
          ...personal,
        },
      };
    }
    case 'error':
      // Only primitives are turned into text: String() of a JSON object with a non-callable toString throws a TypeError.
      return {
        type: 'error',
        round,
        nodeId,
        message: (['string', 'number', 'boolean'].includes(typeof h.message)
          ? String(h.message)
          : 'unknown error'
        ).slice(0, 500),
      };
    default:
      throw new FrameError('bad_type', `unknown message type '${String(h.type)}'`);
  }
}
