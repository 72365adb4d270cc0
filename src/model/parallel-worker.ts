/**
 * A worker of a ParallelEngineTrainer: computes the gradient of its slice of every batch on the shared
 * weights (protocol in parallel-protocol.ts). NODE-ONLY (worker_threads).
 */
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { EngineTrainer } from './engine-trainer.js';
import { jsKernels } from '../nn/kernels-js.js';
import { loadNativeKernels } from '../nn/kernels-native.js';
import type { DenseNetSpec } from '../nn/dense.js';
import type { SeqNetSpec } from '../nn/seqnet.js';
import type { Kernels } from '../nn/kernels.js';
import {
  ARRIVED,
  CONFIG,
  DONE,
  FAILED,
  GEN,
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

const setup = workerData as WorkerSetup & { port: MessagePort };
const control = new Int32Array(setup.control);
const results = new Float64Array(setup.results);

function kernelsNamed(name: string): Kernels {
  if (name === jsKernels.name) return jsKernels;
  const native = loadNativeKernels();
  if (native && native.name === name) return native;
  throw new Error(`parallel training worker: kernels '${name}' are not available in a worker thread`);
}

/** Waits until control[i] is no longer `seen`: spins briefly, then sleeps. */
function waitChange(i: number, seen: number): void {
  const spinUntil = performance.now() + SPIN_MS;
  while (Atomics.load(control, i) === seen) {
    if (performance.now() > spinUntil) Atomics.wait(control, i, seen, 1000);
  }
}

/** Waits until every thread's gradient of this step is in (false: the trainer is stopping). */
function barrier(parts: number): boolean {
  const spinUntil = performance.now() + SPIN_MS;
  for (;;) {
    const arrived = Atomics.load(control, ARRIVED);
    if (arrived >= parts) return true;
    if (Atomics.load(control, STOP)) return false;
    if (performance.now() > spinUntil) Atomics.wait(control, ARRIVED, arrived, 1000);
  }
}

function serve(trainer: EngineTrainer, kernels: Kernels): void {
  // GEN starts at 0 and the trainer bumps it only after every worker said ready: reading it here instead could
  // miss a first step posted between our 'ready' and this line.
  let gen = 0;
  let config = -1;
  let bufs: SharedBuffers | null = null;
  let pendingOpt: SharedOptimizer | null = null;
  let ranged: RangeOptimizer | null = null;
  /** Takes the buffers and optimizer the trainer posted (it posts before it bumps CONFIG, so they are queued). */
  const takeConfig = () => {
    const c = Atomics.load(control, CONFIG);
    if (c === config) return;
    let got = false;
    for (let msg = receiveMessageOnPort(setup.port); msg; msg = receiveMessageOnPort(setup.port)) {
      got = true;
      const m = msg.message as SharedBuffers | SharedOptimizer;
      if ('config' in m) pendingOpt = m;
      else bufs = m;
    }
    if (!got) throw new Error('parallel training worker: new buffers announced but none received');
    if (pendingOpt && bufs) {
      ranged = rangeOptimizer(pendingOpt, bufs.w.length, setup.threads, setup.index, kernels);
      pendingOpt = null;
    }
    config = c;
  };
  for (;;) {
    waitChange(GEN, gen);
    gen = Atomics.load(control, GEN);
    if (Atomics.load(control, STOP)) return;
    if (control[PHASE] === OPTIMIZER_PHASE) {
      try {
        takeConfig();
        // Casts: TypeScript does not see takeConfig() assign these.
        const r = ranged as RangeOptimizer | null;
        const b = bufs as SharedBuffers | null;
        if (r?.opt && b) r.opt.step(b.w.subarray(r.start, r.end), b.grads[0].subarray(r.start, r.end));
      } catch (e) {
        setup.port.postMessage({ error: e instanceof Error ? e.message : String(e) });
        Atomics.store(control, FAILED, 1);
      }
      Atomics.add(control, DONE, 1);
      Atomics.notify(control, DONE);
      continue;
    }
    const m = control[M];
    const parts = control[PARTS];
    if (setup.index >= parts) continue; // a batch smaller than the threads: this step is not ours
    try {
      takeConfig();
      const [lo, hi] = partRows(m, parts, setup.index);
      const f = bufs!.features;
      const x = bufs!.x.subarray(lo * f, hi * f);
      const r = trainer.batchGradient(bufs!.w, x, bufs!.y.subarray(lo, hi), hi - lo, bufs!.grads[setup.index]);
      results[2 * setup.index] = r.loss;
      results[2 * setup.index + 1] = r.correct;
    } catch (e) {
      setup.port.postMessage({ error: e instanceof Error ? e.message : String(e) });
      Atomics.store(control, FAILED, 1);
    }
    Atomics.add(control, ARRIVED, 1);
    Atomics.notify(control, ARRIVED);
    if (!barrier(parts)) return;
    // After a failure the sum is garbage, but the trainer throws on FAILED before anyone reads it.
    const b = bufs as SharedBuffers | null;
    if (b && !Atomics.load(control, FAILED)) reduceRange(kernels, b.grads, m, parts, setup.index);
    Atomics.add(control, DONE, 1);
    Atomics.notify(control, DONE);
  }
}

try {
  const kernels = kernelsNamed(setup.kernels);
  const trainer = new EngineTrainer(setup.spec as DenseNetSpec | SeqNetSpec, kernels);
  parentPort!.postMessage({ ready: true });
  serve(trainer, kernels);
} catch (e) {
  parentPort!.postMessage({ error: e instanceof Error ? e.message : String(e) });
}
