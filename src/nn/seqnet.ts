/**
 * The training engine for sequential Keras-style networks on flat buffers: Dense, Conv2D (NHWC, stride
 * 1, padding 'same' or 'valid'), MaxPool2D (pool = stride, floor), Flatten and Dropout, the sequence
 * layers Conv1D (a Conv2D over a 1 x T image), GRU, LSTM (recurrent.ts), GlobalAveragePooling1D,
 * LayerNormalization and Embedding (sequence-ops.ts), the compact vision layers DepthwiseConv2D,
 * SeparableConv2D, BatchNormalization and GlobalAveragePooling2D (vision-ops.ts; all behind the LayerOp
 * contract of layer-op.ts), with
 * relu / linear / sigmoid / tanh activations, a softmax output with sparse cross-entropy or a linear
 * output with MSE. Same surface as DenseNet (dense.ts); weights are one Float32Array in the order and
 * shapes tfjs lists the Keras model's trainable weights (per layer with weights: kernel, then bias; a
 * conv kernel is [kh, kw, cin, cout]), so a flat parameter vector moves between this engine, tfjs and the wire
 * as it is.
 *
 * Convolutions run as im2col + gemm (conv-ops.ts): the column matrix (one row per output pixel,
 * kh * kw * cin columns) times the kernel read as a (kh * kw * cin) x cout matrix gives the output in
 * NHWC; backward, the kernel gradient is cols^T x dOut and the input gradient dOut x kernel^T folded
 * back by col2im. Column matrices are built for at most COLS_BUDGET floats at a time (examples are
 * processed in chunks beyond that), so a large evaluation batch does not take gigabytes.
 *
 * Dropout is Keras' inverted dropout: in training each unit is kept with probability 1 - rate and
 * scaled by 1 / (1 - rate); in evaluation it is the identity. Training mode is selected by passing a
 * random source to forward() / gradient(); the mask is drawn from it, so a seeded generator gives
 * deterministic runs. Without one, gradient() differentiates the inference-mode network (as tfjs does
 * for model.apply(x) without training: true). Training mode also makes BatchNormalization normalise with
 * the batch's statistics and move its moving statistics, which are non-trainable weights at the end of the
 * flat vector (after every trainable one, as tfjs lists model.weights) and are written into the caller's
 * weights by a training pass; their gradient is zero.
 *
 * Buffers (activations, column matrices, gradients) are allocated for the largest batch seen and
 * reused, so the training loop does not allocate. With the WebAssembly kernels (which have `alloc`),
 * they are allocated inside wasm memory and the weights, gradient and inputs are staged there, so every
 * kernel call is zero-copy; views are re-taken when the memory grows (`generation`). Buffers of a
 * smaller capacity are not returned to the wasm bump allocator (it frees only all at once). Callers may
 * pass weights / gradient already in wasm memory (used in place); as with any wasm allocation, a call
 * with a larger batch than before may grow the memory, after which the caller re-takes its own views.
 *
 * BROWSER-SAFE: imports nothing from Node.
 */
import type { Kernels } from './kernels.js';
import { KernelMemory, type Buf } from './kernel-memory.js';
import type { Activation, BatchResult, Loss } from './dense.js';
import type { TensorSpec } from '../core/params.js';
import {
  col2im,
  convGeom,
  im2col,
  maxPoolBackward,
  maxPoolForward,
  poolGeom,
  type ConvGeom,
  type PoolGeom,
} from './conv-ops.js';
import { softmaxRows } from './dense.js';
import type { LayerOp } from './layer-op.js';
import {
  CELL_ACTIVATIONS,
  GruOp,
  LstmOp,
  RECURRENT_ACTIVATIONS,
  type CellActivation,
  type RecurrentActivation,
} from './recurrent.js';
import { EmbeddingOp, GlobalAveragePool1DOp, LayerNormOp } from './sequence-ops.js';
import { isVisionLayer, visionOp, type VisionLayer } from './vision-ops.js';

/** The layers the engine runs; structurally the same as LayerSpec in model/spec.ts. */
export type SeqLayer =
  | { type: 'flatten'; name: string }
  | { type: 'dense'; name: string; units: number; activation: Activation }
  | {
      type: 'conv2d';
      name: string;
      filters: number;
      kernelSize: number;
      activation: Activation;
      padding: 'same' | 'valid';
    }
  | { type: 'maxpool2d'; name: string; poolSize: number }
  | { type: 'dropout'; name: string; rate: number }
  | {
      type: 'conv1d';
      name: string;
      filters: number;
      kernelSize: number;
      activation: Activation;
      padding: 'same' | 'valid';
    }
  | {
      type: 'gru' | 'lstm';
      name: string;
      units: number;
      activation: CellActivation;
      recurrentActivation: RecurrentActivation;
      returnSequences: boolean;
    }
  | { type: 'globalavgpool1d'; name: string }
  | { type: 'layernorm'; name: string; epsilon: number }
  | { type: 'embedding'; name: string; inputDim: number; outputDim: number }
  | VisionLayer;

/** A network description; a ModelSpec (model/spec.ts) is one. */
export interface SeqNetSpec {
  /** Shape of one example: [h, w, c] for images (NHWC), [features] for vectors. */
  inputShape: readonly number[];
  layers: readonly SeqLayer[];
  loss: Loss;
  /** When present (a user's model), the tensor shapes the weights must have; checked against the layers. */
  tensors?: readonly TensorSpec[];
}

/** Where dropout masks come from in training (e.g. core/rng.ts's Rng): uniform 32-bit integers. */
export interface DropoutRng {
  nextU32(): number;
}

/** Floats of column matrix built at once per conv layer (32 MiB); larger batches go in chunks of examples. */
export const COLS_BUDGET = 1 << 23;

const ACTIVATIONS: readonly string[] = ['relu', 'linear', 'softmax', 'sigmoid', 'tanh'] satisfies Activation[];

interface DenseOp {
  kind: 'dense';
  name: string;
  act: Activation;
  fanIn: number;
  units: number;
  kOff: number;
  bOff: number;
  inSize: number;
  outSize: number;
}

interface ConvOp {
  kind: 'conv';
  name: string;
  act: Activation;
  g: ConvGeom;
  filters: number;
  /** Output pixels per example (rows of the column matrix per example). */
  rows: number;
  /** kh * kw * cin: columns of the column matrix, rows of the kernel matrix. */
  colLen: number;
  /** Examples per im2col chunk. */
  chunk: number;
  kOff: number;
  bOff: number;
  inSize: number;
  outSize: number;
}

interface PoolOp {
  kind: 'pool';
  g: PoolGeom;
  inSize: number;
  outSize: number;
}

interface DropOp {
  kind: 'dropout';
  rate: number;
  inSize: number;
  outSize: number;
}

type Op = DenseOp | ConvOp | PoolOp | DropOp | LayerOp;

const hasWeights = (op: Op): boolean =>
  op.kind === 'dense' || op.kind === 'conv' || (op.kind === 'layer' && op.tensors.length > 0);

interface Plan {
  ops: Op[];
  tensors: TensorSpec[];
  numParams: number;
  inputSize: number;
  outputSize: number;
  /** Where the non-trainable state (BatchNormalization's moving statistics) starts: after every trainable weight. */
  stateStart: number;
}

const positiveInt = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v > 0;
const sameShape = (a: readonly number[], b: readonly number[]): boolean =>
  a.length === b.length && a.every((d, i) => d === b[i]);

export interface SeqNetOptions {
  /** Floats of column matrix per conv layer at once (default COLS_BUDGET); smaller means more chunks. */
  colsBudget?: number;
}

/** Compiles a spec into ops and the weight layout, or returns why the engine cannot run it. */
function plan(spec: SeqNetSpec, colsBudget = COLS_BUDGET): Plan | string {
  if (spec.loss !== 'sparse_categorical_crossentropy' && spec.loss !== 'mse')
    return `loss '${String(spec.loss)}' is not supported`;
  if (!Array.isArray(spec.inputShape) || spec.inputShape.length === 0 || !spec.inputShape.every(positiveInt)) {
    return `input shape [${String(spec.inputShape)}] is not a list of positive integers`;
  }
  const ops: Op[] = [];
  const tensors: TensorSpec[] = [];
  let shape = [...spec.inputShape];
  let offset = 0;
  const size = () => shape.reduce((a, b) => a * b, 1);
  const layers = spec.layers;
  let lastWeighted = -1;
  for (let li = 0; li < layers.length; li++) {
    const l = layers[li];
    const at = `layer '${l.name}'`;
    switch (l.type) {
      case 'flatten':
        shape = [size()];
        break;
      case 'dense': {
        if (shape.length !== 1) return `dense ${at} gets a rank-${shape.length} input (flatten first)`;
        if (!positiveInt(l.units)) return `dense ${at} has ${String(l.units)} units`;
        if (!ACTIVATIONS.includes(l.activation))
          return `activation '${String(l.activation)}' on ${at} is not supported`;
        const fanIn = shape[0];
        ops.push({
          kind: 'dense',
          name: l.name,
          act: l.activation,
          fanIn,
          units: l.units,
          kOff: offset,
          bOff: offset + fanIn * l.units,
          inSize: fanIn,
          outSize: l.units,
        });
        tensors.push(
          { name: `${l.name}/kernel`, shape: [fanIn, l.units] },
          { name: `${l.name}/bias`, shape: [l.units] },
        );
        offset += fanIn * l.units + l.units;
        shape = [l.units];
        lastWeighted = li;
        break;
      }
      case 'conv2d': {
        if (shape.length !== 3) return `conv2d ${at} needs an [h, w, c] input, gets rank ${shape.length}`;
        if (!positiveInt(l.filters) || !positiveInt(l.kernelSize))
          return `conv2d ${at} needs positive integer filters and kernel size`;
        if (l.padding !== 'same' && l.padding !== 'valid')
          return `padding '${String(l.padding)}' on ${at} is not supported`;
        if (!ACTIVATIONS.includes(l.activation))
          return `activation '${String(l.activation)}' on ${at} is not supported`;
        const [h, w, c] = shape;
        const g = convGeom(h, w, c, l.kernelSize, l.padding);
        if (g.outH < 1 || g.outW < 1) return `conv2d ${at}: kernel ${l.kernelSize} is larger than its ${h}x${w} input`;
        const colLen = g.kh * g.kw * c;
        const rows = g.outH * g.outW;
        const kSize = colLen * l.filters;
        ops.push({
          kind: 'conv',
          name: l.name,
          act: l.activation,
          g,
          filters: l.filters,
          rows,
          colLen,
          chunk: Math.max(1, Math.floor(colsBudget / (rows * colLen))),
          kOff: offset,
          bOff: offset + kSize,
          inSize: h * w * c,
          outSize: rows * l.filters,
        });
        tensors.push(
          { name: `${l.name}/kernel`, shape: [l.kernelSize, l.kernelSize, c, l.filters] },
          { name: `${l.name}/bias`, shape: [l.filters] },
        );
        offset += kSize + l.filters;
        shape = [g.outH, g.outW, l.filters];
        lastWeighted = li;
        break;
      }
      case 'conv1d': {
        if (shape.length !== 2) return `conv1d ${at} needs a [steps, features] input, gets rank ${shape.length}`;
        if (!positiveInt(l.filters) || !positiveInt(l.kernelSize))
          return `conv1d ${at} needs positive integer filters and kernel size`;
        if (l.padding !== 'same' && l.padding !== 'valid')
          return `padding '${String(l.padding)}' on ${at} is not supported`;
        if (!ACTIVATIONS.includes(l.activation))
          return `activation '${String(l.activation)}' on ${at} is not supported`;
        const [steps, c] = shape;
        const k = l.kernelSize;
        const outW = l.padding === 'same' ? steps : steps - k + 1;
        if (outW < 1) return `conv1d ${at}: kernel ${k} is longer than its ${steps} steps`;
        // A 1 x steps image with a 1 x k kernel: im2col's columns are (j, ci), the rows of the tfjs kernel [k, cin, cout].
        const g: ConvGeom = {
          h: 1,
          w: steps,
          c,
          kh: 1,
          kw: k,
          outH: 1,
          outW,
          padTop: 0,
          padLeft: l.padding === 'same' ? (k - 1) >> 1 : 0,
        };
        const colLen = k * c;
        ops.push({
          kind: 'conv',
          name: l.name,
          act: l.activation,
          g,
          filters: l.filters,
          rows: outW,
          colLen,
          chunk: Math.max(1, Math.floor(colsBudget / (outW * colLen))),
          kOff: offset,
          bOff: offset + colLen * l.filters,
          inSize: steps * c,
          outSize: outW * l.filters,
        });
        tensors.push(
          { name: `${l.name}/kernel`, shape: [k, c, l.filters] },
          { name: `${l.name}/bias`, shape: [l.filters] },
        );
        offset += colLen * l.filters + l.filters;
        shape = [outW, l.filters];
        lastWeighted = li;
        break;
      }
      case 'gru':
      case 'lstm':
      case 'globalavgpool1d':
      case 'layernorm':
      case 'embedding':
      case 'depthwiseconv2d':
      case 'separableconv2d':
      case 'batchnorm':
      case 'globalavgpool2d': {
        const op = isVisionLayer(l) ? visionOp(l, shape, offset) : sequenceOp(l, shape, offset, li);
        if (typeof op === 'string') return op;
        ops.push(op);
        tensors.push(...op.tensors);
        offset += op.tensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
        shape = op.outShape;
        if (op.tensors.length > 0) lastWeighted = li;
        break;
      }
      case 'maxpool2d': {
        if (shape.length !== 3) return `maxpool2d ${at} needs an [h, w, c] input, gets rank ${shape.length}`;
        if (!positiveInt(l.poolSize)) return `maxpool2d ${at} needs a positive integer pool size`;
        const g = poolGeom(shape[0], shape[1], shape[2], l.poolSize);
        if (g.outH < 1 || g.outW < 1)
          return `maxpool2d ${at}: pool ${l.poolSize} is larger than its ${shape[0]}x${shape[1]} input`;
        const inSize = size();
        shape = [g.outH, g.outW, g.c];
        ops.push({ kind: 'pool', g, inSize, outSize: size() });
        break;
      }
      case 'dropout':
        if (!(typeof l.rate === 'number' && l.rate >= 0 && l.rate < 1))
          return `dropout ${at} has rate ${String(l.rate)} (needs 0 <= rate < 1)`;
        if (l.rate > 0) ops.push({ kind: 'dropout', rate: l.rate, inSize: size(), outSize: size() });
        break;
      default:
        return `layer type '${String((l as { type?: unknown }).type)}' ('${String((l as { name?: unknown }).name)}') is not supported`;
    }
  }
  if (lastWeighted < 0) return 'no dense or conv layers';
  if (lastWeighted !== layers.length - 1 || layers[lastWeighted].type !== 'dense')
    return 'the last layer must be dense';
  for (const op of ops) {
    if ((op.kind === 'dense' || op.kind === 'conv') && op.act === 'softmax' && op !== ops[ops.length - 1])
      return `softmax on hidden layer '${op.name}'`;
  }
  const out = ops[ops.length - 1] as DenseOp;
  if (spec.loss === 'sparse_categorical_crossentropy' && out.act !== 'softmax')
    return 'sparse categorical cross-entropy needs a softmax output';
  if (spec.loss === 'mse' && out.act !== 'linear') return 'mse needs a linear output';
  // Non-trainable state after every trainable weight, as tfjs lists model.weights.
  const stateStart = offset;
  for (const op of ops) {
    if (op.kind !== 'layer' || !op.stateTensors) continue;
    op.stateOff = offset;
    tensors.push(...op.stateTensors);
    offset += op.stateTensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
  }
  if (spec.tensors) {
    const t = spec.tensors;
    if (t.length !== tensors.length || !t.every((s, i) => sameShape(s.shape, tensors[i].shape))) {
      return `the model's weights [${t.map((s) => `[${s.shape.join(',')}]`).join(', ')}] are not the layers' kernels and biases`;
    }
  }
  return {
    ops,
    tensors,
    numParams: offset,
    inputSize: spec.inputShape.reduce((a, b) => a * b, 1),
    outputSize: out.units,
    stateStart,
  };
}

/** The LayerOp of a sequence layer at weight offset wOff over inputs of the given shape, or why it cannot run. */
function sequenceOp(l: SeqLayer, shape: readonly number[], wOff: number, index: number): LayerOp | string {
  const at = `${l.type} layer '${l.name}'`;
  switch (l.type) {
    case 'gru':
    case 'lstm': {
      if (shape.length !== 2) return `${at} needs a [steps, features] input, gets rank ${shape.length}`;
      if (!positiveInt(l.units)) return `${at} has ${String(l.units)} units`;
      if (!CELL_ACTIVATIONS.includes(l.activation))
        return `activation '${String(l.activation)}' on ${at} is not supported`;
      if (!RECURRENT_ACTIVATIONS.includes(l.recurrentActivation)) {
        return `recurrent activation '${String(l.recurrentActivation)}' on ${at} is not supported (hardSigmoid or sigmoid)`;
      }
      const cfg = {
        name: l.name,
        units: l.units,
        activation: l.activation,
        recurrentActivation: l.recurrentActivation,
        returnSequences: l.returnSequences === true,
      };
      return l.type === 'gru' ? new GruOp(cfg, shape[0], shape[1], wOff) : new LstmOp(cfg, shape[0], shape[1], wOff);
    }
    case 'globalavgpool1d':
      if (shape.length !== 2) return `${at} needs a [steps, features] input, gets rank ${shape.length}`;
      return new GlobalAveragePool1DOp(l.name, shape[0], shape[1], wOff);
    case 'layernorm':
      if (!(typeof l.epsilon === 'number' && l.epsilon > 0)) return `${at} needs epsilon > 0, has ${String(l.epsilon)}`;
      return new LayerNormOp(l.name, shape, l.epsilon, wOff);
    case 'embedding':
      if (index !== 0) return `${at} must be the first layer (its integer inputs have no gradient)`;
      if (shape.length !== 1) return `${at} needs a [steps] input of indices, gets rank ${shape.length}`;
      if (!positiveInt(l.inputDim) || !positiveInt(l.outputDim))
        return `${at} needs positive integer inputDim and outputDim`;
      return new EmbeddingOp(l.name, shape[0], l.inputDim, l.outputDim, wOff);
    default:
      return `${at} is not a sequence layer`;
  }
}

/** Why the engine cannot run this network, or null when it can. */
export function seqUnsupportedReason(spec: SeqNetSpec): string | null {
  const p = plan(spec);
  return typeof p === 'string' ? p : null;
}

/** Tensor names and shapes of the weights, in tfjs order (as tensorSpecs in model/spec.ts). */
export function seqTensorSpecs(spec: SeqNetSpec): TensorSpec[] {
  const p = plan(spec);
  if (typeof p === 'string') throw new Error(`engine cannot run this model: ${p}`);
  return p.tensors;
}

export class SeqNet {
  readonly numParams: number;
  readonly inputSize: number;
  readonly outputSize: number;
  /** Activation floats one example takes in a forward pass (to size evaluation batches). */
  readonly floatsPerExample: number;
  /**
   * The non-trainable state (BatchNormalization's moving statistics, [stateStart, numParams)): its
   * gradient is always zero, and training passes (with `rng`) update it in the caller's weights.
   */
  readonly stateStart: number;
  private readonly ops: Op[];
  /** needInput[i]: some op before i has weights, so op i must pass the gradient to its input. */
  private readonly needInput: boolean[];
  private readonly mem: KernelMemory;

  // forward buffers, for fwdCap examples
  private fwdCap = 0;
  private outs: (Buf<Float32Array> | null)[] = [];
  private argmax: (Int32Array | null)[] = [];
  private cols: (Buf<Float32Array> | null)[] = [];
  private scratch: Buf<Float32Array> | null = null;
  private xStage: Buf<Float32Array> | null = null;
  private yStage: Buf<Int32Array> | null = null;
  // training buffers, for bwdCap examples
  private bwdCap = 0;
  private deltas: (Buf<Float32Array> | null)[] = [];
  private masks: (Buf<Float32Array> | null)[] = [];
  private dropOuts: (Buf<Float32Array> | null)[] = [];
  private dcols: Buf<Float32Array> | null = null;
  // wasm staging of weights and gradient
  private wStage: Buf<Float32Array> | null = null;
  private gStage: Buf<Float32Array> | null = null;
  /** The input of each op in the last forward pass (views; dropout in evaluation passes its input on). */
  private readonly ins: Float32Array[];
  private readonly outViews: Float32Array[];

  constructor(
    readonly spec: SeqNetSpec,
    private readonly k: Kernels,
    options: SeqNetOptions = {},
  ) {
    const p = plan(spec, options.colsBudget);
    if (typeof p === 'string') throw new Error(`engine cannot run this model: ${p}`);
    this.ops = p.ops;
    this.numParams = p.numParams;
    this.inputSize = p.inputSize;
    this.outputSize = p.outputSize;
    this.stateStart = p.stateStart;
    this.floatsPerExample = p.ops.reduce((a, o) => a + o.outSize, 0);
    let weighted = false;
    this.needInput = p.ops.map((o) => {
      const need = weighted;
      if (hasWeights(o)) weighted = true;
      return need;
    });
    this.mem = new KernelMemory(k);
    this.ins = p.ops.map(() => new Float32Array(0));
    this.outViews = p.ops.map(() => new Float32Array(0));
  }

  /** The weights' tensor names and shapes in tfjs order. */
  tensorSpecs(): TensorSpec[] {
    return seqTensorSpecs(this.spec);
  }

  /** Allocates the buffers for batches of up to m examples now (training too when `train`), so later calls do not. */
  reserve(m: number, train: boolean): void {
    this.ensureForward(m);
    if (train) this.ensureBackward(m);
  }

  private ensureForward(m: number): void {
    if (m <= this.fwdCap) return;
    const mem = this.mem;
    mem.drop([...this.outs, ...this.cols, this.scratch, this.xStage, this.yStage]);
    this.outs = this.ops.map((o) => (o.kind === 'dropout' ? null : mem.f32(m * o.outSize)));
    this.argmax = this.ops.map((o) => (o.kind === 'pool' ? new Int32Array(m * o.outSize) : null));
    this.cols = this.ops.map((o) => (o.kind === 'conv' ? mem.f32(Math.min(m, o.chunk) * o.rows * o.colLen) : null));
    this.scratch = mem.f32(m * this.outputSize);
    for (const o of this.ops) if (o.kind === 'layer') o.reserve(mem, m, false);
    if (mem.wasm) {
      // Ops whose first kernel call reads the input directly: staged so that call does not copy.
      this.xStage = this.ops[0].kind === 'dense' || this.ops[0].kind === 'layer' ? mem.f32(m * this.inputSize) : null;
      this.yStage = this.spec.loss === 'mse' ? null : mem.i32(m); // labels for softmaxXent; mse targets are read in JS
    }
    this.fwdCap = m;
  }

  private ensureBackward(m: number): void {
    if (m <= this.bwdCap) return;
    const mem = this.mem;
    mem.drop([...this.deltas, ...this.masks, ...this.dropOuts, this.dcols]);
    this.deltas = this.ops.map((o) => mem.f32(m * o.outSize));
    this.masks = this.ops.map((o) => (o.kind === 'dropout' ? mem.f32(m * o.outSize) : null));
    this.dropOuts = this.ops.map((o) => (o.kind === 'dropout' ? mem.f32(m * o.outSize) : null));
    let dcols = 0;
    this.ops.forEach((o, i) => {
      if (o.kind === 'conv' && this.needInput[i]) dcols = Math.max(dcols, Math.min(m, o.chunk) * o.rows * o.colLen);
    });
    this.dcols = dcols > 0 ? mem.f32(dcols) : null;
    for (const o of this.ops) if (o.kind === 'layer') o.reserve(mem, m, true);
    this.bwdCap = m;
  }

  /**
   * Buffers for m examples (and training), then views re-taken: after this nothing allocates until the
   * call returns, so views stay valid. Returns the weights and input the kernels should read (staged
   * into wasm memory when they live outside it).
   */
  private prepare(
    w: Float32Array,
    x: Float32Array,
    m: number,
    train: boolean,
    g?: Float32Array,
  ): [Float32Array, Float32Array] {
    this.checkInputs(w, x, m);
    this.ensureForward(m);
    if (train) this.ensureBackward(m);
    const mem = this.mem;
    if (mem.wasm && !mem.inside(w)) this.wStage ??= mem.f32(this.numParams);
    if (mem.wasm && g && !mem.inside(g)) this.gStage ??= mem.f32(this.numParams);
    mem.refresh();
    let ws = w;
    if (this.wStage && !mem.inside(w)) {
      ws = this.wStage.a;
      ws.set(w.subarray(0, this.numParams));
    }
    let xs = x;
    if (this.xStage && !mem.inside(x)) {
      xs = this.xStage.a.subarray(0, m * this.inputSize);
      xs.set(x.subarray(0, m * this.inputSize));
    }
    return [ws, xs];
  }

  private checkInputs(w: Float32Array, x: Float32Array, m: number): void {
    if (!Number.isInteger(m) || m < 1) throw new RangeError(`batch size must be a whole number >= 1, got ${m}`);
    if (w.length < this.numParams)
      throw new RangeError(`weights have ${w.length} values, the model needs ${this.numParams}`);
    if (x.length < m * this.inputSize)
      throw new RangeError(`input has ${x.length} values, ${m} examples need ${m * this.inputSize}`);
  }

  /**
   * Forward pass for m examples; returns the output layer's pre-softmax logits (or linear outputs), a
   * view of an internal buffer. With `rng`, dropout layers drop (training mode).
   */
  forward(w: Float32Array, x: Float32Array, m: number, rng?: DropoutRng): Float32Array {
    const [ws, xs] = this.prepare(w, x, m, rng !== undefined);
    const out = this.run(ws, xs, m, rng);
    this.keepState(ws, w, rng);
    return out;
  }

  /** A training pass over staged weights moved the moving statistics there: back into the caller's weights. */
  private keepState(ws: Float32Array, w: Float32Array, rng: DropoutRng | undefined): void {
    if (rng && ws !== w && this.stateStart < this.numParams)
      w.set(ws.subarray(this.stateStart, this.numParams), this.stateStart);
  }

  private run(w: Float32Array, x: Float32Array, m: number, rng: DropoutRng | undefined): Float32Array {
    const k = this.k;
    let input = x.subarray(0, m * this.inputSize);
    for (let i = 0; i < this.ops.length; i++) {
      const op = this.ops[i];
      this.ins[i] = input;
      let out: Float32Array;
      switch (op.kind) {
        case 'dense': {
          out = this.outs[i]!.a.subarray(0, m * op.outSize);
          k.gemm(false, false, m, op.units, op.fanIn, 1, input, w.subarray(op.kOff, op.bOff), 0, out);
          k.biasAct(out, w.subarray(op.bOff, op.bOff + op.units), m, op.units, op.act === 'relu');
          activate(out, op.act);
          break;
        }
        case 'conv': {
          out = this.outs[i]!.a.subarray(0, m * op.outSize);
          const cols = this.cols[i]!.a;
          const kernel = w.subarray(op.kOff, op.bOff);
          for (let b0 = 0; b0 < m; b0 += op.chunk) {
            const mc = Math.min(op.chunk, m - b0);
            im2col(op.g, input.subarray(b0 * op.inSize, (b0 + mc) * op.inSize), mc, cols);
            k.gemm(
              false,
              false,
              mc * op.rows,
              op.filters,
              op.colLen,
              1,
              cols,
              kernel,
              0,
              out.subarray(b0 * op.outSize, (b0 + mc) * op.outSize),
            );
          }
          k.biasAct(out, w.subarray(op.bOff, op.bOff + op.filters), m * op.rows, op.filters, op.act === 'relu');
          activate(out, op.act);
          break;
        }
        case 'pool':
          out = this.outs[i]!.a.subarray(0, m * op.outSize);
          maxPoolForward(op.g, input, m, out, this.argmax[i]!);
          break;
        case 'layer':
          out = this.outs[i]!.a.subarray(0, m * op.outSize);
          op.forward(k, w, input, out, m, rng !== undefined);
          break;
        case 'dropout': {
          if (!rng) {
            out = input;
            break;
          }
          out = this.dropOuts[i]!.a.subarray(0, m * op.outSize);
          const mask = this.masks[i]!.a;
          const threshold = op.rate * 4294967296;
          const scale = 1 / (1 - op.rate);
          for (let j = 0; j < out.length; j++) {
            const keep = rng.nextU32() >= threshold;
            mask[j] = keep ? scale : 0;
            out[j] = input[j] * mask[j];
          }
          break;
        }
      }
      this.outViews[i] = out;
      input = out;
    }
    return input;
  }

  /**
   * Forward and backward over one batch: writes the gradient of the MEAN loss into g (overwriting it)
   * and returns the summed loss and correct count. With `rng`, in training mode (dropout drops).
   */
  gradient(
    w: Float32Array,
    x: Float32Array,
    y: Int32Array | Float32Array,
    m: number,
    g: Float32Array,
    rng?: DropoutRng,
  ): BatchResult {
    if (g.length < this.numParams)
      throw new RangeError(`gradient has ${g.length} values, the model needs ${this.numParams}`);
    const [ws, xs] = this.prepare(w, x, m, true, g);
    const gs = this.gStage && !this.mem.inside(g) ? this.gStage.a : g;
    const out = this.run(ws, xs, m, rng);
    const L = this.ops.length;
    const n = this.outputSize;
    const delta = this.deltas[L - 1]!.a.subarray(0, m * n);
    const result = this.lossDelta(out, y, m, 1 / m, delta);
    this.backward(ws, m, gs);
    this.keepState(ws, w, rng);
    if (gs !== g) g.set(gs.subarray(0, this.numParams));
    return result;
  }

  /** Summed loss and correct count over the batch; writes dLoss/dlogits * scale * m into delta. */
  private lossDelta(
    out: Float32Array,
    y: Int32Array | Float32Array,
    m: number,
    scale: number,
    delta: Float32Array,
  ): BatchResult {
    const n = this.outputSize;
    if (this.spec.loss === 'sparse_categorical_crossentropy') {
      if (!(y instanceof Int32Array)) throw new Error('classification labels must be an Int32Array');
      if (y.length < m) throw new RangeError(`labels have ${y.length} values, ${m} examples need ${m}`);
      let labels = y;
      if (this.yStage && !this.mem.inside(y)) {
        labels = this.yStage.a.subarray(0, m);
        labels.set(y.subarray(0, m));
      }
      return this.k.softmaxXent(out, labels, m, n, scale, delta);
    }
    if (y.length < m * n) throw new RangeError(`targets have ${y.length} values, ${m} examples need ${m * n}`);
    // Keras MSE: mean over outputs, then over the batch.
    let loss = 0;
    const s = (2 * scale) / n;
    for (let i = 0; i < m * n; i++) {
      const e = out[i] - y[i];
      loss += (e * e) / n;
      delta[i] = e * s;
    }
    return { loss, correct: 0 };
  }

  private backward(w: Float32Array, m: number, g: Float32Array): void {
    const k = this.k;
    const L = this.ops.length;
    for (let i = L - 1; i >= 0; i--) {
      const op = this.ops[i];
      const d = this.deltas[i]!.a.subarray(0, m * op.outSize);
      const input = this.ins[i];
      const prev = this.needInput[i] ? this.deltas[i - 1]!.a.subarray(0, m * op.inSize) : null;
      switch (op.kind) {
        case 'dense': {
          if (i < L - 1) activateBackward(k, d, this.outViews[i], op.act);
          const kernel = w.subarray(op.kOff, op.bOff);
          k.gemm(true, false, op.fanIn, op.units, m, 1, input, d, 0, g.subarray(op.kOff, op.bOff));
          k.colSum(d, m, op.units, g.subarray(op.bOff, op.bOff + op.units));
          if (prev) k.gemm(false, true, m, op.fanIn, op.units, 1, d, kernel, 0, prev);
          break;
        }
        case 'conv': {
          activateBackward(k, d, this.outViews[i], op.act);
          const kernel = w.subarray(op.kOff, op.bOff);
          const gk = g.subarray(op.kOff, op.bOff);
          k.colSum(d, m * op.rows, op.filters, g.subarray(op.bOff, op.bOff + op.filters));
          const cols = this.cols[i]!.a;
          const single = m <= op.chunk; // the forward pass left this batch's columns in place
          for (let b0 = 0; b0 < m; b0 += op.chunk) {
            const mc = Math.min(op.chunk, m - b0);
            const rows = mc * op.rows;
            const dc = d.subarray(b0 * op.outSize, (b0 + mc) * op.outSize);
            if (!single) im2col(op.g, input.subarray(b0 * op.inSize, (b0 + mc) * op.inSize), mc, cols);
            k.gemm(true, false, op.colLen, op.filters, rows, 1, cols, dc, b0 === 0 ? 0 : 1, gk);
            if (prev) {
              const dcols = this.dcols!.a;
              k.gemm(false, true, rows, op.colLen, op.filters, 1, dc, kernel, 0, dcols);
              col2im(op.g, dcols, mc, prev.subarray(b0 * op.inSize, (b0 + mc) * op.inSize));
            }
          }
          break;
        }
        case 'pool':
          if (prev) maxPoolBackward(op.g, d, this.argmax[i]!, m, prev);
          break;
        case 'layer':
          op.backward(k, w, input, d, m, g, prev);
          break;
        case 'dropout':
          if (prev) {
            const mask = this.masks[i]!.a;
            if (this.outViews[i] === input)
              prev.set(d); // evaluation mode: identity
            else for (let j = 0; j < prev.length; j++) prev[j] = d[j] * mask[j];
          }
          break;
      }
      if (!this.needInput[i]) break;
    }
  }

  /** Summed loss and correct count over m examples without computing gradients (no dropout). */
  evaluate(w: Float32Array, x: Float32Array, y: Int32Array | Float32Array, m: number): BatchResult {
    const out = this.forward(w, x, m);
    return this.lossDelta(out, y, m, 1, this.scratch!.a.subarray(0, m * this.outputSize));
  }

  /** Class probabilities (softmax) or regression outputs for m examples, as a new array (no dropout). */
  predict(w: Float32Array, x: Float32Array, m: number): Float32Array {
    const out = new Float32Array(this.forward(w, x, m));
    if (this.spec.loss !== 'sparse_categorical_crossentropy') return out;
    softmaxRows(out, m, this.outputSize);
    return out;
  }
}

/** The activations biasAct does not apply (relu it does; softmax is the loss's; linear is nothing). */
function activate(out: Float32Array, act: Activation): void {
  if (act === 'sigmoid') for (let j = 0; j < out.length; j++) out[j] = 1 / (1 + Math.exp(-out[j]));
  else if (act === 'tanh') for (let j = 0; j < out.length; j++) out[j] = Math.tanh(out[j]);
}

/** d (gradient w.r.t. a layer's activated output) becomes the gradient w.r.t. its pre-activation. */
function activateBackward(k: Kernels, d: Float32Array, out: Float32Array, act: Activation): void {
  if (act === 'relu') k.reluBackward(d, out);
  else if (act === 'sigmoid') for (let j = 0; j < d.length; j++) d[j] *= out[j] * (1 - out[j]);
  else if (act === 'tanh') for (let j = 0; j < d.length; j++) d[j] *= 1 - out[j] * out[j];
}
