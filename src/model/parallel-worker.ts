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
  CONFIG,
  DONE,
  FAILED,
  GEN,
  M,
  PARTS,
  SPIN_MS,
  STOP,
  partRows,
  type SharedBuffers,
} from './parallel-protocol.js';
import type { WorkerSetup } from './parallel-protocol.js';

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

function serve(trainer: EngineTrainer): void {
  // GEN starts at 0 and the trainer bumps it only after every worker said ready: reading it here instead could
  // miss a first step posted between our 'ready' and this line.
  let gen = 0;
  let config = -1;
  let bufs: SharedBuffers | null = null;
  for (;;) {
    waitChange(GEN, gen);
    gen = Atomics.load(control, GEN);
    if (Atomics.load(control, STOP)) return;
    try {
      const c = Atomics.load(control, CONFIG);
      if (c !== config) {
        // The trainer posted the buffers before bumping CONFIG, so the message is already queued.
        const msg = receiveMessageOnPort(setup.port);
        if (!msg) throw new Error('parallel training worker: new buffers announced but none received');
        bufs = msg.message as SharedBuffers;
        config = c;
      }
      const m = control[M];
      const parts = control[PARTS];
      if (setup.index < parts && bufs) {
        const [lo, hi] = partRows(m, parts, setup.index);
        const f = bufs.features;
        const r = trainer.batchGradient(
          bufs.w,
          bufs.x.subarray(lo * f, hi * f),
          bufs.y.subarray(lo, hi),
          hi - lo,
          bufs.g,
        );
        results[2 * setup.index] = r.loss;
        results[2 * setup.index + 1] = r.correct;
      }
    } catch (e) {
      setup.port.postMessage({ error: e instanceof Error ? e.message : String(e) });
      Atomics.store(control, FAILED, 1);
    }
    if (setup.index < control[PARTS]) {
      Atomics.add(control, DONE, 1);
      Atomics.notify(control, DONE);
    }
  }
}

try {
  const trainer = new EngineTrainer(setup.spec as DenseNetSpec | SeqNetSpec, kernelsNamed(setup.kernels));
  parentPort!.postMessage({ ready: true });
  serve(trainer);
} catch (e) {
  parentPort!.postMessage({ error: e instanceof Error ? e.message : String(e) });
}
