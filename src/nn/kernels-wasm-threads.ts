/**
 * Multi-threaded WebAssembly kernels: the shared-memory builds (kernels-shared.wasm,
 * kernels-relaxed-shared.wasm) on one shared WebAssembly.Memory, with workers that each run a slice of
 * every large gemm (createWasmKernels splits the product in whole tiles, see splitGemm). BROWSER-SAFE:
 * workers come from a `spawn` function the caller gives (Web Workers in a page, worker_threads in Node).
 *
 * Why gemm only: it is nearly all of the training time of the dense models, and slicing C by rows or
 * columns leaves every element's arithmetic unchanged, so the result is bit-identical for any thread count
 * (the elementwise kernels stay on the calling thread).
 *
 * Protocol, without messages once started: worker i owns a control slot (GEMM_SLOT_BYTES) in the shared
 * memory: an Int32 state (0 idle, 1 job posted, 2 done) and the gemm's 13 arguments as float64 from byte 8.
 * The caller writes the arguments, stores 1 and notifies; the worker runs the gemm, stores 2. The caller
 * spins until every started slot is 2: a browser's main thread may not block in Atomics.wait, and the wait
 * is as long as its own slice. Workers spin briefly before sleeping, since the next gemm comes soon.
 */
import { createWasmKernels, type GemmPool, type WasmKernels, type WasmKernelsOptions } from './kernels-wasm.js';

/** What a worker must offer: post a message, deliver the worker's messages, stop. */
export interface KernelThread {
  postMessage(message: unknown): void;
  onMessage(listener: (data: unknown) => void): void;
  onError(listener: (error: Error) => void): void;
  terminate(): void;
}

/**
 * The worker's program, as source (no imports, so it runs from a Blob URL in a page and from
 * `new Worker(src, { eval: true })` in Node). It receives { module, memory, work, slot }, instantiates
 * the module on the memory, answers 'ready', then serves its slot forever.
 */
export const KERNEL_WORKER_SOURCE = `'use strict';
const nodePort = typeof require === 'function' ? require('node:worker_threads').parentPort : null;
const post = (m) => (nodePort ? nodePort.postMessage(m) : self.postMessage(m));
const onMessage = (f) => (nodePort ? nodePort.on('message', f) : (self.onmessage = (e) => f(e.data)));
onMessage(async (msg) => {
  try {
    const env = { memory: msg.memory, abort: () => { throw new Error('wasm kernels aborted'); } };
    const { exports: ex } = await WebAssembly.instantiate(msg.module, { env });
    post({ ready: true });
    serve(ex, msg.memory, msg.work, msg.slot);
  } catch (e) {
    post({ error: e && e.message ? e.message : String(e) });
  }
});
function serve(ex, memory, work, slot) {
  const state = slot >> 2;
  for (;;) {
    const i32 = new Int32Array(memory.buffer);
    const spinUntil = performance.now() + 0.5;
    while (Atomics.load(i32, state) !== 1) {
      if (performance.now() > spinUntil) Atomics.wait(i32, state, Atomics.load(i32, state), 1000);
    }
    const f = new Float64Array(memory.buffer, slot + 8, 13);
    ex.gemm(f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11], f[12], work);
    Atomics.store(i32, state, 2);
  }
}
`;

/** How long the caller waits for a slice before it calls the worker dead. */
const JOIN_TIMEOUT_MS = 60_000;

/** A GemmPool of `workers` threads made by `spawn`. */
export function createGemmPool(workers: number, spawn: () => KernelThread): GemmPool {
  if (!(Number.isInteger(workers) && workers >= 1 && workers <= 64)) {
    throw new RangeError(`createGemmPool: workers must be an integer in [1, 64], got ${String(workers)}`);
  }
  const threads: KernelThread[] = [];
  let memory: WebAssembly.Memory | null = null;
  let slots: readonly number[] = [];
  let failure: string | null = null;
  const started: number[] = [];

  return {
    workers,
    async attach(module, mem, works, slotAt) {
      memory = mem;
      slots = slotAt;
      const ready: Promise<void>[] = [];
      for (let i = 0; i < workers; i++) {
        const t = spawn();
        threads.push(t);
        ready.push(
          new Promise<void>((ok, fail) => {
            t.onMessage((data) => {
              const d = data as { ready?: boolean; error?: string };
              if (d.ready) ok();
              else if (d.error) {
                failure = `kernel worker ${i}: ${d.error}`;
                fail(new Error(failure));
              }
            });
            t.onError((e) => {
              failure = `kernel worker ${i} died: ${e.message}`;
              fail(new Error(failure));
            });
          }),
        );
        new Int32Array(mem.buffer, slotAt[i], 1)[0] = 0;
        t.postMessage({ module, memory: mem, work: works[i], slot: slotAt[i] });
      }
      await Promise.all(ready);
    },
    start(i, args) {
      if (failure) throw new Error(failure);
      const buffer = memory!.buffer;
      new Float64Array(buffer, slots[i] + 8, 13).set(args);
      const i32 = new Int32Array(buffer);
      Atomics.store(i32, slots[i] >> 2, 1);
      Atomics.notify(i32, slots[i] >> 2);
      started.push(i);
    },
    join() {
      const i32 = new Int32Array(memory!.buffer);
      const t0 = performance.now();
      for (const i of started) {
        while (Atomics.load(i32, slots[i] >> 2) !== 2) {
          if (failure || performance.now() - t0 > JOIN_TIMEOUT_MS) {
            started.length = 0;
            throw new Error(failure ?? `kernel worker ${i} did not finish its gemm slice in ${JOIN_TIMEOUT_MS} ms`);
          }
        }
      }
      started.length = 0;
    },
    terminate() {
      for (const t of threads) t.terminate();
      threads.length = 0;
    },
  };
}

/** WasmKernels whose large gemms are split across `threads` threads (this one and threads - 1 workers). */
export interface ThreadedWasmKernels extends WasmKernels {
  /** Stops the workers; the kernels must not be used afterwards. */
  dispose(): void;
}

/**
 * Instantiates a shared-memory build with threads - 1 workers from `spawn`. threads = 1 gives the same
 * build on one thread (no workers). Rejects when the engine cannot share wasm memory (see
 * wasmThreadsSupported) or a worker fails to start.
 */
export async function createThreadedWasmKernels(
  sharedBuild: BufferSource | WebAssembly.Module,
  threads: number,
  spawn: () => KernelThread,
  options: Omit<WasmKernelsOptions, 'gemmPool'> = {},
): Promise<ThreadedWasmKernels> {
  if (!(Number.isInteger(threads) && threads >= 1 && threads <= 65)) {
    throw new RangeError(`createThreadedWasmKernels: threads must be an integer in [1, 65], got ${String(threads)}`);
  }
  const pool = threads > 1 ? createGemmPool(threads - 1, spawn) : null;
  const kernels = await createWasmKernels(sharedBuild, { ...options, gemmPool: pool ?? undefined });
  // A copy with dispose; `generation` stays a live getter (a spread would copy its current value).
  const threaded = { ...kernels, dispose: () => pool?.terminate() } as { generation: number };
  Object.defineProperty(threaded, 'generation', { get: () => kernels.generation, enumerable: true });
  return Object.freeze(threaded as unknown as ThreadedWasmKernels);
}

/** Web Workers from KERNEL_WORKER_SOURCE (a Blob URL), for pages. */
export function spawnWebWorker(): KernelThread {
  const url = URL.createObjectURL(new Blob([KERNEL_WORKER_SOURCE], { type: 'text/javascript' }));
  const w = new Worker(url);
  return {
    postMessage: (m) => w.postMessage(m),
    onMessage: (f) => w.addEventListener('message', (e: MessageEvent) => f(e.data)),
    onError: (f) => w.addEventListener('error', (e: ErrorEvent) => f(new Error(e.message))),
    terminate: () => {
      w.terminate();
      URL.revokeObjectURL(url);
    },
  };
}
