/**
 * Loads the WebAssembly SIMD kernels in Node from wasm/build/ (built by scripts/build-wasm.mjs): the
 * relaxed-SIMD build where this engine compiles it (Node 20 does not, unless started with
 * --experimental-wasm-relaxed-simd), else the plain SIMD build. NODE-ONLY (node:fs, worker_threads);
 * browsers fetch the files and call `createWasmKernels` / `createThreadedWasmKernels` themselves (see
 * web/shared/page.ts).
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import {
  createWasmKernels,
  wasmRelaxedSimdSupported,
  type WasmKernels,
  type WasmKernelsOptions,
} from './kernels-wasm.js';
import { KERNEL_WORKER_SOURCE, type KernelThread } from './kernels-wasm-threads.js';

const buildPath = (file: string) => fileURLToPath(new URL(`../../wasm/build/${file}`, import.meta.url));

/** Where scripts/build-wasm.mjs puts the plain SIMD build, relative to this file (src/nn/). */
export const WASM_KERNELS_PATH = buildPath('kernels.wasm');
/** The relaxed-SIMD build (fused multiply-add where the CPU has it). */
export const WASM_RELAXED_KERNELS_PATH = buildPath('kernels-relaxed.wasm');
/** The shared-memory builds, for threads (kernels-wasm-threads.ts). */
export const WASM_SHARED_KERNELS_PATH = buildPath('kernels-shared.wasm');
export const WASM_RELAXED_SHARED_KERNELS_PATH = buildPath('kernels-relaxed-shared.wasm');

/** Which build: 'auto' = relaxed where the engine supports it, else simd. */
export type WasmBuildChoice = 'auto' | 'simd' | 'relaxed';

const compiled = new Map<string, Promise<WebAssembly.Module | null>>();
let loadError: string | null = null;

/** Compiles one build once per process (null, with wasmKernelsNodeError() set, when missing or invalid). */
export function compileWasmBuild(path: string): Promise<WebAssembly.Module | null> {
  let p = compiled.get(path);
  if (!p) {
    p = (async () => {
      let bytes: Uint8Array<ArrayBuffer>;
      try {
        bytes = await readFile(path);
      } catch (e) {
        loadError =
          (e as NodeJS.ErrnoException).code === 'ENOENT'
            ? `not built (${path} is missing); build with \`node scripts/build-wasm.mjs\``
            : `cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`;
        return null;
      }
      try {
        return await WebAssembly.compile(bytes);
      } catch (e) {
        loadError = `${path} does not compile: ${e instanceof Error ? e.message : String(e)}`;
        return null;
      }
    })();
    compiled.set(path, p);
  }
  return p;
}

/** The build file `choice` selects in this engine. */
export function wasmBuildPath(choice: WasmBuildChoice = 'auto', shared = false): string {
  const relaxed = choice === 'relaxed' || (choice === 'auto' && wasmRelaxedSimdSupported());
  if (shared) return relaxed ? WASM_RELAXED_SHARED_KERNELS_PATH : WASM_SHARED_KERNELS_PATH;
  return relaxed ? WASM_RELAXED_KERNELS_PATH : WASM_KERNELS_PATH;
}

/**
 * A new, independent instance of the wasm kernels (its own memory and allocator), or null when the
 * module is not built or does not compile here (see wasmKernelsNodeError()). 'auto' falls back from the
 * relaxed build to the plain one when the relaxed file is missing. The compiled module is cached, so
 * later calls only instantiate.
 */
export async function loadWasmKernelsNode(
  options?: WasmKernelsOptions & { build?: WasmBuildChoice },
): Promise<WasmKernels | null> {
  const choice = options?.build ?? 'auto';
  let module = await compileWasmBuild(wasmBuildPath(choice));
  if (!module && choice === 'auto' && wasmBuildPath(choice) !== WASM_KERNELS_PATH) {
    module = await compileWasmBuild(WASM_KERNELS_PATH);
  }
  if (!module) return null;
  return createWasmKernels(module, options);
}

/** Why loadWasmKernelsNode() gave null (null when it loaded or was never called). */
export function wasmKernelsNodeError(): string | null {
  return loadError;
}

/** A worker_threads worker running KERNEL_WORKER_SOURCE (unref'd: it never keeps the process alive). */
export function spawnNodeKernelThread(): KernelThread {
  const w = new Worker(KERNEL_WORKER_SOURCE, { eval: true });
  w.unref();
  return {
    postMessage: (m) => w.postMessage(m),
    onMessage: (f) => w.on('message', f),
    onError: (f) => w.on('error', f),
    terminate: () => void w.terminate(),
  };
}
