/**
 * ONNX export of an int8 model from `edgefed quantize` (core/int8-net.ts) in QDQ form, the form ONNX
 * Runtime (node and web, opset 13+ for per-axis DequantizeLinear) fuses into its integer kernels:
 *   - every activation the int8 network holds as int8 is a QuantizeLinear -> DequantizeLinear pair with
 *     the calibrated per-tensor scale and zero point (the input, each hidden layer's output);
 *   - weights are int8 initializers (the int8 model's own bytes) behind a per-axis DequantizeLinear with
 *     the per-output-channel scales; biases are int32 behind a DequantizeLinear whose scales are input
 *     scale x weight scale, so int32 accumulator plus bias is what the int8 network sums;
 *   - ReLU sits between the layer and its QuantizeLinear (a clamp at the zero point, as the int8 network
 *     fuses it); MaxPool2D is followed by a QDQ pair with its input's parameters (exact: a max of values on
 *     the grid stays on it); the last layer's output is dequantised and its activation applied in float.
 * Layout as the float exporter: tensors between layers are channels last, Conv and MaxPool run channels
 * first between Transposes (a Transpose commutes with QuantizeLinear / DequantizeLinear exactly).
 *
 * BROWSER-SAFE: imports nothing from Node.
 */
import { DataType, encodeModel, type OnnxGraph } from './proto.js';
import { convWeight, GraphBuilder, tfPads, toChannelsFirst, toChannelsLast } from './graph.js';
import type { ActivationQuant, Int8Net, Int8Op } from '../../core/int8-net.js';

/** QDQ needs opset 13 (per-axis DequantizeLinear); 17 as the float export, which ONNX Runtime 1.30 runs. */
export const INT8_ONNX_OPSET = 17;

const INT8_OPS = ['dense', 'conv2d', 'maxpool2d'];
const HIDDEN = ['relu', 'linear'];
const OUTPUT = ['softmax', 'sigmoid', 'tanh', 'linear', 'relu'];

/** x -> QuantizeLinear -> DequantizeLinear with one scale and zero point (float scalars, int8 zero point). */
function fakeQuant(b: GraphBuilder, x: string, q: ActivationQuant): string {
  const scale = b.floats(b.fresh('act_scale'), [], Float32Array.of(q.scale));
  const zero = b.tensor(b.fresh('act_zero_point'), [], DataType.INT8, Int8Array.of(q.zeroPoint));
  return b.one('DequantizeLinear', [b.one('QuantizeLinear', [x, scale, zero]), scale, zero]);
}

const size = (shape: readonly number[]) => shape.reduce((a, c) => a * c, 1);

/** Why the exporter cannot write this int8 network (a corrupt or foreign manifest), or null. */
export function int8OnnxProblem(net: Int8Net): string | null {
  const q = (v: ActivationQuant | undefined) =>
    v !== undefined &&
    Number.isFinite(v.scale) &&
    v.scale > 0 &&
    Number.isInteger(v.zeroPoint) &&
    v.zeroPoint >= -128 &&
    v.zeroPoint <= 127;
  if (!Array.isArray(net.inputShape) || !net.inputShape.every((d) => Number.isInteger(d) && d > 0))
    return `input shape [${String(net.inputShape)}] is not a list of positive whole numbers`;
  if (!q(net.input)) return 'the input quantisation (scale, zero point) is missing or out of range';
  if (!Array.isArray(net.ops) || net.ops.length === 0) return 'the network has no layers';
  let shape = [...net.inputShape];
  for (const [i, op] of net.ops.entries()) {
    const at = `layer ${i} ('${String(op?.name)}', ${String(op?.type)})`;
    if (!INT8_OPS.includes(op?.type)) return `${at}: int8 ONNX export writes ${INT8_OPS.join(', ')} layers`;
    const last = i === net.ops.length - 1;
    if (op.type === 'maxpool2d') {
      if (shape.length !== 3 || String(op.inShape) !== String(shape)) return `${at}: input shape does not chain`;
      shape = [Math.floor(shape[0] / op.poolSize), Math.floor(shape[1] / op.poolSize), shape[2]];
      continue;
    }
    if (!(last ? OUTPUT : HIDDEN).includes(op.activation))
      return `${at}: activation '${op.activation}' is not supported`;
    if (last === (op.output !== undefined)) return `${at}: only the last layer has a float output`;
    if (!last && !q(op.output)) return `${at}: its output quantisation is missing or out of range`;
    const channels = op.type === 'dense' ? op.units : op.filters;
    const fanIn = op.type === 'dense' ? op.inputSize : op.kernelSize * op.kernelSize * op.inShape[2];
    if (op.type === 'dense' && op.inputSize !== size(shape))
      return `${at}: takes ${op.inputSize} inputs, gets ${size(shape)}`;
    if (op.type === 'conv2d' && (shape.length !== 3 || String(op.inShape) !== String(shape)))
      return `${at}: input shape [${String(op.inShape)}] does not chain from [${shape.join(', ')}]`;
    if (op.kernel.length !== fanIn * channels || op.bias.length !== channels || op.weightScales.length !== channels)
      return `${at}: kernel, bias or scales have the wrong length for ${channels} channels`;
    if (op.type === 'dense') shape = [op.units];
    else {
      const k = op.padding === 'same' ? 0 : op.kernelSize - 1;
      shape = [shape[0] - k, shape[1] - k, op.filters];
    }
  }
  if (shape.length !== 1 || shape[0] !== net.outputSize)
    return `the output has shape [${shape}], not [${net.outputSize}]`;
  return null;
}

/** The QDQ ONNX graph of an int8 network. */
export function int8OnnxGraph(net: Int8Net, name = 'int8'): OnnxGraph {
  const problem = int8OnnxProblem(net);
  if (problem) throw new Error(`int8 ONNX export: ${problem}`);
  const b = new GraphBuilder();
  let x = fakeQuant(b, 'input', net.input);
  let quant = net.input;
  let shape = [...net.inputShape];
  for (const op of net.ops) x = int8Layer(b, op, x, shape, quant, (s, q) => ([shape, quant] = [s, q ?? quant]));
  b.nodes[b.nodes.length - 1].outputs[0] = 'output';
  return {
    name: name.replace(/[^A-Za-z0-9_]/g, '_'),
    nodes: b.nodes,
    initializers: b.initializers,
    inputs: [{ name: 'input', type: DataType.FLOAT, dims: ['batch', ...net.inputShape] }],
    outputs: [{ name: 'output', type: DataType.FLOAT, dims: ['batch', net.outputSize] }],
  };
}

/** One int8 layer after the dequantised `x`; reports its output shape and quantisation through `next`. */
function int8Layer(
  b: GraphBuilder,
  op: Int8Op,
  x: string,
  shape: number[],
  quant: ActivationQuant,
  next: (shape: number[], quant?: ActivationQuant) => void,
): string {
  if (op.type === 'maxpool2d') {
    const p = op.poolSize;
    const pool = b.one('MaxPool', [b.one('Transpose', [x], { perm: toChannelsFirst(3) })], {
      kernel_shape: [p, p],
      strides: [p, p],
    });
    next([Math.floor(shape[0] / p), Math.floor(shape[1] / p), shape[2]]);
    return b.one('Transpose', [fakeQuant(b, pool, quant)], { perm: toChannelsLast(3) });
  }
  const channels = op.type === 'dense' ? op.units : op.filters;
  const biasScales = Float32Array.from(op.weightScales, (s) => quant.scale * s);
  const bias = b.dequantized(`${op.name}/bias`, [channels], op.bias, biasScales, 0);
  let y: string;
  let outShape: number[];
  if (op.type === 'dense') {
    const flat = shape.length > 1 ? b.one('Flatten', [x], { axis: 1 }) : x;
    const w = b.dequantized(`${op.name}/kernel`, [op.inputSize, channels], op.kernel, op.weightScales, 1);
    y = b.one('Add', [b.one('MatMul', [flat, w]), bias]);
    outShape = [channels];
  } else {
    const k = op.kernelSize;
    const [h, wd, c] = op.inShape;
    const kernel = convWeight(op.kernel, k * k, c, channels);
    const w = b.dequantized(`${op.name}/kernel`, [channels, c, k, k], kernel, op.weightScales, 0);
    y = b.one('Conv', [b.one('Transpose', [x], { perm: toChannelsFirst(3) }), w, bias], {
      kernel_shape: [k, k],
      pads: tfPads(h, wd, k, 1, op.padding),
    });
    const cut = op.padding === 'same' ? 0 : k - 1;
    outShape = [h - cut, wd - cut, channels];
  }
  if (!op.output) {
    next(outShape);
    return b.activation(y, op.activation);
  }
  next(outShape, op.output);
  const q = fakeQuant(b, b.activation(y, op.activation), op.output);
  return op.type === 'conv2d' ? b.one('Transpose', [q], { perm: toChannelsLast(3) }) : q;
}

/** The serialized QDQ ONNX model of an int8 network. */
export function exportInt8Onnx(net: Int8Net, name?: string): Uint8Array {
  return encodeModel(int8OnnxGraph(net, name), INT8_ONNX_OPSET, 'EdgeFed');
}
