/**
 * The shared-memory protocol between a ParallelEngineTrainer (parallel-trainer.ts) and its workers
 * (parallel-worker.ts): one Int32Array of control words, one Float64Array of per-part results, no messages
 * per step. BROWSER-SAFE in principle (no Node imports), though only Node uses it.
 *
 * A step: the trainer writes the batch into shared buffers, stores M and PARTS, zeroes DONE, bumps GEN
 * and notifies; worker j (1 <= j < PARTS) computes the gradient of rows part(j) into its own gradient
 * buffer, writes its loss and correct count at RESULT[2j], [2j+1], adds 1 to DONE and notifies. The
 * trainer computes part 0 itself meanwhile, then waits for DONE = PARTS - 1 and sums the parts in order.
 * Buffers change only between train() calls: the trainer posts them on the worker's port and bumps
 * CONFIG; the worker reads that message synchronously (receiveMessageOnPort) before its next step.
 */

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
export const CONTROL_WORDS = 8;

/** How long a waiting side spins before it sleeps in Atomics.wait (the next step is usually this close). */
export const SPIN_MS = 0.05;

/** The rows [start, end) of part j of m examples split into `parts` contiguous slices. */
export function partRows(m: number, parts: number, j: number): [number, number] {
  return [Math.floor((j * m) / parts), Math.floor(((j + 1) * m) / parts)];
}

/** The buffers a worker reads and writes (all views of SharedArrayBuffers). */
export interface SharedBuffers {
  /** Weights the step differentiates. */
  w: Float32Array;
  /** The batch's inputs, row-major, `features` floats per row. */
  x: Float32Array;
  /** The batch's labels (classes) or targets. */
  y: Int32Array | Float32Array;
  features: number;
  /** This worker's gradient output. */
  g: Float32Array;
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
  control: SharedArrayBuffer;
  results: SharedArrayBuffer;
}
