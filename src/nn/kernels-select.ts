/**
 * Chooses the kernels for this process. NODE-ONLY (it reaches kernels-native.ts, which loads a .node
 * file); browser code imports `jsKernels` from kernels-js.ts, which is browser-safe.
 */
import type { Kernels } from './kernels.js';
import { jsKernels } from './kernels-js.js';
import { loadNativeKernels, nativeKernelsError } from './kernels-native.js';
import { loadWasmKernelsNode, wasmKernelsNodeError } from './kernels-wasm-node.js';

export type KernelPreference = 'native' | 'js' | 'auto';
export type AsyncKernelPreference = KernelPreference | 'wasm';

const CHOICES: readonly string[] = ['native', 'js', 'auto'];

let wasmPromise: Promise<Kernels | null> | null = null;

/**
 * Like getKernels, and also reaches the WebAssembly SIMD kernels, which load asynchronously:
 * 'auto' = native, else wasm, else js. EDGEFED_KERNELS=native|wasm|js|auto overrides `prefer`.
 */
export async function selectKernels(prefer: AsyncKernelPreference = 'auto'): Promise<Kernels> {
  const env = process.env.EDGEFED_KERNELS;
  const choice = env !== undefined && env !== '' ? env : prefer;
  if (choice !== 'wasm' && choice !== 'auto') return getKernels(prefer === 'wasm' ? 'auto' : prefer);
  if (choice === 'auto') {
    const native = loadNativeKernels();
    if (native) return native;
  }
  wasmPromise ??= loadWasmKernelsNode();
  const wasm = await wasmPromise;
  if (wasm) return wasm;
  if (choice === 'wasm') {
    throw new Error(
      `wasm kernels requested but unavailable: ${wasmKernelsNodeError() ?? 'unknown reason'}. Build them with \`node scripts/build-wasm.mjs\`.`,
    );
  }
  return jsKernels;
}

/**
 * 'auto' (default): native when the addon is built, else js. 'js': always js. 'native': the addon, or
 * an Error saying why it is unavailable. EDGEFED_KERNELS=js|native|auto, when set, overrides `prefer`.
 */
export function getKernels(prefer: KernelPreference = 'auto'): Kernels {
  const env = process.env.EDGEFED_KERNELS;
  let choice: string = prefer;
  let source = `getKernels('${prefer}')`;
  if (env !== undefined && env !== '') {
    if (env === 'wasm')
      throw new Error('EDGEFED_KERNELS=wasm: the wasm kernels load asynchronously; use selectKernels()');
    if (!CHOICES.includes(env)) throw new Error(`EDGEFED_KERNELS must be one of native, wasm, js, auto; got '${env}'`);
    choice = env;
    source = `EDGEFED_KERNELS=${env}`;
  } else if (!CHOICES.includes(prefer)) {
    throw new Error(`kernel preference must be one of native, js, auto; got '${String(prefer)}'`);
  }
  if (choice === 'js') return jsKernels;
  const native = loadNativeKernels();
  if (native) return native;
  if (choice === 'native') {
    throw new Error(
      `native kernels requested (${source}) but unavailable: ${nativeKernelsError() ?? 'unknown reason'}. ` +
        'Build them with `node scripts/build-native.mjs` (needs g++ and libopenblas-dev), or use EDGEFED_KERNELS=js.',
    );
  }
  return jsKernels;
}
