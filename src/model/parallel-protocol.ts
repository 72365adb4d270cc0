/**
 * The shared-memory protocol between a ParallelEngineTrainer (parallel-trainer.ts) and its workers
 * (parallel-worker.ts): one Int32Array of control words, one Float64Array of per-part results, no messages
 * per step. BROWSER-SAFE in principle (no Node imports), though only Node uses it.
 *
 * A step: the trainer writes the batch into shared buffers, stores M and PARTS, zeroes ARRIVED and DONE, bumps GEN
 * and notifies; worker j (1 <= j < PARTS) computes the gradient of rows part(j) into its own gradient
 * buffer and writes its loss and correct count at RESULT[2j], [2j+1], while the trainer computes part 0. Each then
 * adds 1 to ARRIVED and waits for ARRIVED = PARTS (a barrier), sums the parts' gradients over its own range of
 * the parameters into the trainer's gradient (reduceRange), and the workers add 1 to DONE; the trainer waits for
 * DONE = PARTS - 1. The sum's order is fixed per element, so k threads give the same bits every run. Then (PHASE
 * OPTIMIZER_PHASE) every thread t applies the optimizer to its range paramRange(n, threads, t) of the weights, with
 * an optimizer of the same config made for that range when train() began (posted like the buffers).
 * Buffers change only between train() calls: the trainer posts them on the worker's port and bumps
 * CONFIG; the worker reads that message synchronously (receiveMessageOnPort) before its next step.
 */
import type { Kernels } from '../nn/kernels.js';
import { FlatOptimizer, type OptimizerConfig } from '../nn/optimizer.js';

/** Step generation: bumped once per batch. */
export const GEN = 0;
/** Parts finished in this step (the trainer's own excluded). */
export const DONE = 1;
/** Examples in this batch. */
export const M = 2;
/** Parts this batch is split into (min(threads, M)). */
export const PARTS = 3;
/** Set to 1 to make the workers exit. */
export const STOP = 4;
/** Buffer generation: bumped when the trainer posted new buffers. */
export const CONFIG = 5;
/** Set to 1 by a worker whose step threw (it posts the message on its port). */
export const FAILED = 6;
/** Threads (the trainer's included) whose gradient is done in this step. */
export const ARRIVED = 7;
/** What a GEN bump asks for: GRADIENT_PHASE, or OPTIMIZER_PHASE (every thread steps its range of the weights). */
export const PHASE = 8;
export const GRADIENT_PHASE = 0;
export const OPTIMIZER_PHASE = 1;
export const CONTROL_WORDS = 12;

/** How long a waiting side spins before it sleeps in Atomics.wait (the next step is usually this close). */
export const SPIN_MS = 0.05;

/** The rows [start, end) of part j of m examples split into `parts` contiguous slices. */
export function partRows(m: number, parts: number, j: number): [number, number] {
  return [Math.floor((j * m) / parts), Math.floor(((j + 1) * m) / parts)];
}

/** Parameters [start, end) of range t of n split into `parts` (in whole 64-byte lines, so no two threads share one). */
export function paramRange(n: number, parts: number, t: number): [number, number] {
  const chunk = Math.ceil(n / parts / 16) * 16;
  return [Math.min(n, t * chunk), Math.min(n, (t + 1) * chunk)];
}

/**
 * grads[0][r] = sum over parts j of (rows in part j / m) * grads[j][r] over range t of the parameters, in part
 * order, through the kernels (a JS loop over shared arrays is 15x slower): a 1 x n x 1 gemm for the first two parts,
 * an SGD step with learning rate -c for each further one.
 */
export function reduceRange(k: Kernels, grads: readonly Float32Array[], m: number, parts: number, t: number): void {
  const [a, b] = paramRange(grads[0].length, parts, t);
  if (b <= a) return;
  const g = grads[0].subarray(a, b);
  const c0 = partRows(m, parts, 0)[1] / m;
  for (let j = 1; j < parts; j++) {
    const [lo, hi] = partRows(m, parts, j);
    const gj = grads[j].subarray(a, b);
    if (j === 1) k.gemm(false, false, 1, b - a, 1, (hi - lo) / m, ONE, gj, c0, g);
    else k.sgd(g, gj, -(hi - lo) / m, 0, null);
  }
}

const ONE = new Float32Array([1]);

/** The buffers a worker reads and writes (all views of SharedArrayBuffers). */
export interface SharedBuffers {
  /** Weights the step differentiates. */
  w: Float32Array;
  /** The batch's inputs, row-major, `features` floats per row. */
  x: Float32Array;
  /** The batch's labels (classes) or targets. */
  y: Int32Array | Float32Array;
  features: number;
  /** Every part's gradient buffer: [0] is the trainer's (where the sum goes), [j] worker j's. */
  grads: Float32Array[];
}

/** The optimizer of a train() call, posted at its first step: each worker steps its range of the weights with it. */
export interface SharedOptimizer {
  config: OptimizerConfig;
  /** The optimizer's state arrays over all the weights (Adam: m, v; momentum: velocity). */
  state: Float32Array[];
}

/** Thread t's optimizer over its range of the weights: null when the range is empty (fewer weights than threads). */
export interface RangeOptimizer {
  opt: FlatOptimizer | null;
  start: number;
  end: number;
}

/**
 * The optimizer thread `t` of `threads` steps its range paramRange(n, threads, t) of the weights with: the same
 * config over views of the shared state (the step is elementwise, so the ranges' steps are the whole step).
 */
export function rangeOptimizer(
  shared: SharedOptimizer,
  n: number,
  threads: number,
  t: number,
  kernels: Kernels,
): RangeOptimizer {
  const [start, end] = paramRange(n, threads, t);
  if (end <= start) return { opt: null, start, end };
  const state = shared.state.map((a) => ({ a: a.subarray(start, end) }));
  return { opt: new FlatOptimizer(shared.config, kernels, end - start, state), start, end };
}

/** What a worker receives at start. */
export interface WorkerSetup {
  /** The module the boot script loads (parallel-worker.ts in a checkout, .js when built). */
  entry: string;
  /** The model spec (a ModelSpec or DenseNetSpec, as EngineTrainer takes it). */
  spec: unknown;
  /** Kernels.name of the trainer's kernels: the worker loads the same ones. */
  kernels: string;
  /** This worker's part index (1 .. threads - 1). */
  index: number;
  /** The trainer's threads (its own included). */
  threads: number;
  control: SharedArrayBuffer;
  results: SharedArrayBuffer;
}
