/**
 * The weight-light sequence layers for SeqNet, with tfjs-layers semantics: GlobalAveragePooling1D
 * ([T, F] -> [F], the mean over steps), LayerNormalization (over the last axis, biased variance,
 * epsilon inside the square root, gamma then beta as tfjs lists them) and Embedding (integer indices
 * [T] -> [T, D] rows of the embeddings matrix; it has no input gradient, so it comes first).
 * Loops are plain TypeScript: none of these is a matrix product.
 *
 * BROWSER-SAFE: imports nothing from Node.
 */
import type { Kernels } from './kernels.js';
import type { Buf, KernelMemory } from './kernel-memory.js';
import { sizeOf, type LayerOp } from './layer-op.js';
import type { TensorSpec } from '../core/params.js';

/** [T, F] -> [F]: the mean over the T steps of each feature. */
export class GlobalAveragePool1DOp implements LayerOp {
  readonly kind = 'layer';
  readonly inSize: number;
  readonly outSize: number;
  readonly outShape: number[];
  readonly tensors: TensorSpec[] = [];
  readonly differentiableInput = true;

  constructor(
    readonly name: string,
    private readonly T: number,
    private readonly F: number,
    readonly wOff: number,
  ) {
    this.inSize = T * F;
    this.outSize = F;
    this.outShape = [F];
  }

  reserve(): void {}

  forward(_k: Kernels, _w: Float32Array, input: Float32Array, out: Float32Array, m: number): void {
    const { T, F } = this;
    for (let b = 0; b < m; b++) {
      for (let f = 0; f < F; f++) {
        let s = 0;
        for (let t = 0; t < T; t++) s += input[(b * T + t) * F + f];
        out[b * F + f] = s / T;
      }
    }
  }

  backward(
    _k: Kernels,
    _w: Float32Array,
    _input: Float32Array,
    dOut: Float32Array,
    m: number,
    _g: Float32Array,
    dIn: Float32Array | null,
  ): void {
    if (!dIn) return;
    const { T, F } = this;
    for (let b = 0; b < m; b++) {
      for (let t = 0; t < T; t++) {
        for (let f = 0; f < F; f++) dIn[(b * T + t) * F + f] = dOut[b * F + f] / T;
      }
    }
  }
}

/** y = gamma * (x - mean) / sqrt(var + epsilon) + beta over the last axis (F features) of each row. */
export class LayerNormOp implements LayerOp {
  readonly kind = 'layer';
  readonly inSize: number;
  readonly outSize: number;
  readonly outShape: number[];
  readonly tensors: TensorSpec[];
  readonly differentiableInput = true;
  private readonly F: number;
  private cap = 0;
  /** Normalised inputs and 1 / sqrt(var + epsilon) per row, cached for the backward pass. */
  private xhat: Buf<Float32Array> | null = null;
  private invStd: Buf<Float32Array> | null = null;

  constructor(
    readonly name: string,
    shape: readonly number[],
    private readonly epsilon: number,
    readonly wOff: number,
  ) {
    this.F = shape[shape.length - 1];
    this.inSize = this.outSize = sizeOf(shape);
    this.outShape = [...shape];
    this.tensors = [
      { name: `${name}/gamma`, shape: [this.F] },
      { name: `${name}/beta`, shape: [this.F] },
    ];
  }

  reserve(mem: KernelMemory, m: number): void {
    if (m <= this.cap) return;
    mem.drop([this.xhat, this.invStd]);
    this.xhat = mem.f32(m * this.inSize);
    this.invStd = mem.f32(m * (this.inSize / this.F));
    this.cap = m;
  }

  forward(_k: Kernels, w: Float32Array, input: Float32Array, out: Float32Array, m: number): void {
    const F = this.F;
    const rows = (m * this.inSize) / F;
    const gamma = this.wOff,
      beta = this.wOff + F;
    const xhat = this.xhat!.a,
      invStd = this.invStd!.a;
    for (let r = 0; r < rows; r++) {
      const o = r * F;
      let mean = 0;
      for (let j = 0; j < F; j++) mean += input[o + j];
      mean /= F;
      let v = 0;
      for (let j = 0; j < F; j++) v += (input[o + j] - mean) ** 2;
      const inv = 1 / Math.sqrt(v / F + this.epsilon);
      invStd[r] = inv;
      for (let j = 0; j < F; j++) {
        const xh = (input[o + j] - mean) * inv;
        xhat[o + j] = xh;
        out[o + j] = w[gamma + j] * xh + w[beta + j];
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
    const F = this.F;
    const rows = (m * this.inSize) / F;
    const gamma = this.wOff,
      beta = this.wOff + F;
    const xhat = this.xhat!.a,
      invStd = this.invStd!.a;
    g.fill(0, gamma, beta + F);
    for (let r = 0; r < rows; r++) {
      const o = r * F;
      let sum = 0,
        dot = 0;
      for (let j = 0; j < F; j++) {
        const d = dOut[o + j];
        g[gamma + j] += d * xhat[o + j];
        g[beta + j] += d;
        const dxh = d * w[gamma + j];
        sum += dxh;
        dot += dxh * xhat[o + j];
      }
      if (!dIn) continue;
      for (let j = 0; j < F; j++) {
        dIn[o + j] = invStd[r] * (dOut[o + j] * w[gamma + j] - sum / F - (xhat[o + j] * dot) / F);
      }
    }
  }
}

/** Integer indices [T] (as floats) -> [T, D]: row `index` of the embeddings matrix [inputDim, D]. */
export class EmbeddingOp implements LayerOp {
  readonly kind = 'layer';
  readonly inSize: number;
  readonly outSize: number;
  readonly outShape: number[];
  readonly tensors: TensorSpec[];
  readonly differentiableInput = false;

  constructor(
    readonly name: string,
    private readonly T: number,
    private readonly inputDim: number,
    private readonly D: number,
    readonly wOff: number,
  ) {
    this.inSize = T;
    this.outSize = T * D;
    this.outShape = [T, D];
    this.tensors = [{ name: `${name}/embeddings`, shape: [inputDim, D] }];
  }

  reserve(): void {}

  private index(input: Float32Array, p: number): number {
    const v = input[p];
    if (!Number.isInteger(v) || v < 0 || v >= this.inputDim) {
      throw new RangeError(
        `embedding '${this.name}': input ${p} (example ${Math.floor(p / this.T)}, step ${p % this.T}) ` +
          `is ${v}; indices must be whole numbers from 0 to ${this.inputDim - 1}`,
      );
    }
    return v;
  }

  forward(_k: Kernels, w: Float32Array, input: Float32Array, out: Float32Array, m: number): void {
    const D = this.D;
    for (let p = 0; p < m * this.T; p++) {
      const row = this.wOff + this.index(input, p) * D;
      out.set(w.subarray(row, row + D), p * D);
    }
  }

  backward(_k: Kernels, _w: Float32Array, input: Float32Array, dOut: Float32Array, m: number, g: Float32Array): void {
    const D = this.D;
    g.fill(0, this.wOff, this.wOff + this.inputDim * D);
    for (let p = 0; p < m * this.T; p++) {
      const row = this.wOff + input[p] * D;
      for (let j = 0; j < D; j++) g[row + j] += dOut[p * D + j];
    }
  }
}
