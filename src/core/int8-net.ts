/**
 * Integer inference for serving on small devices: a network of Dense, Conv2D (stride 1), MaxPool2D, Flatten
 * and Dropout layers run on int8 tensors, as TFLite and ONNX Runtime's QLinear kernels do:
 *   - weights: int8, symmetric, one scale per output channel (core/quantize.ts), zero point 0;
 *   - activations: int8, asymmetric, one scale and zero point per tensor, fixed by calibration on sample
 *     data (observed min and max, widened to include 0 so that 0 and ReLU's floor are exact);
 *   - bias: int32 in the accumulator's scale (input scale x weight scale);
 *   - each output: an int32 sum of (x - zero point) * w plus the bias, then requantised to the next layer's
 *     int8 (acc * inputScale * weightScale / outputScale, rounded, plus the zero point, clamped; ReLU fused
 *     as a clamp at the zero point). The last layer's accumulator is dequantised to float and its activation
 *     (softmax, sigmoid, tanh, linear) applied in float, so the answer is probabilities or values as the
 *     float model's.
 * Calibration runs layer by layer through the int8 network itself, so each layer's output range is measured
 * on the inputs the int8 layer will really see. Pure: typed arrays in and out, no I/O.
 */
import { quantizePerChannel } from './quantize.js';

/**
 * A layer as the engine's specs give it (nn/seqnet.ts SeqLayer); int8 inference runs flatten, dropout,
 * dense (units), conv2d (filters, kernelSize, padding) and maxpool2d (poolSize).
 */
export interface Int8SourceLayer {
  type: string;
  name: string;
  units?: number;
  filters?: number;
  kernelSize?: number;
  poolSize?: number;
  activation?: string;
  padding?: 'same' | 'valid';
}

/** real = scale * (q - zeroPoint), q in [-128, 127]. */
export interface ActivationQuant {
  scale: number;
  zeroPoint: number;
}

interface WeightedOp {
  name: string;
  activation: string;
  /** int8 kernel in the tfjs layout: Dense [in, units], Conv2D [k, k, cin, filters]. */
  kernel: Int8Array;
  weightScales: Float32Array;
  bias: Int32Array;
  /** The int8 output's quantisation; absent on the last layer, whose output is float. */
  output?: ActivationQuant;
}
export type Int8Op =
  | (WeightedOp & { type: 'dense'; inputSize: number; units: number })
  | (WeightedOp & {
      type: 'conv2d';
      inShape: [number, number, number];
      filters: number;
      kernelSize: number;
      padding: 'same' | 'valid';
    })
  | { type: 'maxpool2d'; name: string; inShape: [number, number, number]; poolSize: number };

export interface Int8Net {
  inputShape: number[];
  input: ActivationQuant;
  ops: Int8Op[];
  outputSize: number;
}

const HIDDEN_ACTIVATIONS = ['relu', 'linear'];
const OUTPUT_ACTIVATIONS = ['softmax', 'sigmoid', 'tanh', 'linear', 'relu'];

/** Why int8 inference cannot run this network, or null when it can. */
export function int8UnsupportedReason(
  inputShape: readonly number[],
  layers: readonly Int8SourceLayer[],
): string | null {
  const weighted = layers.filter((l) => l.type === 'dense' || l.type === 'conv2d');
  const last = weighted.at(-1);
  if (!last || last.type !== 'dense' || layers.indexOf(last) !== layers.length - 1)
    return 'int8 serving needs a network that ends in a Dense layer';
  for (const l of layers) {
    if (!['flatten', 'dropout', 'dense', 'conv2d', 'maxpool2d'].includes(l.type))
      return `layer '${l.name}' is ${l.type}; int8 serving runs Dense, Conv2D, MaxPool2D, Flatten and Dropout only`;
    const act = l.activation;
    if (act !== undefined && l !== last && !HIDDEN_ACTIVATIONS.includes(act))
      return `layer '${l.name}' has activation ${act}; int8 hidden layers take relu or linear`;
    if (act !== undefined && l === last && !OUTPUT_ACTIVATIONS.includes(act))
      return `layer '${l.name}' has activation ${act}; the int8 output layer takes ${OUTPUT_ACTIVATIONS.join(', ')}`;
  }
  if (layers.some((l) => l.type === 'conv2d' || l.type === 'maxpool2d') && inputShape.length !== 3)
    return `Conv2D and MaxPool2D need image inputs [h, w, c], got [${inputShape.join(', ')}]`;
  return null;
}

/** Asymmetric int8 quantisation of [min, max] widened to contain 0 (0 stays exact: padding, ReLU). */
export function activationQuant(min: number, max: number): ActivationQuant {
  const lo = Math.min(0, min);
  const hi = Math.max(0, max);
  if (!(Number.isFinite(lo) && Number.isFinite(hi))) throw new Error(`non-finite activation range [${min}, ${max}]`);
  const scale = hi - lo > 0 ? (hi - lo) / 255 : 1;
  const zeroPoint = Math.max(-128, Math.min(127, Math.round(-128 - lo / scale)));
  return { scale, zeroPoint };
}

const clampInt8 = (v: number) => (v < -128 ? -128 : v > 127 ? 127 : v);
const clampInt32 = (v: number) => (v < -2147483648 ? -2147483648 : v > 2147483647 ? 2147483647 : v);

/** Float values to int8 with the given quantisation. */
export function quantizeActivations(
  x: Float32Array,
  q: ActivationQuant,
  out: Int8Array = new Int8Array(x.length),
): Int8Array {
  for (let i = 0; i < x.length; i++) out[i] = clampInt8(Math.round(x[i] / q.scale) + q.zeroPoint);
  return out;
}

function outputSizeOf(op: Int8Op): number {
  if (op.type === 'dense') return op.units;
  if (op.type === 'conv2d') {
    const [h, w] = op.inShape;
    const k = op.kernelSize;
    return op.padding === 'same' ? h * w * op.filters : (h - k + 1) * (w - k + 1) * op.filters;
  }
  const [h, w, c] = op.inShape;
  return Math.floor(h / op.poolSize) * Math.floor(w / op.poolSize) * c;
}

/** The int32 accumulators of one sample: bias + sum over inputs of (x - zx) * w, per output element. */
function accumulate(op: Exclude<Int8Op, { type: 'maxpool2d' }>, x: Int8Array, zx: number, acc: Int32Array): void {
  const w = op.kernel;
  if (op.type === 'dense') {
    const units = op.units;
    acc.set(op.bias);
    for (let i = 0; i < op.inputSize; i++) {
      const xv = x[i] - zx;
      if (xv === 0) continue;
      const row = i * units;
      for (let j = 0; j < units; j++) acc[j] += xv * w[row + j];
    }
    return;
  }
  const [h, wIn, c] = op.inShape;
  const k = op.kernelSize;
  const f = op.filters;
  const same = op.padding === 'same';
  const pad = same ? (k - 1) >> 1 : 0;
  const outH = same ? h : h - k + 1;
  const outW = same ? wIn : wIn - k + 1;
  for (let oy = 0; oy < outH; oy++) {
    for (let ox = 0; ox < outW; ox++) {
      const outBase = (oy * outW + ox) * f;
      for (let j = 0; j < f; j++) acc[outBase + j] = op.bias[j];
      for (let ky = 0; ky < k; ky++) {
        const iy = oy + ky - pad;
        if (iy < 0 || iy >= h) continue; // padding is real 0, i.e. q = zx: it adds nothing
        for (let kx = 0; kx < k; kx++) {
          const ix = ox + kx - pad;
          if (ix < 0 || ix >= wIn) continue;
          const xi = (iy * wIn + ix) * c;
          const wi = (ky * k + kx) * c * f;
          for (let ci = 0; ci < c; ci++) {
            const xv = x[xi + ci] - zx;
            if (xv === 0) continue;
            const wr = wi + ci * f;
            for (let j = 0; j < f; j++) acc[outBase + j] += xv * w[wr + j];
          }
        }
      }
    }
  }
}

function maxPool(op: Extract<Int8Op, { type: 'maxpool2d' }>, x: Int8Array, out: Int8Array): void {
  const [h, w, c] = op.inShape;
  const p = op.poolSize;
  const outH = Math.floor(h / p);
  const outW = Math.floor(w / p);
  for (let oy = 0; oy < outH; oy++)
    for (let ox = 0; ox < outW; ox++)
      for (let ci = 0; ci < c; ci++) {
        let m = -128;
        for (let dy = 0; dy < p; dy++)
          for (let dx = 0; dx < p; dx++) {
            const v = x[((oy * p + dy) * w + ox * p + dx) * c + ci];
            if (v > m) m = v;
          }
        out[(oy * outW + ox) * c + ci] = m;
      }
}

/** Per output element: acc x inputScale x weightScale is the real value before the activation. */
function realScales(op: WeightedOp, inputScale: number, outSize: number): Float64Array {
  const channels = op.weightScales.length;
  return Float64Array.from({ length: outSize }, (_, i) => inputScale * op.weightScales[i % channels]);
}

/** acc -> int8 in `out`'s quantisation; ReLU fused as the clamp at the zero point. */
function requantize(acc: Int32Array, real: Float64Array, relu: boolean, q: ActivationQuant, out: Int8Array): void {
  const lo = relu ? Math.max(-128, q.zeroPoint) : -128;
  const inv = 1 / q.scale;
  for (let i = 0; i < acc.length; i++) {
    const v = Math.round(acc[i] * real[i] * inv) + q.zeroPoint;
    out[i] = v < lo ? lo : v > 127 ? 127 : v;
  }
}

function applyOutputActivation(v: Float32Array, activation: string): void {
  if (activation === 'softmax') {
    let m = -Infinity;
    for (const x of v) m = Math.max(m, x);
    let s = 0;
    for (let i = 0; i < v.length; i++) s += v[i] = Math.exp(v[i] - m);
    for (let i = 0; i < v.length; i++) v[i] /= s;
  } else if (activation === 'sigmoid') for (let i = 0; i < v.length; i++) v[i] = 1 / (1 + Math.exp(-v[i]));
  else if (activation === 'tanh') for (let i = 0; i < v.length; i++) v[i] = Math.tanh(v[i]);
  else if (activation === 'relu') for (let i = 0; i < v.length; i++) v[i] = Math.max(0, v[i]);
}

/** A network ready to run: the requantisation factors precomputed from the stored scales. */
export class Int8Runner {
  private readonly inputScales: number[] = [];
  private readonly reals: (Float64Array | null)[] = [];
  private readonly buffers: Int8Array[];
  private readonly acc: Int32Array;

  constructor(readonly net: Int8Net) {
    let scale = net.input.scale;
    let largest = 1;
    for (const op of net.ops) {
      const size = outputSizeOf(op);
      largest = Math.max(largest, size);
      this.inputScales.push(scale);
      if (op.type === 'maxpool2d') {
        this.reals.push(null);
        continue;
      }
      this.reals.push(realScales(op, scale, size));
      if (op.output) scale = op.output.scale;
    }
    const inputSize = net.inputShape.reduce((a, b) => a * b, 1);
    largest = Math.max(largest, inputSize);
    this.buffers = [new Int8Array(largest), new Int8Array(largest)];
    this.acc = new Int32Array(largest);
  }

  /** n samples (row-major float features) to n x outputSize floats (probabilities or values). */
  predict(x: Float32Array, n: number): Float32Array {
    const net = this.net;
    const inputSize = net.inputShape.reduce((a, b) => a * b, 1);
    if (x.length !== n * inputSize) throw new Error(`expected ${n} x ${inputSize} inputs, got ${x.length} values`);
    const out = new Float32Array(n * net.outputSize);
    for (let s = 0; s < n; s++) {
      let cur = this.buffers[0];
      let next = this.buffers[1];
      quantizeActivations(x.subarray(s * inputSize, (s + 1) * inputSize), net.input, cur);
      let zx = net.input.zeroPoint;
      for (let l = 0; l < net.ops.length; l++) {
        const op = net.ops[l];
        if (op.type === 'maxpool2d') {
          maxPool(op, cur, next);
        } else {
          const size = outputSizeOf(op);
          const acc = this.acc.subarray(0, size);
          accumulate(op, cur, zx, acc);
          const real = this.reals[l]!;
          if (!op.output) {
            const y = out.subarray(s * net.outputSize, (s + 1) * net.outputSize);
            for (let i = 0; i < size; i++) y[i] = acc[i] * real[i];
            applyOutputActivation(y, op.activation);
            break;
          }
          requantize(acc, real, op.activation === 'relu', op.output, next.subarray(0, size));
          zx = op.output.zeroPoint;
        }
        [cur, next] = [next, cur];
      }
    }
    return out;
  }
}

export interface QuantizeNetInput {
  inputShape: readonly number[];
  layers: readonly Int8SourceLayer[];
  /** The float weights, flat in tfjs order (each Dense / Conv2D: kernel then bias). */
  weights: Float32Array;
  /** Calibration samples, row-major features as the model takes them. */
  calibration: Float32Array;
  calibrationSamples: number;
}

/**
 * Post-training quantisation: per-channel int8 weights, int32 biases and per-tensor activation ranges
 * measured on the calibration samples (min/max through the int8 network, layer by layer).
 */
export function quantizeNet(net: QuantizeNetInput): Int8Net {
  const reason = int8UnsupportedReason(net.inputShape, net.layers);
  if (reason) throw new Error(reason);
  const inputSize = net.inputShape.reduce((a, b) => a * b, 1);
  const n = net.calibrationSamples;
  if (!(n >= 1)) throw new Error('the calibration set is empty: int8 activation ranges need at least one sample');
  if (net.calibration.length !== n * inputSize)
    throw new Error(
      `calibration data has ${net.calibration.length / n} features per sample, the model takes ${inputSize}`,
    );
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of net.calibration) {
    if (!Number.isFinite(v)) throw new Error(`calibration data has a non-finite value (${v})`);
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const input = activationQuant(lo, hi);
  let current = quantizeActivations(net.calibration, input);
  let currentQuant = input;
  let shape = [...net.inputShape];
  let offset = 0;
  const ops: Int8Op[] = [];
  const lastIndex = net.layers.length - 1;
  for (let li = 0; li <= lastIndex; li++) {
    const l = net.layers[li];
    const size = shape.reduce((a, b) => a * b, 1);
    if (l.type === 'flatten') {
      shape = [size];
      continue;
    }
    if (l.type === 'dropout') continue;
    let op: Int8Op;
    if (l.type === 'maxpool2d') {
      const p = l.poolSize!;
      op = { type: 'maxpool2d', name: l.name, inShape: shape as [number, number, number], poolSize: p };
      shape = [Math.floor(shape[0] / p), Math.floor(shape[1] / p), shape[2]];
    } else {
      const dense = l.type === 'dense';
      const channels = dense ? l.units! : l.filters!;
      if (dense && shape.length !== 1) throw new Error(`layer '${l.name}': int8 Dense takes flat inputs`);
      const k = l.kernelSize ?? 1;
      const kernelSize = dense ? shape[0] * channels : k * k * shape[2] * channels;
      if (offset + kernelSize + channels > net.weights.length)
        throw new Error(`the weights end before layer '${l.name}' (${net.weights.length} values)`);
      const kernel = net.weights.subarray(offset, offset + kernelSize);
      const biasFloat = net.weights.subarray(offset + kernelSize, offset + kernelSize + channels);
      offset += kernelSize + channels;
      const { q, scales } = quantizePerChannel(kernel, channels);
      const bias = Int32Array.from(biasFloat, (b, j) => clampInt32(Math.round(b / (currentQuant.scale * scales[j]))));
      const base = { name: l.name, activation: l.activation ?? 'linear', kernel: q, weightScales: scales, bias };
      if (dense) {
        op = { ...base, type: 'dense', inputSize: shape[0], units: channels };
        shape = [channels];
      } else {
        const [h, w, c] = shape;
        const padding = l.padding ?? 'valid';
        op = { ...base, type: 'conv2d', inShape: [h, w, c], filters: channels, kernelSize: k, padding };
        shape = padding === 'same' ? [h, w, channels] : [h - k + 1, w - k + 1, channels];
      }
    }
    ops.push(op);
    if (li === lastIndex) break;
    const next = calibrateOp(op, current, currentQuant, n, size);
    current = next.values;
    if (next.quant) currentQuant = next.quant;
  }
  if (offset !== net.weights.length)
    throw new Error(`the model has ${net.weights.length} weights, its layers use ${offset}`);
  return { inputShape: [...net.inputShape], input, ops, outputSize: shape.reduce((a, b) => a * b, 1) };
}

/** Runs one op over every calibration sample; for a weighted op, measures and sets its output range first. */
function calibrateOp(
  op: Int8Op,
  inputs: Int8Array,
  inputQuant: ActivationQuant,
  n: number,
  inSize: number,
): { values: Int8Array; quant?: ActivationQuant } {
  const outSize = outputSizeOf(op);
  const values = new Int8Array(n * outSize);
  if (op.type === 'maxpool2d') {
    for (let s = 0; s < n; s++)
      maxPool(op, inputs.subarray(s * inSize, (s + 1) * inSize), values.subarray(s * outSize, (s + 1) * outSize));
    return { values };
  }
  const real = realScales(op, inputQuant.scale, outSize);
  const relu = op.activation === 'relu';
  const acc = new Int32Array(outSize);
  let lo = Infinity;
  let hi = -Infinity;
  // Two passes (range, then requantisation) recompute the sums rather than keep n x outSize int32s.
  for (let s = 0; s < n; s++) {
    accumulate(op, inputs.subarray(s * inSize, (s + 1) * inSize), inputQuant.zeroPoint, acc);
    for (let i = 0; i < outSize; i++) {
      const v = relu ? Math.max(0, acc[i] * real[i]) : acc[i] * real[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  const quant = activationQuant(lo, hi);
  op.output = quant;
  for (let s = 0; s < n; s++) {
    accumulate(op, inputs.subarray(s * inSize, (s + 1) * inSize), inputQuant.zeroPoint, acc);
    requantize(acc, real, relu, quant, values.subarray(s * outSize, (s + 1) * outSize));
  }
  return { values, quant };
}
