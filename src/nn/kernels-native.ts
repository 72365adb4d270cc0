/**
 * Loads the OpenBLAS kernels addon (native/, built by scripts/build-native.mjs). NODE-ONLY: it uses
 * node:module and node:fs; browser code imports `jsKernels` from kernels-js.ts instead.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Kernels } from './kernels.js';
import { cpuFeatures } from './cpu-features.js';
import { describeCore, selectCore, type CoreControl, type CoreSelection } from './openblas-core.js';

/** Where scripts/build-native.mjs puts the addon, relative to this module (src/nn/). */
export const NATIVE_ADDON_PATH = fileURLToPath(
  new URL('../../native/build/Release/edgefed_kernels.node', import.meta.url),
);

/** The addon's tensor-parallel dense training step (native/dense-team.cc; src/nn/dense-team.ts wraps it). */
export interface DenseTeamAddon {
  denseTeam(threads: number, inputSize: number, units: Int32Array, activations: string, loss: 'xent' | 'mse'): object;
  denseTeamStep(
    team: object,
    w: Float32Array,
    x: Float32Array,
    y: Int32Array | Float32Array,
    m: number,
    optimizer: string,
    lr: number,
    a: number,
    b: number,
    eps: number,
    step: number,
    s0: Float32Array | null,
    s1: Float32Array | null,
    rows: Int32Array | null,
  ): { loss: number; correct: number };
  denseTeamClose(team: object): void;
  denseTeamProfile(team: object, on: boolean): Float64Array;
}

/** The addon's exports: the kernels (validating their arguments in C) plus OpenBLAS diagnostics. */
interface NativeAddon extends Required<Omit<Kernels, 'name'>>, CoreControl, DenseTeamAddon {
  info(): Omit<NativeKernelsInfo, 'selection' | 'core'>;
  setThreads(threads: number): void;
}

export interface NativeKernelsInfo {
  /** openblas_get_config(), e.g. 'OpenBLAS 0.3.21 DYNAMIC_ARCH ... Haswell MAX_THREADS=64'. */
  config: string;
  corename: string;
  /** BLAS threads; the addon sets 1 at load. */
  threads: number;
  /** How the core was chosen and checked (src/nn/openblas-core.ts). */
  selection: CoreSelection;
  /** One line for tables, e.g. 'SkylakeX (OpenBLAS detected Prescott)'. */
  core: string;
}

let loaded: { addon: NativeAddon; kernels: Kernels } | null = null;
let loadError: string | null = null;
let selection: CoreSelection | null = null;
let tried = false;

function load(): void {
  if (tried) return;
  tried = true;
  if (!existsSync(NATIVE_ADDON_PATH)) {
    loadError = `addon not built (${NATIVE_ADDON_PATH} is missing)`;
    return;
  }
  try {
    const addon = createRequire(import.meta.url)(NATIVE_ADDON_PATH) as NativeAddon;
    const { selection: chosen, warning } = selectCore(addon, cpuFeatures(), process.env);
    if (warning) console.warn(warning);
    selection = chosen;
    if (!chosen.core) {
      loadError = `OpenBLAS gemm gave wrong results on every core tried (${chosen.rejected.map((r) => r.core).join(', ')})`;
      return;
    }
    // The addon's functions ignore `this`, so they go in as they are: no wrapper call per kernel.
    const kernels: Kernels = Object.freeze({
      name: 'native-openblas',
      gemm: addon.gemm,
      biasAct: addon.biasAct,
      reluBackward: addon.reluBackward,
      colSum: addon.colSum,
      softmaxXent: addon.softmaxXent,
      adam: addon.adam,
      sgd: addon.sgd,
      gatherRows: addon.gatherRows,
    });
    loaded = { addon, kernels };
  } catch (e) {
    loadError = `addon at ${NATIVE_ADDON_PATH} failed to load: ${e instanceof Error ? e.message : String(e)}`;
  }
}

/** The native kernels, or null when EDGEFED_KERNELS=js is set or the addon is missing or unloadable. */
export function loadNativeKernels(): Kernels | null {
  if (process.env.EDGEFED_KERNELS === 'js') return null;
  load();
  return loaded?.kernels ?? null;
}

/** Why the addon is unavailable (null when it loaded or was never tried). */
export function nativeKernelsError(): string | null {
  load();
  return loadError;
}

/** OpenBLAS build, core type and thread count of the loaded addon, or null without one. */
export function nativeKernelsInfo(): NativeKernelsInfo | null {
  load();
  return loaded && selection ? { ...loaded.addon.info(), selection, core: describeCore(selection) } : null;
}

/**
 * Sets the BLAS threads of this process (shared by every thread's gemm). One thread keeps results
 * independent of the core count; more speed up one large training on an otherwise idle device.
 */
export function setNativeBlasThreads(threads: number): void {
  load();
  if (!loaded) throw new Error(`native kernels unavailable: ${loadError ?? 'unknown reason'}`);
  loaded.addon.setThreads(threads);
}

/** The addon's tensor-parallel dense step (native/dense-team.cc), or null without native kernels. */
export function nativeDenseTeam(): DenseTeamAddon | null {
  return loadNativeKernels() && loaded ? loaded.addon : null;
}
