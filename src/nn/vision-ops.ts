/**
 * The compact vision layers for SeqNet (MobileNet-style networks), with tfjs-layers semantics, channels
 * last (NHWC):
 * - DepthwiseConv2D: each input channel convolved with its own depthMultiplier k x k filters (kernel
 *   [k, k, cin, dm], output channel ci * dm + q), optional bias, any stride; 'same' padding pads
 *   max((out - 1) * s + k - in, 0) in total, the smaller half before, as TensorFlow does.
 * - SeparableConv2D: a depthwise convolution without bias, then a 1 x 1 pointwise convolution (a gemm
 *   through Kernels: native, WASM or JS) with bias; tfjs lists depthwise_kernel, pointwise_kernel, bias.
 * - BatchNormalization over the last axis: in training, batch statistics (biased variance) normalise and
 *   the moving statistics move as tfjs moves them (m <- m - (m - batch) * (1 - momentum)); in inference
 *   the moving statistics normalise. Epsilon is inside the square root. gamma and beta are trainable;
 *   moving_mean and moving_variance are non-trainable state (LayerOp.stateTensors).
 * - GlobalAveragePooling2D is GlobalAveragePool1DOp over the h * w pixels (sequence-ops.ts).
 * The depthwise loops and normalisation are plain TypeScript: neither is a matrix product.
 *
 * BROWSER-SAFE: imports nothing from Node.
 */
import type { Kernels } from './kernels.js';
import type { Buf, KernelMemory } from './kernel-memory.js';
import type { LayerOp } from './layer-op.js';
import type { Activation } from './dense.js';
import type { TensorSpec } from '../core/params.js';
import { GlobalAveragePool1DOp } from './sequence-ops.js';

/** The vision layers' specs (part of SeqLayer, nn/seqnet.ts). */
export type VisionLayer =
  | {
      type: 'depthwiseconv2d';
      name: string;
      kernelSize: number;
      depthMultiplier: number;
      strides: number;
      padding: 'same' | 'valid';
      activation: Activation;
      useBias: boolean;
    }
  | {
      type: 'separableconv2d';
      name: string;
      filters: number;
      kernelSize: number;
      strides: number;
      padding: 'same' | 'valid';
      activation: Activation;
    }
  | { type: 'batchnorm'; name: string; momentum: number; epsilon: number }
  | { type: 'globalavgpool2d'; name: string };

const VISION_LAYER_TYPES: ReadonlySet<string> = new Set<VisionLayer['type']>([
  'depthwiseconv2d',
  'separableconv2d',
  'batchnorm',
  'globalavgpool2d',
]);

/** Whether a layer spec is one of the vision layers (visionOp builds its op). */
export function isVisionLayer(l: { type: string }): l is VisionLayer {
  return VISION_LAYER_TYPES.has(l.type);
}

/** Activations the vision convolutions apply (softmax belongs to the output dense layer). */
export const VISION_ACTIVATIONS: readonly Activation[] = ['relu', 'linear', 'sigmoid', 'tanh'];

export interface DepthwiseGeom {
  h: number;
  w: number;
  c: number;
  dm: number;
  k: number;
  stride: number;
  outH: number;
  outW: number;
  padTop: number;
  padLeft: number;
}

/** The geometry of a k x k depthwise convolution with the given stride, or null when the output is empty. */
export function depthwiseGeom(
  h: number,
  w: number,
  c: number,
  dm: number,
  k: number,
  stride: number,
  padding: 'same' | 'valid',
): DepthwiseGeom | null {
  const out = (n: number) => (padding === 'same' ? Math.ceil(n / stride) : Math.ceil((n - k + 1) / stride));
  const outH = out(h),
    outW = out(w);
  if (outH < 1 || outW < 1) return null;
  const pad = (n: number, o: number) => (padding === 'same' ? Math.max((o - 1) * stride + k - n, 0) >> 1 : 0);
  return { h, w, c, dm, k, stride, outH, outW, padTop: pad(h, outH), padLeft: pad(w, outW) };
}

/** out (m x outH x outW x c*dm, overwritten) = the depthwise convolution of x with kernel (no bias). */
export function depthwiseForward(
  g: DepthwiseGeom,
  x: Float32Array,
  kernel: Float32Array,
  m: number,
  out: Float32Array,
): void {
  const { h, w, c, dm, k, stride, outH, outW, padTop, padLeft } = g;
  const cout = c * dm;
  out.fill(0, 0, m * outH * outW * cout);
  for (let b = 0; b < m; b++) {
    const xb = b * h * w * c;
    for (let oh = 0; oh < outH; oh++) {
      for (let ow = 0; ow < outW; ow++) {
        const o = ((b * outH + oh) * outW + ow) * cout;
        for (let i = 0; i < k; i++) {
          const ih = oh * stride + i - padTop;
          if (ih < 0 || ih >= h) continue;
          for (let j = 0; j < k; j++) {
            const iw = ow * stride + j - padLeft;
            if (iw < 0 || iw >= w) continue;
            const xo = xb + (ih * w + iw) * c;
            const ko = (i * k + j) * cout;
            if (dm === 1) for (let ci = 0; ci < c; ci++) out[o + ci] += x[xo + ci] * kernel[ko + ci];
            else {
              for (let ci = 0; ci < c; ci++) {
                const xv = x[xo + ci];
                for (let q = 0; q < dm; q++) out[o + ci * dm + q] += xv * kernel[ko + ci * dm + q];
              }
            }
          }
        }
      }
    }
  }
}

/**
 * From dOut: the kernel gradient into gk (overwritten) and, when dx is given, the input gradient
 * (overwritten).
 */
export function depthwiseBackward(
  g: DepthwiseGeom,
  x: Float32Array,
  kernel: Float32Array,
  dOut: Float32Array,
  m: number,
  gk: Float32Array,
  dx: Float32Array | null,
): void {
  const { h, w, c, dm, k, stride, outH, outW, padTop, padLeft } = g;
  const cout = c * dm;
  gk.fill(0, 0, k * k * cout);
  if (dx) dx.fill(0, 0, m * h * w * c);
  for (let b = 0; b < m; b++) {
    const xb = b * h * w * c;
    for (let oh = 0; oh < outH; oh++) {
      for (let ow = 0; ow < outW; ow++) {
        const o = ((b * outH + oh) * outW + ow) * cout;
        for (let i = 0; i < k; i++) {
          const ih = oh * stride + i - padTop;
          if (ih < 0 || ih >= h) continue;
          for (let j = 0; j < k; j++) {
            const iw = ow * stride + j - padLeft;
            if (iw < 0 || iw >= w) continue;
            const xo = xb + (ih * w + iw) * c;
            const ko = (i * k + j) * cout;
            for (let ci = 0; ci < c; ci++) {
              const xv = x[xo + ci];
              let s = 0;
              for (let q = 0; q < dm; q++) {
                const d = dOut[o + ci * dm + q];
                gk[ko + ci * dm + q] += xv * d;
                s += d * kernel[ko + ci * dm + q];
              }
              if (dx) dx[xo + ci] += s;
            }
          }
        }
      }
    }
  }
}

/** out += bias per channel, then the activation, in place. */
function biasActivate(out: Float32Array, bias: Float32Array | null, n: number, act: Activation): void {
  const len = out.length;
  if (bias) for (let i = 0; i < len; i += n) for (let j = 0; j < n; j++) out[i + j] += bias[j];
  if (act === 'relu') for (let i = 0; i < len; i++) out[i] = out[i] > 0 ? out[i] : 0;
  else if (act === 'sigmoid') for (let i = 0; i < len; i++) out[i] = 1 / (1 + Math.exp(-out[i]));
  else if (act === 'tanh') for (let i = 0; i < len; i++) out[i] = Math.tanh(out[i]);
}

/** d (w.r.t. the activated output `out`) becomes the gradient w.r.t. the pre-activation, in place. */
function activationBackward(d: Float32Array, out: Float32Array, act: Activation): void {
  const len = d.length;
  if (act === 'relu') for (let i = 0; i < len; i++) d[i] = out[i] > 0 ? d[i] : 0;
  else if (act === 'sigmoid') for (let i = 0; i < len; i++) d[i] *= out[i] * (1 - out[i]);
  else if (act === 'tanh') for (let i = 0; i < len; i++) d[i] *= 1 - out[i] * out[i];
}

/** Per-channel sums of a (rows x n) into out (overwritten). */
function channelSums(a: Float32Array, n: number, out: Float32Array): void {
  out.fill(0, 0, n);
  for (let i = 0; i < a.length; i += n) for (let j = 0; j < n; j++) out[j] += a[i + j];
}

/** DepthwiseConv2D: [h, w, c] -> [outH, outW, c * dm]. */
export class DepthwiseConv2DOp implements LayerOp {
  readonly kind = 'layer';
  readonly inSize: number;
  readonly outSize: number;
  readonly outShape: number[];
  readonly tensors: TensorSpec[];
  readonly differentiableInput = true;
  private readonly kSize: number;
  private readonly cout: number;
  /** The activated output of the last forward pass (the ops' output buffer belongs to SeqNet). */
  private lastOut: Float32Array = new Float32Array(0);

  constructor(
    readonly name: string,
    private readonly g: DepthwiseGeom,
    private readonly act: Activation,
    private readonly useBias: boolean,
    readonly wOff: number,
  ) {
    this.cout = g.c * g.dm;
    this.kSize = g.k * g.k * this.cout;
    this.inSize = g.h * g.w * g.c;
    this.outSize = g.outH * g.outW * this.cout;
    this.outShape = [g.outH, g.outW, this.cout];
    this.tensors = [{ name: `${name}/depthwise_kernel`, shape: [g.k, g.k, g.c, g.dm] }];
    if (useBias) this.tensors.push({ name: `${name}/bias`, shape: [this.cout] });
  }

  reserve(): void {}

  forward(_k: Kernels, w: Float32Array, input: Float32Array, out: Float32Array, m: number): void {
    const kOff = this.wOff;
    depthwiseForward(this.g, input, w.subarray(kOff, kOff + this.kSize), m, out);
    const bias = this.useBias ? w.subarray(kOff + this.kSize, kOff + this.kSize + this.cout) : null;
    biasActivate(out, bias, this.cout, this.act);
    this.lastOut = out;
  }

  backward(
    _k: Kernels,
    w: Float32Array,
    input: Float32Array,
    dOut: Float32Array,
    m: number,
    g: Float32Array,
    dIn: Float32Array | null,
  ): void {
    const kOff = this.wOff;
    activationBackward(dOut, this.lastOut, this.act);
    if (this.useBias) channelSums(dOut, this.cout, g.subarray(kOff + this.kSize, kOff + this.kSize + this.cout));
    const kernel = w.subarray(kOff, kOff + this.kSize);
    depthwiseBackward(this.g, input, kernel, dOut, m, g.subarray(kOff, kOff + this.kSize), dIn);
  }
}

/** SeparableConv2D: depthwise (no bias, depth multiplier 1) then pointwise 1 x 1 to `filters`, bias, activation. */
export class SeparableConv2DOp implements LayerOp {
  readonly kind = 'layer';
  readonly inSize: number;
  readonly outSize: number;
  readonly outShape: number[];
  readonly tensors: TensorSpec[];
  readonly differentiableInput = true;
  private readonly dSize: number;
  private readonly pSize: number;
  /** Output pixels per example. */
  private readonly pixels: number;
  private cap = 0;
  /** The depthwise output (the pointwise input) and its gradient. */
  private mid: Buf<Float32Array> | null = null;
  private dMid: Buf<Float32Array> | null = null;
  private lastOut: Float32Array = new Float32Array(0);

  constructor(
    readonly name: string,
    private readonly g: DepthwiseGeom,
    private readonly filters: number,
    private readonly act: Activation,
    readonly wOff: number,
  ) {
    this.dSize = g.k * g.k * g.c;
    this.pSize = g.c * filters;
    this.pixels = g.outH * g.outW;
    this.inSize = g.h * g.w * g.c;
    this.outSize = this.pixels * filters;
    this.outShape = [g.outH, g.outW, filters];
    this.tensors = [
      { name: `${name}/depthwise_kernel`, shape: [g.k, g.k, g.c, 1] },
      { name: `${name}/pointwise_kernel`, shape: [1, 1, g.c, filters] },
      { name: `${name}/bias`, shape: [filters] },
    ];
  }

  reserve(mem: KernelMemory, m: number, train: boolean): void {
    if (m <= this.cap && (!train || this.dMid)) return;
    const cap = Math.max(m, this.cap);
    mem.drop([this.mid, this.dMid]);
    this.mid = mem.f32(cap * this.pixels * this.g.c);
    this.dMid = train || this.dMid ? mem.f32(cap * this.pixels * this.g.c) : null;
    this.cap = cap;
  }

  forward(k: Kernels, w: Float32Array, input: Float32Array, out: Float32Array, m: number): void {
    const d = this.wOff,
      p = d + this.dSize,
      bias = p + this.pSize;
    const c = this.g.c;
    const mid = this.mid!.a.subarray(0, m * this.pixels * c);
    depthwiseForward(this.g, input, w.subarray(d, p), m, mid);
    const rows = m * this.pixels;
    k.gemm(false, false, rows, this.filters, c, 1, mid, w.subarray(p, bias), 0, out);
    if (this.act === 'relu' || this.act === 'linear') {
      k.biasAct(out, w.subarray(bias, bias + this.filters), rows, this.filters, this.act === 'relu');
    } else biasActivate(out, w.subarray(bias, bias + this.filters), this.filters, this.act);
    this.lastOut = out;
  }

  backward(
    k: Kernels,
    w: Float32Array,
    input: Float32Array,
    dOut: Float32Array,
    m: number,
    g: Float32Array,
    dIn: Float32Array | null,
  ): void {
    const d = this.wOff,
      p = d + this.dSize,
      bias = p + this.pSize;
    const c = this.g.c;
    const rows = m * this.pixels;
    const mid = this.mid!.a.subarray(0, rows * c);
    const dMid = this.dMid!.a.subarray(0, rows * c);
    if (this.act === 'relu') k.reluBackward(dOut, this.lastOut);
    else activationBackward(dOut, this.lastOut, this.act);
    k.colSum(dOut, rows, this.filters, g.subarray(bias, bias + this.filters));
    k.gemm(true, false, c, this.filters, rows, 1, mid, dOut, 0, g.subarray(p, bias));
    k.gemm(false, true, rows, c, this.filters, 1, dOut, w.subarray(p, bias), 0, dMid);
    depthwiseBackward(this.g, input, w.subarray(d, p), dMid, m, g.subarray(d, p), dIn);
  }
}

/** BatchNormalization over the last axis (C channels) of inputs of any rank. */
export class BatchNormOp implements LayerOp {
  readonly kind = 'layer';
  readonly inSize: number;
  readonly outSize: number;
  readonly outShape: number[];
  readonly tensors: TensorSpec[];
  readonly stateTensors: TensorSpec[];
  stateOff = -1;
  readonly differentiableInput = true;
  private readonly C: number;
  private cap = 0;
  /** Normalised inputs of the last forward pass, for the backward pass. */
  private xhat: Buf<Float32Array> | null = null;
  /** Per channel: 1 / sqrt(var + epsilon) of the last forward pass, and float64 accumulators. */
  private readonly invStd: Float64Array;
  private readonly sum: Float64Array;
  private readonly sum2: Float64Array;
  /** Whether the last forward pass used batch statistics (so the backward pass differentiates through them). */
  private lastTraining = false;

  constructor(
    readonly name: string,
    shape: readonly number[],
    private readonly momentum: number,
    private readonly epsilon: number,
    readonly wOff: number,
  ) {
    this.C = shape[shape.length - 1];
    this.inSize = this.outSize = shape.reduce((a, b) => a * b, 1);
    this.outShape = [...shape];
    this.tensors = [
      { name: `${name}/gamma`, shape: [this.C] },
      { name: `${name}/beta`, shape: [this.C] },
    ];
    this.stateTensors = [
      { name: `${name}/moving_mean`, shape: [this.C] },
      { name: `${name}/moving_variance`, shape: [this.C] },
    ];
    this.invStd = new Float64Array(this.C);
    this.sum = new Float64Array(this.C);
    this.sum2 = new Float64Array(this.C);
  }

  reserve(mem: KernelMemory, m: number): void {
    if (m <= this.cap) return;
    mem.drop([this.xhat]);
    this.xhat = mem.f32(m * this.inSize);
    this.cap = m;
  }

  forward(_k: Kernels, w: Float32Array, input: Float32Array, out: Float32Array, m: number, training = false): void {
    const C = this.C;
    const len = m * this.inSize;
    const gamma = this.wOff,
      beta = gamma + C;
    const mean = this.stateOff,
      variance = mean + C;
    const { invStd, sum, sum2 } = this;
    const xhat = this.xhat!.a;
    this.lastTraining = training;
    if (training) {
      const n = len / C;
      sum.fill(0);
      for (let i = 0; i < len; i += C) for (let j = 0; j < C; j++) sum[j] += input[i + j];
      for (let j = 0; j < C; j++) sum[j] /= n; // now the batch mean
      sum2.fill(0);
      for (let i = 0; i < len; i += C) {
        for (let j = 0; j < C; j++) {
          const e = input[i + j] - sum[j];
          sum2[j] += e * e;
        }
      }
      const decay = 1 - this.momentum;
      for (let j = 0; j < C; j++) {
        const v = sum2[j] / n; // biased, as tf.moments
        invStd[j] = 1 / Math.sqrt(v + this.epsilon);
        w[mean + j] -= (w[mean + j] - sum[j]) * decay;
        w[variance + j] -= (w[variance + j] - v) * decay;
      }
    } else {
      for (let j = 0; j < C; j++) {
        sum[j] = w[mean + j];
        // A moving variance pushed below zero (noise on an update) must not make the output NaN.
        invStd[j] = 1 / Math.sqrt(Math.max(w[variance + j], 0) + this.epsilon);
      }
    }
    for (let i = 0; i < len; i += C) {
      for (let j = 0; j < C; j++) {
        const xh = (input[i + j] - sum[j]) * invStd[j];
        xhat[i + j] = xh;
        out[i + j] = w[gamma + j] * xh + w[beta + j];
      }
    }
  }

  backward(
    _k: Kernels,
    w: Float32Array,
    _input: Float32Array,
    dOut: Float32Array,
    m: number,
    g: Float32Array,
    dIn: Float32Array | null,
  ): void {
    const C = this.C;
    const len = m * this.inSize;
    const gamma = this.wOff,
      beta = gamma + C;
    const { invStd, sum: dGamma, sum2: dBeta } = this;
    const xhat = this.xhat!.a;
    dGamma.fill(0);
    dBeta.fill(0);
    for (let i = 0; i < len; i += C) {
      for (let j = 0; j < C; j++) {
        dGamma[j] += dOut[i + j] * xhat[i + j];
        dBeta[j] += dOut[i + j];
      }
    }
    for (let j = 0; j < C; j++) {
      g[gamma + j] = dGamma[j];
      g[beta + j] = dBeta[j];
    }
    g.fill(0, this.stateOff, this.stateOff + 2 * C);
    if (!dIn) return;
    if (!this.lastTraining) {
      for (let i = 0; i < len; i += C) for (let j = 0; j < C; j++) dIn[i + j] = dOut[i + j] * w[gamma + j] * invStd[j];
      return;
    }
    // Through the batch statistics: dx = gamma * invStd * (d - mean(d) - xhat * mean(d * xhat)).
    const n = len / C;
    for (let i = 0; i < len; i += C) {
      for (let j = 0; j < C; j++) {
        dIn[i + j] = w[gamma + j] * invStd[j] * (dOut[i + j] - dBeta[j] / n - (xhat[i + j] * dGamma[j]) / n);
      }
    }
  }
}

const positiveInt = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v > 0;

/** The LayerOp of a vision layer at weight offset wOff over inputs of the given shape, or why it cannot run. */
export function visionOp(l: VisionLayer, shape: readonly number[], wOff: number): LayerOp | string {
  const at = `${l.type} layer '${l.name}'`;
  switch (l.type) {
    case 'depthwiseconv2d':
    case 'separableconv2d': {
      if (shape.length !== 3) return `${at} needs an [h, w, c] input, gets rank ${shape.length}`;
      const dm = l.type === 'depthwiseconv2d' ? l.depthMultiplier : 1;
      if (!positiveInt(l.kernelSize) || !positiveInt(l.strides) || !positiveInt(dm))
        return `${at} needs positive integer kernel size, strides and depth multiplier`;
      if (l.type === 'separableconv2d' && !positiveInt(l.filters)) return `${at} needs a positive integer filters`;
      if (l.padding !== 'same' && l.padding !== 'valid')
        return `padding '${String(l.padding)}' on ${at} is not supported`;
      if (!VISION_ACTIVATIONS.includes(l.activation))
        return `activation '${String(l.activation)}' on ${at} is not supported`;
      const [h, w, c] = shape;
      const g = depthwiseGeom(h, w, c, dm, l.kernelSize, l.strides, l.padding);
      if (!g) return `${at}: kernel ${l.kernelSize} is larger than its ${h}x${w} input`;
      return l.type === 'depthwiseconv2d'
        ? new DepthwiseConv2DOp(l.name, g, l.activation, l.useBias !== false, wOff)
        : new SeparableConv2DOp(l.name, g, l.filters, l.activation, wOff);
    }
    case 'batchnorm':
      if (!(typeof l.epsilon === 'number' && l.epsilon > 0)) return `${at} needs epsilon > 0, has ${String(l.epsilon)}`;
      if (!(typeof l.momentum === 'number' && l.momentum >= 0 && l.momentum <= 1))
        return `${at} needs 0 <= momentum <= 1, has ${String(l.momentum)}`;
      return new BatchNormOp(l.name, shape, l.momentum, l.epsilon, wOff);
    case 'globalavgpool2d':
      if (shape.length !== 3) return `${at} needs an [h, w, c] input, gets rank ${shape.length}`;
      return new GlobalAveragePool1DOp(l.name, shape[0] * shape[1], shape[2], wOff);
  }
}
