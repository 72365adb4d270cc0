/**
 * The graph builder the ONNX exporters share (float, weight-only int8, and int8 models from `edgefed
 * quantize`): fresh node and tensor names, initializers, activations, and the Keras-to-ONNX weight layouts.
 *
 * BROWSER-SAFE: imports nothing from Node.
 */
import { DataType, type Attr, type OnnxNode, type OnnxTensor } from './proto.js';
import { quantizePerChannel } from '../../core/quantize.js';

const ACT_OP: Record<string, string | null> = {
  relu: 'Relu',
  sigmoid: 'Sigmoid',
  tanh: 'Tanh',
  linear: null,
  softmax: 'Softmax',
};

const bytesOf = (a: Float32Array | Int32Array | Int8Array): Uint8Array =>
  new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice();

/** Builds the graph one layer at a time; names are unique by a counter. */
export class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  private count = 0;

  /** With int8, weight() stores int8 per channel behind a DequantizeLinear (weight-only QDQ). */
  constructor(private readonly int8 = false) {}

  fresh(base: string): string {
    return `${base}_${this.count++}`;
  }

  op(op: string, inputs: string[], attrs?: Record<string, Attr>, outputs = 1): string[] {
    const outs = Array.from({ length: outputs }, () => this.fresh(op.toLowerCase()));
    this.nodes.push({ op, inputs, outputs: outs, attrs });
    return outs;
  }

  one(op: string, inputs: string[], attrs?: Record<string, Attr>): string {
    return this.op(op, inputs, attrs)[0];
  }

  tensor(name: string, dims: number[], type: number, values: Float32Array | Int32Array | Int8Array): string {
    this.initializers.push({ name, dims, type, raw: bytesOf(values) });
    return name;
  }

  floats(name: string, dims: number[], values: Float32Array): string {
    return this.tensor(name, dims, DataType.FLOAT, values);
  }

  /** A weight matrix in ONNX layout: float, or int8 per channel along `axis` behind a DequantizeLinear. */
  weight(name: string, dims: number[], values: Float32Array, axis: number): string {
    if (!this.int8) return this.floats(name, dims, values);
    const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
    const { q, scales } = quantizePerChannel(values, dims[axis], inner);
    return this.dequantized(name, dims, q, scales, axis);
  }

  /** `name` = DequantizeLinear of int8 / int32 values with one scale per index of `axis` (zero point 0). */
  dequantized(name: string, dims: number[], q: Int8Array | Int32Array, scales: Float32Array, axis: number): string {
    const int8 = q instanceof Int8Array;
    this.tensor(`${name}/q`, dims, int8 ? DataType.INT8 : DataType.INT32, q);
    this.floats(`${name}/scale`, [scales.length], scales);
    const zeros = int8 ? new Int8Array(scales.length) : new Int32Array(scales.length);
    this.tensor(`${name}/zero_point`, [scales.length], int8 ? DataType.INT8 : DataType.INT32, zeros);
    this.nodes.push({
      op: 'DequantizeLinear',
      inputs: [`${name}/q`, `${name}/scale`, `${name}/zero_point`],
      outputs: [name],
      attrs: { axis },
    });
    return name;
  }

  int64s(values: number[]): string {
    const name = this.fresh('const');
    this.initializers.push({
      name,
      dims: [values.length],
      type: DataType.INT64,
      raw: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer),
    });
    return name;
  }

  activation(x: string, act: string): string {
    const op = ACT_OP[act];
    if (op === undefined) throw new Error(`ONNX export: activation '${act}' has no ONNX operator here`);
    if (op === null) return x;
    return this.one(op, [x], op === 'Softmax' ? { axis: -1 } : undefined);
  }
}

/** Transpose permutations between channels-last (the engine's, Keras's) and channels-first (ONNX Conv's). */
export const toChannelsFirst = (rank: number): number[] => (rank === 3 ? [0, 3, 1, 2] : [0, 2, 1]);
export const toChannelsLast = (rank: number): number[] => (rank === 3 ? [0, 2, 3, 1] : [0, 2, 1]);

/** rows x cols (row-major) -> cols x rows. */
export function transpose2(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

/** A Keras kernel [spatial..., cin, cout] as the ONNX weight [cout, cin, spatial...] (any element type). */
export function convWeight<T extends Float32Array | Int8Array>(k: T, spatial: number, cin: number, cout: number): T {
  const out = new (k.constructor as new (n: number) => T)(k.length);
  for (let s = 0; s < spatial; s++) {
    for (let ci = 0; ci < cin; ci++)
      for (let co = 0; co < cout; co++) out[(co * cin + ci) * spatial + s] = k[(s * cin + ci) * cout + co];
  }
  return out;
}

/** Explicit ONNX pads [top, left, bottom, right] of TensorFlow's 'same' / 'valid' (stride s, k x k over h x w). */
export function tfPads(h: number, w: number, k: number, stride: number, padding: 'same' | 'valid'): number[] {
  if (padding === 'valid') return [0, 0, 0, 0];
  const total = (n: number) => Math.max((Math.ceil(n / stride) - 1) * stride + k - n, 0);
  const [th, tw] = [total(h), total(w)];
  return [th >> 1, tw >> 1, th - (th >> 1), tw - (tw >> 1)];
}
