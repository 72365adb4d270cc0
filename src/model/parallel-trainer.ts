/**
 * Data-parallel training on k cores: EngineTrainer whose every batch is split into k contiguous slices, one per
 * thread (this one and k - 1 worker threads), each slice's gradient taken on the same weights; the slices' gradients
 * are summed in slice order, weighted by their share of the batch (each thread sums its range of the parameters),
 * and train()'s optimizer step follows, each thread stepping its range of the weights. The split depends only on k
 * and the batch size, so a given k gives the same bits every run; k = 1 is EngineTrainer itself. Weights, batch,
 * gradients and optimizer state live in SharedArrayBuffers and the threads meet through Atomics
 * (parallel-protocol.ts): a step costs no message and no copy.
 *
 * Why batches rather than gemms: the models a node trains (B = 10..32) multiply matrices too small for a
 * split gemm (OpenBLAS threads) to pay its synchronisation, while a batch slice keeps every thread busy for
 * the whole forward and backward pass (bench/node-cores.ts measures both).
 *
 * Not for models with dropout or BatchNormalization: their masks and batch statistics would depend on the
 * split, so parallelUnsupportedReason refuses them and the caller trains them on one thread. NODE-ONLY.
 */
import { receiveMessageOnPort, MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import { bootWorker, firstMessage, workerEntry } from '../sim/boot-worker.js';
import { EngineTrainer } from './engine-trainer.js';
import type { DropoutRng, SeqNetSpec } from '../nn/seqnet.js';
import type { BatchResult, DenseNetSpec } from '../nn/dense.js';
import type { Kernels } from '../nn/kernels.js';
import { KernelMemory, wasmOf, type Buf } from '../nn/kernel-memory.js';
import type { FlatOptimizer } from '../nn/optimizer.js';
import { jsKernels } from '../nn/kernels-js.js';
import {
  ARRIVED,
  CONFIG,
  CONTROL_WORDS,
  DONE,
  FAILED,
  GEN,
  GRADIENT_PHASE,
  M,
  OPTIMIZER_PHASE,
  PARTS,
  PHASE,
  SPIN_MS,
  STOP,
  partRows,
  rangeOptimizer,
  reduceRange,
  type RangeOptimizer,
  type SharedBuffers,
  type SharedOptimizer,
  type WorkerSetup,
} from './parallel-protocol.js';

/** How long the trainer waits for a worker's slice before it declares the worker dead. */
const STEP_TIMEOUT_MS = 120_000;

/** Plain (non-wasm) kernel buffers in SharedArrayBuffers, so worker threads see them. */
class SharedKernelMemory extends KernelMemory {
  override f32(len: number): Buf<Float32Array> {
    return { a: new Float32Array(new SharedArrayBuffer(4 * len)), off: 0, len };
  }
  override i32(len: number): Buf<Int32Array> {
    return { a: new Int32Array(new SharedArrayBuffer(4 * len)), off: 0, len };
  }
}

/** Why `spec` on `kernels` cannot train data-parallel, or null when it can. */
export function parallelUnsupportedReason(spec: DenseNetSpec | SeqNetSpec, kernels: Kernels): string | null {
  if (wasmOf(kernels)) return 'the WebAssembly kernels keep their buffers in unshared wasm memory';
  if (kernels.name !== jsKernels.name && kernels.name !== 'native-openblas')
    return `kernels '${kernels.name}' cannot be loaded in a worker thread`;
  if ('inputShape' in spec) {
    for (const l of spec.layers) {
      if (l.type === 'dropout' && l.rate > 0) return `dropout layer '${l.name}' would draw masks per slice`;
      if (l.type === 'batchnorm') return `BatchNormalization layer '${l.name}' would normalise per slice`;
    }
  }
  return null;
}

interface Slot {
  worker: Worker;
  port: MessagePort;
  g: Float32Array | null;
}

export class ParallelEngineTrainer extends EngineTrainer {
  private readonly control = new Int32Array(new SharedArrayBuffer(4 * CONTROL_WORDS));
  private readonly results: Float64Array;
  private slots: Slot[] = [];
  /** The buffers last posted to the workers (re-posted when train() reallocated one). */
  private posted: { w: Float32Array; x: Float32Array; y: Int32Array | Float32Array; g: Float32Array } | null = null;
  private failure: string | null = null;
  private readonly exits: Promise<void>[] = [];
  /** The posted gradient buffers: [0] the trainer's, [j] worker j's. */
  private grads: Float32Array[] = [];
  /** train()'s optimizer (`of`) and this thread's optimizer over its range of the weights. */
  private ranged: (RangeOptimizer & { of: FlatOptimizer }) | null = null;

  private constructor(
    spec: DenseNetSpec | SeqNetSpec,
    kernels: Kernels,
    readonly threads: number,
  ) {
    super(spec, kernels);
    this.results = new Float64Array(new SharedArrayBuffer(16 * threads));
  }

  /** Weights, gradient, optimizer state and batch in SharedArrayBuffers, where the workers see them. */
  protected override newMemory(kernels: Kernels): KernelMemory {
    return new SharedKernelMemory(kernels);
  }

  /**
   * A trainer on `threads` threads (2..256): starts threads - 1 workers, each with its own copy of the net's
   * activation buffers. Throws when parallelUnsupportedReason refuses the model or a worker fails to start.
   */
  static async create(
    spec: DenseNetSpec | SeqNetSpec,
    kernels: Kernels,
    threads: number,
  ): Promise<ParallelEngineTrainer> {
    if (!(Number.isInteger(threads) && threads >= 2 && threads <= 256))
      throw new RangeError(`parallel training needs 2 to 256 threads, got ${String(threads)}`);
    const reason = parallelUnsupportedReason(spec, kernels);
    if (reason) throw new Error(`cannot train this model on ${threads} threads: ${reason}`);
    const t = new ParallelEngineTrainer(spec, kernels, threads);
    try {
      await t.startWorkers(spec);
    } catch (e) {
      t.dispose();
      throw e;
    }
    return t;
  }

  private async startWorkers(spec: DenseNetSpec | SeqNetSpec): Promise<void> {
    const entry = workerEntry('parallel-worker', import.meta.url);
    const ready: Promise<void>[] = [];
    for (let index = 1; index < this.threads; index++) {
      const { port1, port2 } = new MessageChannel();
      const setup: Omit<WorkerSetup, 'entry'> & { port: MessagePort } = {
        spec,
        kernels: this.kernels.name,
        index,
        threads: this.threads,
        control: this.control.buffer as SharedArrayBuffer,
        results: this.results.buffer as SharedArrayBuffer,
        port: port2,
      };
      const worker = bootWorker(entry, setup, [port2]);
      worker.unref(); // a trainer nobody disposed must not keep the process alive
      this.exits.push(new Promise((resolve) => worker.once('exit', () => resolve())));
      const what = `parallel training worker ${index}`;
      worker.on('error', (e) => {
        this.failure ??= `${what} failed: ${e.message}`;
      });
      worker.once('exit', (code) => {
        this.failure ??= `${what} exited (code ${code})`;
      });
      this.slots.push({ worker, port: port1, g: null });
      ready.push(
        firstMessage<{ ready?: boolean; error?: string }>(worker, what).then((m) => {
          if (!m.ready) throw new Error(`${what}: ${m.error}`);
        }),
      );
    }
    await Promise.all(ready);
  }

  /** Posts the shared buffers to the workers when train() allocated new ones (once per train() at most). */
  private postBuffers(
    w: Float32Array,
    x: Float32Array,
    y: Int32Array | Float32Array,
    g: Float32Array,
    f: number,
  ): void {
    const p = this.posted;
    if (p && p.w.buffer === w.buffer && p.x.buffer === x.buffer && p.y.buffer === y.buffer && p.g.buffer === g.buffer)
      return;
    const n = w.length;
    for (const s of this.slots) if (!s.g || s.g.length !== n) s.g = new Float32Array(new SharedArrayBuffer(4 * n));
    // Whole buffers: a step's rows are views from 0 (EngineTrainer gathers each batch at the start).
    const bufs: SharedBuffers = {
      w: new Float32Array(w.buffer, w.byteOffset, n),
      x: new Float32Array(x.buffer),
      y: y instanceof Int32Array ? new Int32Array(y.buffer) : new Float32Array(y.buffer),
      features: f,
      grads: [new Float32Array(g.buffer, g.byteOffset, n), ...this.slots.map((s) => s.g!)],
    };
    for (const s of this.slots) s.port.postMessage(bufs);
    Atomics.add(this.control, CONFIG, 1);
    this.posted = { w, x, y, g };
    this.grads = bufs.grads;
  }

  /** Every batch's gradient is summed over the threads before the step, so the step is never folded into it. */
  protected override fusedStep(): null {
    return null;
  }

  override batchGradient(
    w: Float32Array,
    x: Float32Array,
    y: Int32Array | Float32Array,
    m: number,
    g: Float32Array,
    rng?: DropoutRng,
  ): BatchResult {
    const parts = Math.min(this.threads, m);
    if (this.failure) throw new Error(this.failure);
    const shared = [w, x, y, g].every((a) => a.buffer instanceof SharedArrayBuffer);
    if (parts < 2 || rng || !shared || x.byteOffset !== 0 || y.byteOffset !== 0 || g.length !== w.length)
      return super.batchGradient(w, x, y, m, g, rng);
    const features = x.length / m;
    this.postBuffers(w, x, y, g, features);
    const c = this.control;
    c[PHASE] = GRADIENT_PHASE;
    c[M] = m;
    c[PARTS] = parts;
    Atomics.store(c, ARRIVED, 0);
    Atomics.store(c, DONE, 0);
    Atomics.add(c, GEN, 1);
    Atomics.notify(c, GEN);
    const [, hi] = partRows(m, parts, 0);
    const own = super.batchGradient(w, x.subarray(0, hi * features), y.subarray(0, hi), hi, this.grads[0]);
    Atomics.add(c, ARRIVED, 1);
    Atomics.notify(c, ARRIVED);
    this.waitFor(ARRIVED, parts);
    reduceRange(this.kernels, this.grads, m, parts, 0);
    this.waitFor(DONE, parts - 1);
    let loss = own.loss;
    let correct = own.correct;
    for (let j = 1; j < parts; j++) {
      loss += this.results[2 * j];
      correct += this.results[2 * j + 1];
    }
    return { loss, correct };
  }

  /**
   * The optimizer step on every thread, each over its range of the weights (the step is elementwise; for the MLP's
   * Adam it is a third of a one-thread step). Optimizers for the ranges are made when train() makes its optimizer.
   */
  protected override optimizerStep(opt: FlatOptimizer, w: Float32Array, g: Float32Array, state: Buf<Float32Array>[]) {
    if (this.failure) throw new Error(this.failure);
    const p = this.posted;
    const shared = state.every((s) => s.a.buffer instanceof SharedArrayBuffer);
    if (!p || p.w.buffer !== w.buffer || p.g.buffer !== g.buffer || !shared)
      return super.optimizerStep(opt, w, g, state);
    if (this.ranged?.of !== opt) {
      const posted: SharedOptimizer = { config: opt.config, state: state.map((s) => s.a) };
      for (const s of this.slots) s.port.postMessage(posted);
      Atomics.add(this.control, CONFIG, 1);
      this.ranged = { of: opt, ...rangeOptimizer(posted, w.length, this.threads, 0, this.kernels) };
    }
    const c = this.control;
    c[PHASE] = OPTIMIZER_PHASE;
    Atomics.store(c, DONE, 0);
    Atomics.add(c, GEN, 1);
    Atomics.notify(c, GEN);
    const r = this.ranged;
    r.opt?.step(w.subarray(r.start, r.end), g.subarray(r.start, r.end));
    this.waitFor(DONE, this.threads - 1);
  }

  /**
   * Waits until control[word] reaches `count` in this step: spins briefly (the other threads' share is as long as
   * ours), then sleeps; throws when a worker failed or never answered.
   */
  private waitFor(word: number, count: number): void {
    const c = this.control;
    const t0 = performance.now();
    for (;;) {
      const done = Atomics.load(c, word);
      if (done >= count) break;
      const waited = performance.now() - t0;
      if (waited > STEP_TIMEOUT_MS) {
        this.failure = `a parallel training worker did not finish its slice in ${STEP_TIMEOUT_MS / 1000} s`;
        throw new Error(this.failure);
      }
      if (waited > SPIN_MS) Atomics.wait(c, word, done, 50);
    }
    if (Atomics.load(c, FAILED)) {
      const messages = this.slots.map((s) => (receiveMessageOnPort(s.port)?.message as { error?: string })?.error);
      this.failure = `parallel training worker failed: ${messages.filter(Boolean).join('; ') || 'unknown error'}`;
      throw new Error(this.failure);
    }
  }

  /** Resolves when every worker has exited (after dispose()). */
  async stopped(): Promise<void> {
    await Promise.all(this.exits);
  }

  /** Stops and terminates the workers; the trainer must not train afterwards. */
  override dispose(): void {
    Atomics.store(this.control, STOP, 1);
    Atomics.add(this.control, GEN, 1);
    Atomics.notify(this.control, GEN);
    for (const s of this.slots) {
      s.port.close();
      void s.worker.terminate();
    }
    this.slots = [];
    this.failure ??= 'the trainer was disposed';
    super.dispose();
  }
}
