/**
 * The training engine for dense networks (Flatten + Dense layers, softmax cross-entropy or MSE), on flat
 * buffers: weights, gradients and optimizer state are single Float32Arrays laid out as tfjs lays out the
 * same Keras model (per layer: kernel [in, out], then bias [out]), so a flat parameter vector moves between this
 * engine, tfjs and the wire without copies or renames. Hot loops go through `Kernels` (native, WASM or JS).
 * With the WASM kernels, activations and deltas live inside wasm memory (kernel-memory.ts); callers that
 * pass weights, inputs and gradient from there too (EngineTrainer does) make every kernel call zero-copy.
 */
import type { Kernels } from './kernels.js';
import { KernelMemory, type Buf } from './kernel-memory.js';
import type { TensorSpec } from '../core/params.js';

export type Activation = 'relu' | 'linear' | 'softmax' | 'sigmoid' | 'tanh';
export type Loss = 'sparse_categorical_crossentropy' | 'mse';

const ACTIVATIONS: readonly string[] = ['relu', 'linear', 'softmax', 'sigmoid', 'tanh'] satisfies Activation[];

export interface DenseLayer {
  name: string;
  units: number;
  activation: Activation;
}

export interface DenseNetSpec {
  inputSize: number;
  layers: DenseLayer[];
  loss: Loss;
}

export function denseTensorSpecs(spec: DenseNetSpec): TensorSpec[] {
  const out: TensorSpec[] = [];
  let fanIn = spec.inputSize;
  for (const l of spec.layers) {
    out.push({ name: `${l.name}/kernel`, shape: [fanIn, l.units] }, { name: `${l.name}/bias`, shape: [l.units] });
    fanIn = l.units;
  }
  return out;
}

/** Checks the network is one this engine computes exactly; returns a reason when it is not. */
export function denseUnsupportedReason(spec: DenseNetSpec): string | null {
  if (spec.layers.length === 0) return 'no dense layers';
  const last = spec.layers[spec.layers.length - 1];
  // Specs come from users' model.json files too, where any Keras activation name can appear; one the
  // forward pass does not know would otherwise run as 'linear'.
  for (const l of spec.layers) {
    if (!ACTIVATIONS.includes(l.activation))
      return `activation '${String(l.activation)}' on layer '${l.name}' is not supported`;
  }
  for (const l of spec.layers.slice(0, -1)) {
    if (l.activation === 'softmax') return `softmax on hidden layer '${l.name}'`;
  }
  if (spec.loss === 'sparse_categorical_crossentropy' && last.activation !== 'softmax') {
    return 'sparse categorical cross-entropy needs a softmax output';
  }
  if (spec.loss === 'mse' && last.activation !== 'linear') return 'mse needs a linear output';
  return null;
}

export interface BatchResult {
  /** Summed loss over the batch's examples. */
  loss: number;
  /** Correct predictions (classification) in the batch. */
  correct: number;
}

export class DenseNet {
  readonly numParams: number;
  private readonly offsets: { kernel: number; bias: number; fanIn: number; units: number }[] = [];
  private acts: Buf<Float32Array>[] = [];
  private deltas: Buf<Float32Array>[] = [];
  /** One layer's bias gradient at a time, for sgdStep (which keeps no gradient of the whole model). */
  private biasGrad: Buf<Float32Array> | null = null;
  private capacity = 0;
  private readonly mem: KernelMemory;

  constructor(
    readonly spec: DenseNetSpec,
    private readonly k: Kernels,
  ) {
    this.mem = new KernelMemory(k);
    const reason = denseUnsupportedReason(spec);
    if (reason) throw new Error(`dense engine cannot run this model: ${reason}`);
    let offset = 0;
    let fanIn = spec.inputSize;
    for (const l of spec.layers) {
      this.offsets.push({ kernel: offset, bias: offset + fanIn * l.units, fanIn, units: l.units });
      offset += fanIn * l.units + l.units;
      fanIn = l.units;
    }
    this.numParams = offset;
  }

  get outputSize(): number {
    return this.spec.layers[this.spec.layers.length - 1].units;
  }

  /** Allocates the buffers for batches of up to m examples now, so later calls with m or fewer do not. */
  reserve(m: number): void {
    if (m > this.capacity) {
      this.mem.drop([...this.acts, ...this.deltas]);
      this.acts = this.offsets.map((o) => this.mem.f32(m * o.units));
      this.deltas = this.offsets.map((o) => this.mem.f32(m * o.units));
      this.capacity = m;
    }
    this.biasGrad ??= this.mem.f32(Math.max(...this.offsets.map((o) => o.units)));
    this.mem.refresh();
  }

  /** Forward pass for m examples; returns the output layer's pre-softmax logits (or linear outputs). */
  forward(w: Float32Array, x: Float32Array, m: number): Float32Array {
    this.reserve(m);
    let input = x;
    for (let i = 0; i < this.offsets.length; i++) {
      const o = this.offsets[i];
      const out = this.acts[i].a.subarray(0, m * o.units);
      this.k.gemm(
        false,
        false,
        m,
        o.units,
        o.fanIn,
        1,
        input,
        w.subarray(o.kernel, o.kernel + o.fanIn * o.units),
        0,
        out,
      );
      const act = this.spec.layers[i].activation;
      this.k.biasAct(out, w.subarray(o.bias, o.bias + o.units), m, o.units, act === 'relu');
      if (act === 'sigmoid') for (let j = 0; j < out.length; j++) out[j] = 1 / (1 + Math.exp(-out[j]));
      else if (act === 'tanh') for (let j = 0; j < out.length; j++) out[j] = Math.tanh(out[j]);
      input = out;
    }
    return input;
  }

  /**
   * Forward and backward over one batch: writes the gradient of the MEAN loss into g (overwriting it)
   * and returns the summed loss and correct count.
   */
  gradient(w: Float32Array, x: Float32Array, y: Int32Array | Float32Array, m: number, g: Float32Array): BatchResult {
    return this.backward(w, x, y, m, g, 0);
  }

  /**
   * One plain SGD step (w -= lr * gradient of the mean loss, no momentum) over one batch, with the update
   * folded into each layer's weight-gradient gemm (W = -lr * input^T * delta + W): no gradient buffer is
   * written, zeroed or read back by a separate update pass. Returns the batch's summed loss and correct count.
   * Rounds once per weight where gradient() then sgd round twice, so the bits differ from that pair (not the
   * result beyond float rounding).
   */
  sgdStep(w: Float32Array, x: Float32Array, y: Int32Array | Float32Array, m: number, lr: number): BatchResult {
    if (!(lr > 0) || !Number.isFinite(lr)) throw new Error(`learning rate must be a positive number, got ${lr}`);
    return this.backward(w, x, y, m, null, lr);
  }

  /** Forward, loss and backward; writes the gradient into g, or (g null) steps w by -lr times it layer by layer. */
  private backward(
    w: Float32Array,
    x: Float32Array,
    y: Int32Array | Float32Array,
    m: number,
    g: Float32Array | null,
    lr: number,
  ): BatchResult {
    const out = this.forward(w, x, m);
    const L = this.offsets.length;
    const top = this.offsets[L - 1];
    const delta = this.deltas[L - 1].a.subarray(0, m * top.units);
    let result: BatchResult;
    if (this.spec.loss === 'sparse_categorical_crossentropy') {
      if (!(y instanceof Int32Array)) throw new Error('classification labels must be an Int32Array');
      result = this.k.softmaxXent(out, y, m, top.units, 1 / m, delta);
    } else {
      // Keras MSE: mean over outputs, then over the batch.
      let loss = 0;
      const scale = 2 / (m * top.units);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < top.units; j++) {
          const e = out[i * top.units + j] - y[i * top.units + j];
          loss += (e * e) / top.units;
          delta[i * top.units + j] = e * scale;
        }
      }
      result = { loss, correct: 0 };
    }
    for (let i = L - 1; i >= 0; i--) {
      const o = this.offsets[i];
      const d = this.deltas[i].a.subarray(0, m * o.units);
      const input = i === 0 ? x : this.acts[i - 1].a.subarray(0, m * o.fanIn);
      const kernel = w.subarray(o.kernel, o.kernel + o.fanIn * o.units);
      // The delta of the layer below goes first: it needs this layer's weights before a step changes them.
      const prev = i === 0 ? null : this.deltas[i - 1].a.subarray(0, m * o.fanIn);
      if (prev) this.k.gemm(false, true, m, o.fanIn, o.units, 1, d, kernel, 0, prev);
      if (g) {
        this.k.gemm(
          true,
          false,
          o.fanIn,
          o.units,
          m,
          1,
          input,
          d,
          0,
          g.subarray(o.kernel, o.kernel + o.fanIn * o.units),
        );
        this.k.colSum(d, m, o.units, g.subarray(o.bias, o.bias + o.units));
      } else {
        this.k.gemm(true, false, o.fanIn, o.units, m, -lr, input, d, 1, kernel);
        const biasGrad = this.biasGrad!.a.subarray(0, o.units);
        this.k.colSum(d, m, o.units, biasGrad);
        this.k.sgd(w.subarray(o.bias, o.bias + o.units), biasGrad, lr, 0, null);
      }
      if (!prev) break;
      const act = this.spec.layers[i - 1].activation;
      if (act === 'relu') this.k.reluBackward(prev, input);
      else if (act === 'sigmoid') for (let j = 0; j < prev.length; j++) prev[j] *= input[j] * (1 - input[j]);
      else if (act === 'tanh') for (let j = 0; j < prev.length; j++) prev[j] *= 1 - input[j] * input[j];
    }
    return result;
  }

  /** Summed loss and correct count over m examples without computing gradients. */
  evaluate(w: Float32Array, x: Float32Array, y: Int32Array | Float32Array, m: number): BatchResult {
    const out = this.forward(w, x, m);
    const n = this.outputSize;
    if (this.spec.loss === 'sparse_categorical_crossentropy') {
      const scratch = this.deltas[this.offsets.length - 1].a.subarray(0, m * n);
      return this.k.softmaxXent(out, y as Int32Array, m, n, 1, scratch);
    }
    let loss = 0;
    for (let i = 0; i < m * n; i++) loss += (out[i] - y[i]) ** 2 / n;
    return { loss, correct: 0 };
  }

  /** Class probabilities (softmax) or regression outputs for m examples, as a new array. */
  predict(w: Float32Array, x: Float32Array, m: number): Float32Array {
    const out = new Float32Array(this.forward(w, x, m));
    if (this.spec.loss !== 'sparse_categorical_crossentropy') return out;
    softmaxRows(out, m, this.outputSize);
    return out;
  }
}

/** Row-wise softmax in place over m rows of n logits (max-subtracted, so large logits do not overflow). */
export function softmaxRows(out: Float32Array, m: number, n: number): void {
  for (let i = 0; i < m; i++) {
    let max = -Infinity;
    for (let j = 0; j < n; j++) max = Math.max(max, out[i * n + j]);
    let sum = 0;
    for (let j = 0; j < n; j++) sum += out[i * n + j] = Math.exp(out[i * n + j] - max);
    for (let j = 0; j < n; j++) out[i * n + j] /= sum;
  }
}
