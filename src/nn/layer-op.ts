/**
 * The contract of a layer the sequence-layer files add to SeqNet (recurrent.ts, sequence-ops.ts): each
 * owns its caches and computes its own forward and backward pass, while SeqNet owns the activations,
 * deltas, weights and gradient buffers and calls the op in order. Matrix products go through `Kernels`
 * (native, WASM or JS); elementwise loops are plain TypeScript.
 *
 * Buffers an op keeps come from the SeqNet's KernelMemory (inside wasm memory with the WASM kernels),
 * so no kernel call copies and no wasm memory growth happens mid-pass; views are re-taken by the
 * memory's refresh() before each pass, so an op reads `buf.a` at call time, never a saved view.
 *
 * BROWSER-SAFE: imports nothing from Node.
 */
import type { Kernels } from './kernels.js';
import type { KernelMemory } from './kernel-memory.js';
import type { TensorSpec } from '../core/params.js';

export interface LayerOp {
  readonly kind: 'layer';
  readonly name: string;
  /** Floats of one example's input and output. */
  readonly inSize: number;
  readonly outSize: number;
  /** Shape of one example's output. */
  readonly outShape: number[];
  /** Tensors (tfjs order) at weight offset `wOff`; empty for a layer without weights. */
  readonly tensors: TensorSpec[];
  readonly wOff: number;
  /** False when the op cannot pass a gradient to its input (Embedding's integer indices): it must come first. */
  readonly differentiableInput: boolean;
  /**
   * Non-trainable tensors the op updates itself in training passes (BatchNormalization's moving mean and
   * variance), laid out after every trainable tensor of the model at `stateOff` (set by the planner), as tfjs
   * lists model.weights: trainable weights first, then non-trainable. Their gradient is always zero.
   */
  readonly stateTensors?: TensorSpec[];
  stateOff?: number;
  /** Allocates caches for m examples (and the backward pass when `train`); called again only for larger m. */
  reserve(mem: KernelMemory, m: number, train: boolean): void;
  /**
   * out (m x outSize) from input (m x inSize); w is the whole flat weight vector. `training` selects
   * training behaviour where a layer has one (BatchNormalization: batch statistics, and the moving
   * statistics in w updated).
   */
  forward(k: Kernels, w: Float32Array, input: Float32Array, out: Float32Array, m: number, training?: boolean): void;
  /**
   * From dOut (gradient of the loss w.r.t. out, which the op may overwrite): writes this layer's weight
   * gradient into g (its own slice, overwritten) and, when dIn is given, the input gradient into dIn.
   * Reads what the last forward pass cached.
   */
  backward(
    k: Kernels,
    w: Float32Array,
    input: Float32Array,
    dOut: Float32Array,
    m: number,
    g: Float32Array,
    dIn: Float32Array | null,
  ): void;
}

export const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);
