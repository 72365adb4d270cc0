/**
 * Loads the WebAssembly SIMD kernels in Node from wasm/build/kernels.wasm (built by
 * scripts/build-wasm.mjs). NODE-ONLY (node:fs); browsers fetch the same file and call
 * `createWasmKernels` from kernels-wasm.ts themselves, e.g.
 * `createWasmKernels(await (await fetch(url)).arrayBuffer())` or with `WebAssembly.compileStreaming`.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createWasmKernels, type WasmKernels, type WasmKernelsOptions } from './kernels-wasm.js';

/** Where scripts/build-wasm.mjs puts the module, relative to this file (src/nn/). */
export const WASM_KERNELS_PATH = fileURLToPath(new URL('../../wasm/build/kernels.wasm', import.meta.url));

let compiled: Promise<WebAssembly.Module | null> | null = null;
let loadError: string | null = null;

/** Compiles the module once per process (null, with wasmKernelsNodeError() set, when missing or invalid). */
function compile(): Promise<WebAssembly.Module | null> {
  compiled ??= (async () => {
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      bytes = await readFile(WASM_KERNELS_PATH);
    } catch (e) {
      loadError =
        (e as NodeJS.ErrnoException).code === 'ENOENT'
          ? `not built (${WASM_KERNELS_PATH} is missing); build with \`node scripts/build-wasm.mjs\``
          : `cannot read ${WASM_KERNELS_PATH}: ${e instanceof Error ? e.message : String(e)}`;
      return null;
    }
    try {
      return await WebAssembly.compile(bytes);
    } catch (e) {
      loadError = `${WASM_KERNELS_PATH} does not compile: ${e instanceof Error ? e.message : String(e)}`;
      return null;
    }
  })();
  return compiled;
}

/**
 * A new, independent instance of the wasm kernels (its own memory and allocator), or null when the
 * module is not built or does not compile here (see wasmKernelsNodeError()). The compiled module is
 * cached, so later calls only instantiate.
 */
export async function loadWasmKernelsNode(options?: WasmKernelsOptions): Promise<WasmKernels | null> {
  const module = await compile();
  if (!module) return null;
  return createWasmKernels(module, options);
}

/** Why loadWasmKernelsNode() gave null (null when it loaded or was never called). */
export function wasmKernelsNodeError(): string | null {
  return loadError;
}
