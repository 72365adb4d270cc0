/**
 * Chooses the kernels for this process. NODE-ONLY (it reaches kernels-native.ts, which loads a .node
 * file); browser code imports `jsKernels` from kernels-js.ts, which is browser-safe.
 */
import type { Kernels } from './kernels.js';
import { jsKernels } from './kernels-js.js';
import { loadNativeKernels, nativeKernelsError } from './kernels-native.js';

export type KernelPreference = 'native' | 'js' | 'auto';

const CHOICES: readonly string[] = ['native', 'js', 'auto'];

/**
 * 'auto' (default): native when the addon is built, else js. 'js': always js. 'native': the addon, or
 * an Error saying why it is unavailable. EDGEFED_KERNELS=js|native|auto, when set, overrides `prefer`.
 */
export function getKernels(prefer: KernelPreference = 'auto'): Kernels {
  const env = process.env.EDGEFED_KERNELS;
  let choice: string = prefer;
  let source = `getKernels('${prefer}')`;
  if (env !== undefined && env !== '') {
    if (!CHOICES.includes(env)) throw new Error(`EDGEFED_KERNELS must be one of native, js, auto; got '${env}'`);
    choice = env;
    source = `EDGEFED_KERNELS=${env}`;
  } else if (!CHOICES.includes(prefer)) {
    throw new Error(`kernel preference must be one of native, js, auto; got '${String(prefer)}'`);
  }
  if (choice === 'js') return jsKernels;
  const native = loadNativeKernels();
  if (native) return native;
  if (choice === 'native') {
    throw new Error(`native kernels requested (${source}) but unavailable: ${nativeKernelsError() ?? 'unknown reason'}. ` +
      'Build them with `node scripts/build-native.mjs` (needs g++ and libopenblas-dev), or use EDGEFED_KERNELS=js.');
  }
  return jsKernels;
}
