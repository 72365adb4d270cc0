/**
 * LocalTrainer on the engine: flat buffers through native, wasm or JS kernels, no tensors. Dense-only
 * models run on DenseNet (nn/dense.ts), models with convolutions, pooling or dropout on SeqNet
 * (nn/seqnet.ts); both lay weights out as tfjs does.
 */
import type { Dataset } from '../data/types.js';
import { featureSize } from '../data/types.js';
import { DenseNet, denseUnsupportedReason, type BatchResult, type DenseNetSpec } from '../nn/dense.js';
import { SeqNet, type DropoutRng, type SeqNetSpec } from '../nn/seqnet.js';
import type { Kernels } from '../nn/kernels.js';
import { FlatOptimizer, optimizerStateSlots, type OptimizerConfig } from '../nn/optimizer.js';
import { KernelMemory, type Buf } from '../nn/kernel-memory.js';
import { Rng } from '../core/rng.js';
import { asDenseNet } from './spec.js';
import type { EvalOutcome, GradientOutcome, LocalTrainer, TrainConfig, TrainOutcome, WeightRange } from './trainer.js';
import { validateBatchSize, validateTrainConfig } from './trainer.js';

const EVAL_BATCH = 512;
/** Activation floats an evaluation batch may take (16 MiB): the cnn evaluates ~80 examples at a time. */
const EVAL_FLOATS = 1 << 22;

/** What EngineTrainer needs of a network: DenseNet and SeqNet both provide it. */
interface EngineNet {
  readonly numParams: number;
  readonly outputSize: number;
  gradient(
    w: Float32Array,
    x: Float32Array,
    y: Int32Array | Float32Array,
    m: number,
    g: Float32Array,
    rng?: DropoutRng,
  ): BatchResult;
  evaluate(w: Float32Array, x: Float32Array, y: Int32Array | Float32Array, m: number): BatchResult;
  predict(w: Float32Array, x: Float32Array, m: number): Float32Array;
  /** Allocates the net's buffers for batches of up to m examples now, so the training loop does not. */
  reserve(m: number, train: boolean): void;
}

export class EngineTrainer implements LocalTrainer {
  readonly kind = 'engine' as const;
  /** The kernel set this trainer runs on (native-openblas, wasm-simd, js). */
  get kernelsName(): string {
    return this.kernels.name;
  }
  private readonly net: EngineNet;
  private readonly inputSize: number;
  private readonly evalBatch: number;
  /**
   * Whether training passes a random source, which puts the net in training mode: it has dropout with
   * rate > 0 (masks drawn from it) or BatchNormalization (batch statistics, moving statistics updated).
   */
  protected readonly trainingMode: boolean;
  /** Where the non-trainable state starts (moving statistics; numParams when there is none). */
  private readonly stateStart: number;
  /**
   * train() works in buffers from here: with the WASM kernels they live inside wasm memory, so weights,
   * gradient, optimizer state and the batch reach every kernel without copies. Allocated once for the
   * largest batch and reused by later calls (wasm memory is never freed piecemeal).
   */
  private readonly mem: KernelMemory;
  private wBuf: Buf<Float32Array> | null = null;
  private gBuf: Buf<Float32Array> | null = null;
  private stateBufs: Buf<Float32Array>[] = [];
  private xBuf: Buf<Float32Array> | null = null;
  private yInt: Buf<Int32Array> | null = null;
  private yFloat: Buf<Float32Array> | null = null;

  /**
   * A DenseNetSpec runs on DenseNet. A model spec (ModelSpec or SeqNetSpec) runs on DenseNet when it is
   * dense-only (Flatten + Dense), else on SeqNet; throws when the engine cannot run it.
   */
  constructor(
    spec: DenseNetSpec | SeqNetSpec,
    protected readonly kernels: Kernels,
  ) {
    this.mem = this.newMemory(kernels);
    let dense: DenseNetSpec | null = null;
    if (!('inputShape' in spec)) dense = spec;
    else {
      const d = asDenseNet(spec);
      if (d && denseUnsupportedReason(d) === null) dense = d;
    }
    if (dense) {
      this.net = new DenseNet(dense, kernels);
      this.inputSize = dense.inputSize;
      this.evalBatch = EVAL_BATCH;
      this.trainingMode = false;
      this.stateStart = this.net.numParams;
    } else {
      const seq = new SeqNet(spec as SeqNetSpec, kernels);
      this.net = seq;
      this.inputSize = seq.inputSize;
      this.evalBatch = Math.max(16, Math.min(EVAL_BATCH, Math.floor(EVAL_FLOATS / seq.floatsPerExample)));
      this.trainingMode = (spec as SeqNetSpec).layers.some(
        (l) => (l.type === 'dropout' && l.rate > 0) || l.type === 'batchnorm',
      );
      this.stateStart = seq.stateStart;
    }
  }

  /**
   * Where train() keeps weights, gradient, optimizer state and batch (a subclass may share them with threads).
   * @internal
   */
  protected newMemory(kernels: Kernels): KernelMemory {
    return new KernelMemory(kernels);
  }

  private checkData(data: Dataset, weights: Float32Array): void {
    if (featureSize(data) !== this.inputSize) {
      throw new Error(
        `data ${data.source} has ${featureSize(data)} features per example, the model takes ${this.inputSize}`,
      );
    }
    if (weights.length !== this.net.numParams)
      throw new Error(`weights have ${weights.length} values, the model needs ${this.net.numParams}`);
    if (data.n === 0) throw new Error(`data ${data.source} is empty`);
  }

  /** The rows start..start+m of the data, as views (no copy). */
  private rows(data: Dataset, start: number, m: number): [Float32Array, Int32Array | Float32Array] {
    const f = featureSize(data);
    return [data.x.subarray(start * f, (start + m) * f), data.y.subarray(start, start + m)];
  }

  /** Copies the rows order[start..start+m) into the batch buffers (prepared by prepareTrain). */
  private gather(
    data: Dataset,
    order: Int32Array,
    start: number,
    m: number,
  ): [Float32Array, Int32Array | Float32Array] {
    const f = featureSize(data);
    const x = this.xBuf!.a;
    if (this.kernels.gatherRows) this.kernels.gatherRows(data.x, f, order, start, m, x);
    else for (let i = 0; i < m; i++) x.set(data.x.subarray(order[start + i] * f, (order[start + i] + 1) * f), i * f);
    return [x.subarray(0, m * f), this.gatherLabels(data, order, start, m)];
  }

  /** Copies the labels (or targets) of the rows order[start..start+m) into the batch buffer. */
  private gatherLabels(data: Dataset, order: Int32Array, start: number, m: number): Int32Array | Float32Array {
    const y = data.y instanceof Int32Array ? this.yInt!.a : this.yFloat!.a;
    for (let i = 0; i < m; i++) y[i] = data.y[order[start + i]];
    return y.subarray(0, m);
  }

  /**
   * Allocates (first time, or for a larger batch) the weights, gradient, optimizer state and batch
   * buffers, the net's buffers first, then re-takes every view: the training loop allocates nothing, so
   * its views stay valid. Returns the weights buffer holding a copy of `global` and zeroed optimizer state.
   */
  private prepareTrain(
    global: Float32Array,
    data: Dataset,
    cfg: TrainConfig,
  ): { w: Buf<Float32Array>; g: Buf<Float32Array>; state: Buf<Float32Array>[] } {
    const batch = Math.min(cfg.batchSize, data.n);
    const f = featureSize(data);
    const n = global.length;
    const mem = this.mem;
    this.net.reserve(batch, true);
    this.wBuf ??= mem.f32(n);
    this.gBuf ??= mem.f32(n);
    while (this.stateBufs.length < optimizerStateSlots(cfg.optimizer.name)) this.stateBufs.push(mem.f32(n));
    if (!this.xBuf || this.xBuf.len < batch * f) {
      mem.drop([this.xBuf]);
      this.xBuf = mem.f32(batch * f);
    }
    if (data.y instanceof Int32Array && (!this.yInt || this.yInt.len < batch)) {
      mem.drop([this.yInt]);
      this.yInt = mem.i32(batch);
    } else if (data.y instanceof Float32Array && (!this.yFloat || this.yFloat.len < batch)) {
      mem.drop([this.yFloat]);
      this.yFloat = mem.f32(batch);
    }
    this.net.reserve(batch, true); // re-takes the net's views if the allocations above grew wasm memory
    mem.refresh();
    this.wBuf.a.set(global);
    const state = this.stateBufs.slice(0, optimizerStateSlots(cfg.optimizer.name));
    for (const s of state) s.a.fill(0);
    return { w: this.wBuf, g: this.gBuf, state };
  }

  async train(
    global: Float32Array,
    data: Dataset,
    cfg: TrainConfig,
    shift?: Float32Array,
    frozen?: readonly WeightRange[],
  ): Promise<TrainOutcome> {
    validateTrainConfig(cfg);
    this.checkData(data, global);
    if (shift && shift.length !== global.length)
      throw new Error(`gradient shift has ${shift.length} values, the model ${global.length}`);
    const bufs = this.prepareTrain(global, data, cfg);
    const opt = new FlatOptimizer(cfg.optimizer, this.kernels, global.length, bufs.state);
    const rng = new Rng(cfg.seed);
    // Dropout masks come from their own stream (fork does not advance rng), so the shuffle is the same
    // with or without dropout.
    const dropRng = this.trainingMode ? rng.fork('dropout') : undefined;
    const maxSteps = cfg.maxSteps ?? Infinity;
    const plain = this.plainStep(cfg, shift, frozen);
    let steps = 0;
    let loss = 0;
    let correct = 0;
    let seen = 0;
    for (let e = 0; e < cfg.epochs && steps < maxSteps; e++) {
      const order = rng.permutation(data.n);
      loss = correct = seen = 0; // metrics report the last epoch, as Keras' history does
      for (let s = 0; s < data.n && steps < maxSteps; s += cfg.batchSize) {
        const m = Math.min(cfg.batchSize, data.n - s);
        this.mem.refresh(); // nothing should have grown wasm memory since prepareTrain, but views stay right if it did
        const w = bufs.w.a;
        const g = bufs.g.a;
        // A fused step that gathers its own batch takes the rows' indices and the whole data instead of a copy.
        const rows = plain && this.fusedStepGathers() ? order.subarray(s, s + m) : undefined;
        let [xb, yb] = rows ? [data.x, this.gatherLabels(data, order, s, m)] : this.gather(data, order, s, m);
        const stateArrays = bufs.state.map((s) => s.a);
        let r = plain ? this.fusedStep(w, xb, yb, m, cfg.optimizer, stateArrays, steps + 1, rows) : null;
        if (!r && rows) [xb, yb] = this.gather(data, order, s, m);
        if (!r) {
          r = this.batchGradient(w, xb, yb, m, g, dropRng);
          if (cfg.proxMu > 0) addProximalGradient(g, w, global, cfg.proxMu);
          if (shift) addInPlace(g, shift);
          // A zero gradient leaves a frozen weight as it is under SGD, momentum and Adam (their state starts at zero).
          for (const r of frozen ?? []) g.fill(0, r.offset, r.offset + r.size);
          // The moving statistics move by the forward pass only (not by FedProx or a gradient shift).
          g.fill(0, this.stateStart);
          this.optimizerStep(opt, w, g, bufs.state);
        }
        steps++;
        loss += r.loss;
        correct += r.correct;
        seen += m;
      }
    }
    this.mem.refresh();
    return {
      weights: bufs.w.a.slice(),
      numExamples: data.n,
      steps,
      metrics: { loss: loss / seen, accuracy: correct / seen },
    };
  }

  /**
   * Whether train() may take each step in one fused call (fusedStep): nothing changes the gradient between the
   * backward pass and the optimizer step (FedProx, a gradient shift, frozen ranges, moving statistics, dropout).
   */
  private plainStep(cfg: TrainConfig, shift?: Float32Array, frozen?: readonly WeightRange[]): boolean {
    // An all-zero shift (SCAFFOLD's first round, or one node, whose controls cancel) changes no gradient: such a
    // step is plain and takes the same arithmetic as one with no shift, so the two agree bit for bit.
    const shifted = shift !== undefined && shift.some((v) => v !== 0);
    const plain = cfg.proxMu === 0 && !shifted && !frozen?.length;
    return plain && this.stateStart === this.net.numParams && !this.trainingMode;
  }

  /**
   * Whether fusedStep gathers its own batch: it is then given the whole data as x and the batch's row indices as
   * `rows` (the labels still gathered), and must take the step (a null from it costs a gather after all).
   * @internal
   */
  protected fusedStepGathers(): boolean {
    return false;
  }

  /**
   * One plain step of train() over a batch in one call, or null when this trainer takes the gradient and the
   * optimizer step apart. Here: plain SGD on DenseNet, folded into the backward pass (DenseNet.sgdStep); a subclass
   * may fuse more (every optimizer, over threads) or nothing. `state` is the optimizer's state, `step` counts the
   * run's steps from 1.
   * @internal
   */
  protected fusedStep(
    w: Float32Array,
    x: Float32Array,
    y: Int32Array | Float32Array,
    m: number,
    opt: OptimizerConfig,
    state: readonly Float32Array[],
    step: number,
    rows?: Int32Array,
  ): BatchResult | null {
    void state;
    void step;
    void rows;
    return this.net instanceof DenseNet && opt.name === 'sgd' ? this.net.sgdStep(w, x, y, m, opt.lr) : null;
  }

  /**
   * The mean gradient of one batch of m examples into g, with its summed loss and correct count: the step train()
   * takes for every batch (a subclass may spread it over threads).
   * @internal
   */
  batchGradient(
    w: Float32Array,
    x: Float32Array,
    y: Int32Array | Float32Array,
    m: number,
    g: Float32Array,
    rng?: DropoutRng,
  ): BatchResult {
    return this.net.gradient(w, x, y, m, g, rng);
  }

  /**
   * One optimizer step of train() (a subclass may spread it over threads); `state` is the optimizer's state.
   * @internal
   */
  protected optimizerStep(opt: FlatOptimizer, w: Float32Array, g: Float32Array, state: Buf<Float32Array>[]): void {
    void state;
    opt.step(w, g);
  }

  async gradient(global: Float32Array, data: Dataset, batchSize: number): Promise<GradientOutcome> {
    this.checkData(data, global);
    validateBatchSize(batchSize); // a batch size of 0 would never advance
    const g = new Float32Array(global.length);
    const sum = new Float64Array(global.length);
    let loss = 0;
    let correct = 0;
    for (let s = 0; s < data.n; s += batchSize) {
      const m = Math.min(batchSize, data.n - s);
      const [xb, yb] = this.rows(data, s, m);
      const r = this.net.gradient(global, xb, yb, m, g);
      for (let i = 0; i < g.length; i++) sum[i] += g[i] * m; // batch-mean gradient back to a sum
      loss += r.loss;
      correct += r.correct;
    }
    const gradient = new Float32Array(global.length);
    for (let i = 0; i < g.length; i++) gradient[i] = sum[i] / data.n;
    return { gradient, numExamples: data.n, metrics: { loss: loss / data.n, accuracy: correct / data.n } };
  }

  async evaluate(weights: Float32Array, data: Dataset): Promise<EvalOutcome> {
    const { losses, correct } = this.evaluateRange(weights, data, 0, data.n);
    let loss = 0;
    for (const l of losses) loss += l;
    return { loss: loss / data.n, accuracy: correct / data.n, numExamples: data.n };
  }

  /** Examples per evaluation batch: evaluateRange's start must be a multiple of it. */
  get evalBatchSize(): number {
    return this.evalBatch;
  }

  /**
   * The summed loss of each evaluation batch of rows start..end (in order) and the correct count: evaluate() adds
   * these up, so ranges split at multiples of evalBatchSize and evaluated anywhere (another thread) give, summed in
   * order, the bytes evaluate() gives.
   */
  evaluateRange(
    weights: Float32Array,
    data: Dataset,
    start: number,
    end: number,
  ): { losses: Float64Array; correct: number } {
    this.checkData(data, weights);
    if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start <= end && end <= data.n))
      throw new RangeError(`evaluation rows ${start}..${end} are not within 0..${data.n}`);
    if (start % this.evalBatch !== 0)
      throw new RangeError(`evaluation rows must start at a multiple of ${this.evalBatch}, got ${start}`);
    const losses = new Float64Array(Math.ceil((end - start) / this.evalBatch));
    let correct = 0;
    for (let s = start, b = 0; s < end; s += this.evalBatch, b++) {
      const m = Math.min(this.evalBatch, end - s);
      const [xb, yb] = this.rows(data, s, m);
      const r = this.net.evaluate(weights, xb, yb, m);
      losses[b] = r.loss;
      correct += r.correct;
    }
    return { losses, correct };
  }

  async predict(weights: Float32Array, x: Float32Array, n: number): Promise<Float32Array> {
    const f = this.inputSize;
    if (x.length !== n * f) throw new Error(`input has ${x.length} values, expected ${n} x ${f}`);
    const out = new Float32Array(n * this.net.outputSize);
    for (let s = 0; s < n; s += this.evalBatch) {
      const m = Math.min(this.evalBatch, n - s);
      out.set(this.net.predict(weights, x.subarray(s * f, (s + m) * f), m), s * this.net.outputSize);
    }
    return out;
  }

  dispose(): void {}
}

// The per-step loops live in small functions of their own: inside train()'s long async body V8 left them
// unoptimised (about 20 ns per weight, doubling a FedProx step); here they run at memory speed.

/** FedProx: g += mu (w - w_global), the gradient of (mu/2)||w - w_global||^2. */
function addProximalGradient(g: Float32Array, w: Float32Array, global: Float32Array, mu: number): void {
  for (let i = 0; i < w.length; i++) g[i] += mu * (w[i] - global[i]);
}

function addInPlace(g: Float32Array, shift: Float32Array): void {
  for (let i = 0; i < shift.length; i++) g[i] += shift[i];
}
