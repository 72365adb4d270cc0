/**
 * ONNX export of the models the engine trains: the same network as the tfjs Keras model (NHWC / [batch,
 * steps, features] inputs, the engine's flat weights), written as an ONNX graph (opset 17) that ONNX
 * Runtime (node, web, gateways) runs. The graph's input `input` is [batch, ...inputShape] float32; its
 * output `output` is what the engine's predict gives: class probabilities (softmax) or regression values.
 *
 * Layer by layer: Dense -> MatMul + Add; Conv2D / MaxPool2D / Conv1D -> the NCHW (NCW) ONNX op between two
 * Transposes, so every tensor between layers stays channels-last and Flatten keeps Keras's order; GRU ->
 * GRU with linear_before_reset = 0 (Keras reset_after = false; both order gates z, r, h); LSTM -> LSTM
 * with the gates reordered from Keras's i, f, c, o to ONNX's i, o, f, c; GlobalAveragePooling1D ->
 * ReduceMean; LayerNormalization -> LayerNormalization; Embedding -> Cast + Gather; Dropout -> nothing;
 * DepthwiseConv2D, SeparableConv2D, BatchNormalization and GlobalAveragePooling2D as vision.ts says.
 *
 * With `int8`, every weight matrix is stored as int8 with one scale per output channel (core/quantize.ts)
 * and a DequantizeLinear node (QDQ form, weight-only: activations stay float), so the file is about a
 * quarter of the float one and runtimes that fuse QDQ can run integer kernels; biases stay float.
 *
 * BROWSER-SAFE: imports nothing from Node.
 */
import { DataType, encodeModel, type Attr, type OnnxGraph } from './proto.js';
import type { ModelSpec } from '../spec.js';
import { seqTensorSpecs, seqUnsupportedReason } from '../../nn/seqnet.js';
import { convWeight, GraphBuilder, toChannelsFirst, toChannelsLast, transpose2 } from './graph.js';
import { visionLayer } from './vision.js';

export const ONNX_OPSET = 17;

const RNN_ACT: Record<string, string> = { tanh: 'Tanh', relu: 'Relu', sigmoid: 'Sigmoid', hardSigmoid: 'HardSigmoid' };

/** Reorders the G blocks of U columns of a [rows, G * U] matrix by `order` (new block j = old block order[j]). */
function gateColumns(a: Float32Array, rows: number, units: number, order: number[]): Float32Array {
  const G = order.length;
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) {
    order.forEach((from, to) =>
      out.set(a.subarray(r * G * units + from * units, r * G * units + (from + 1) * units), r * G * units + to * units),
    );
  }
  return out;
}

/** The ONNX graph of a model the engine runs, with these weights (flat, tfjs order). */
export function onnxGraph(spec: ModelSpec, weights: Float32Array, options: { int8?: boolean } = {}): OnnxGraph {
  const reason = seqUnsupportedReason(spec);
  if (reason) throw new Error(`ONNX export covers the models the engine trains; ${spec.name} is not one: ${reason}`);
  const tensors = seqTensorSpecs(spec);
  const total = tensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
  if (weights.length !== total)
    throw new Error(`ONNX export: weights have ${weights.length} values, the model needs ${total}`);
  // Trainable tensors come in layer order; non-trainable state (moving statistics) after all of them.
  const byName = new Map<string, Float32Array>();
  let offset = 0;
  for (const t of tensors) {
    const size = t.shape.reduce((x, y) => x * y, 1);
    byName.set(t.name, weights.subarray(offset, offset + size));
    offset += size;
  }
  let next = 0;
  const take = (): Float32Array => byName.get(tensors[next++].name)!;
  const state = (name: string): Float32Array => {
    const v = byName.get(name);
    if (!v) throw new Error(`ONNX export: the model has no tensor '${name}'`);
    return v;
  };
  const b = new GraphBuilder(options.int8 === true);
  let x = 'input';
  let shape = [...spec.inputShape];
  for (const l of spec.layers) {
    switch (l.type) {
      case 'flatten':
        if (shape.length > 1) x = b.one('Flatten', [x], { axis: 1 });
        shape = [shape.reduce((p, q) => p * q, 1)];
        break;
      case 'dropout':
        break;
      case 'dense': {
        const k = b.weight(`${l.name}/kernel`, [shape[0], l.units], take(), 1);
        const bias = b.floats(`${l.name}/bias`, [l.units], take());
        x = b.activation(b.one('Add', [b.one('MatMul', [x, k]), bias]), l.activation);
        shape = [l.units];
        break;
      }
      case 'conv2d':
      case 'conv1d': {
        const rank = l.type === 'conv2d' ? 3 : 2;
        const cin = shape[rank - 1];
        const k = l.kernelSize;
        const spatial = rank === 3 ? k * k : k;
        const w = b.weight(
          `${l.name}/kernel`,
          [l.filters, cin, ...(rank === 3 ? [k, k] : [k])],
          convWeight(take(), spatial, cin, l.filters),
          0,
        );
        const bias = b.floats(`${l.name}/bias`, [l.filters], take());
        const before = l.padding === 'same' ? (k - 1) >> 1 : 0;
        const after = l.padding === 'same' ? k - 1 - before : 0;
        const pads = rank === 3 ? [before, before, after, after] : [before, after];
        const conv = b.one('Conv', [b.one('Transpose', [x], { perm: toChannelsFirst(rank) }), w, bias], {
          kernel_shape: rank === 3 ? [k, k] : [k],
          pads,
        });
        x = b.activation(b.one('Transpose', [conv], { perm: toChannelsLast(rank) }), l.activation);
        const out = (d: number) => (l.padding === 'same' ? d : d - k + 1);
        shape = rank === 3 ? [out(shape[0]), out(shape[1]), l.filters] : [out(shape[0]), l.filters];
        break;
      }
      case 'maxpool2d': {
        const p = l.poolSize;
        const pool = b.one('MaxPool', [b.one('Transpose', [x], { perm: toChannelsFirst(3) })], {
          kernel_shape: [p, p],
          strides: [p, p],
        });
        x = b.one('Transpose', [pool], { perm: toChannelsLast(3) });
        shape = [Math.floor(shape[0] / p), Math.floor(shape[1] / p), shape[2]];
        break;
      }
      case 'gru':
      case 'lstm': {
        const [steps, features] = shape;
        const U = l.units;
        const gates = l.type === 'gru' ? 3 : 4;
        // Keras GRU z, r, h = ONNX z, r, h; Keras LSTM i, f, c, o -> ONNX i, o, f, c.
        const order = l.type === 'gru' ? [0, 1, 2] : [0, 3, 1, 2];
        const act = RNN_ACT[l.activation];
        if (l.activation === 'linear' || !act)
          throw new Error(
            `ONNX export: ${l.type} '${l.name}' has activation '${l.activation}' (tanh, relu or sigmoid export)`,
          );
        const W = b.weight(
          `${l.name}/W`,
          [1, gates * U, features],
          transpose2(gateColumns(take(), features, U, order), features, gates * U),
          1,
        );
        const R = b.weight(
          `${l.name}/R`,
          [1, gates * U, U],
          transpose2(gateColumns(take(), U, U, order), U, gates * U),
          1,
        );
        const bias = new Float32Array(2 * gates * U);
        bias.set(gateColumns(take(), 1, U, order));
        const B = b.floats(`${l.name}/B`, [1, 2 * gates * U], bias);
        const rec = RNN_ACT[l.recurrentActivation];
        const activations = l.type === 'gru' ? [rec, act] : [rec, act, act];
        const attrs: Record<string, Attr> = { hidden_size: U, activations: { strings: activations } };
        const seq = b.one('Transpose', [x], { perm: [1, 0, 2] });
        const [y, yh] = b.op(l.type === 'gru' ? 'GRU' : 'LSTM', [seq, W, R, B], attrs, l.type === 'gru' ? 2 : 3);
        if (l.returnSequences) {
          x = b.one('Transpose', [b.one('Squeeze', [y, b.int64s([1])])], { perm: [1, 0, 2] });
          shape = [steps, U];
        } else {
          x = b.one('Squeeze', [yh, b.int64s([0])]);
          shape = [U];
        }
        break;
      }
      case 'globalavgpool1d':
        x = b.one('ReduceMean', [x], { axes: [1], keepdims: 0 });
        shape = [shape[1]];
        break;
      case 'layernorm': {
        const F = shape[shape.length - 1];
        const gamma = b.floats(`${l.name}/gamma`, [F], take());
        const beta = b.floats(`${l.name}/beta`, [F], take());
        x = b.one('LayerNormalization', [x, gamma, beta], { axis: -1, epsilon: { float: l.epsilon } });
        break;
      }
      case 'depthwiseconv2d':
      case 'separableconv2d':
      case 'batchnorm':
      case 'globalavgpool2d':
        ({ x, shape } = visionLayer(b, l, x, shape, { take, state }));
        break;
      case 'embedding': {
        const table = b.weight(`${l.name}/embeddings`, [l.inputDim, l.outputDim], take(), 1);
        x = b.one('Gather', [table, b.one('Cast', [x], { to: DataType.INT64 })], { axis: 0 });
        shape = [shape[0], l.outputDim];
        break;
      }
    }
  }
  const last = b.nodes[b.nodes.length - 1];
  last.outputs[0] = 'output';
  return {
    name: spec.name.replace(/[^A-Za-z0-9_]/g, '_'),
    nodes: b.nodes,
    initializers: b.initializers,
    inputs: [{ name: 'input', type: DataType.FLOAT, dims: ['batch', ...spec.inputShape] }],
    outputs: [{ name: 'output', type: DataType.FLOAT, dims: ['batch', ...shape] }],
  };
}

/** The serialized ONNX model (a .onnx file's bytes). */
export function exportOnnx(spec: ModelSpec, weights: Float32Array, options: { int8?: boolean } = {}): Uint8Array {
  return encodeModel(onnxGraph(spec, weights, options), ONNX_OPSET, 'EdgeFed');
}
