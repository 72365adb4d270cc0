/**
 * Choosing the OpenBLAS core (its kernel set) for this CPU. A distribution's OpenBLAS may not know a newer
 * CPU and fall back to a generic core: Debian's 0.3.21 picks `Prescott` (SSE3) on AVX-512 Xeons, three
 * times slower than `SkylakeX`. At load we read the core OpenBLAS chose, and where it is below what the CPU
 * flags allow we re-run OpenBLAS's own selection with OPENBLAS_CORETYPE set to the matching core. Every
 * core is checked against the TypeScript gemm before it is trusted; a wrong result moves one core down.
 * An OPENBLAS_CORETYPE set by the user or the machine is kept (and still checked).
 */
import type { Kernels } from './kernels.js';
import { jsKernels } from './kernels-js.js';
import type { CpuFeatures } from './cpu-features.js';

/** The addon functions this needs (native/kernels.cc). */
export interface CoreControl {
  gemm: Kernels['gemm'];
  info(): { corename: string };
  beginCoreSelection(): string | null;
  endCoreSelection(summary: string): void;
  useCore(name: string): string;
}

export interface CoreSelection {
  /** The core OpenBLAS chose on its own (or that OPENBLAS_CORETYPE named). */
  detected: string;
  /** The core in use, checked against the TypeScript gemm; null when no core gave right results. */
  core: string | null;
  /** The fastest core family the CPU flags allow (null when the flags are unknown). */
  cpuBest: string | null;
  /** Who chose `core`: OpenBLAS's detection, OPENBLAS_CORETYPE from the environment, or EdgeFed's upgrade. */
  chosenBy: 'openblas' | 'environment' | 'edgefed';
  /** OPENBLAS_CORETYPE as this process found it. */
  environment: string | null;
  /** Cores tried and refused, with why. */
  rejected: { core: string; reason: string }[];
}

/** Core families by vector width; 0 = generic (SSE). Names as openblas_get_corename() reports them. */
const TIERS: Record<string, number> = {
  skylakex: 3,
  cooperlake: 3,
  sapphirerapids: 3,
  haswell: 2,
  zen: 2,
  sandybridge: 1,
  bulldozer: 1,
  piledriver: 1,
  steamroller: 1,
  excavator: 1,
};

/** The cores tried, fastest first; Prescott (SSE3) runs on every x86-64 CPU. */
const LADDER = ['SkylakeX', 'Haswell', 'Sandybridge', 'Prescott'] as const;

export function coreTier(core: string): number {
  return TIERS[core.toLowerCase()] ?? 0;
}

export function bestCoreFor(cpu: Pick<CpuFeatures, 'vector'>): string | null {
  switch (cpu.vector) {
    case 'avx512':
      return 'SkylakeX';
    case 'avx2':
      return 'Haswell';
    case 'avx':
      return 'Sandybridge';
    case 'sse':
      return 'Prescott';
    default:
      return null;
  }
}

/**
 * The cores to try in order: with `upgrade`, the ones between the CPU's best and the detected core
 * (fastest first), then the detected core, then the slower ones the CPU can run (fallbacks).
 */
export function candidateCores(detected: string, cpuBest: string | null, upgrade: boolean): string[] {
  const top = cpuBest ? coreTier(cpuBest) : coreTier(detected);
  const here = coreTier(detected);
  const faster = upgrade ? LADDER.filter((c) => coreTier(c) <= top && coreTier(c) > here) : [];
  const slower = LADDER.filter((c) => coreTier(c) < here && coreTier(c) <= top);
  return [...faster, detected, ...slower];
}

/** Test seams: pretend OpenBLAS detected this core; pretend this core computes wrong results. */
export const TEST_DETECTED_ENV = 'EDGEFED_TEST_OPENBLAS_DETECTED';
export const TEST_WRONG_ENV = 'EDGEFED_TEST_OPENBLAS_WRONG';

/**
 * Runs once per process (the core is process-wide; worker threads wait for the first thread and reuse its
 * result). Returns the selection and, for the choosing thread only, the warning to print.
 */
export function selectCore(
  addon: CoreControl,
  cpu: CpuFeatures,
  env: NodeJS.ProcessEnv,
): { selection: CoreSelection; warning: string | null } {
  const stored = addon.beginCoreSelection();
  if (stored !== null) return { selection: JSON.parse(stored) as CoreSelection, warning: null };
  let selection: CoreSelection | null = null;
  let warning: string | null = null;
  try {
    ({ selection, warning } = chooseCore(addon, cpu, env));
  } finally {
    // Always released: a thrown check must not leave other threads waiting forever.
    addon.endCoreSelection(JSON.stringify(selection ?? failedSelection(addon)));
  }
  return { selection, warning };
}

function failedSelection(addon: CoreControl): CoreSelection {
  const core = addon.info().corename;
  return {
    detected: core,
    core: null,
    cpuBest: null,
    chosenBy: 'openblas',
    environment: null,
    rejected: [{ core, reason: 'selection failed' }],
  };
}

function chooseCore(
  addon: CoreControl,
  cpu: CpuFeatures,
  env: NodeJS.ProcessEnv,
): { selection: CoreSelection; warning: string | null } {
  const environment = env.OPENBLAS_CORETYPE?.trim() || null;
  const simulated = env[TEST_DETECTED_ENV]?.trim() || null;
  if (simulated) addon.useCore(simulated);
  const detected = addon.info().corename;
  const cpuBest = bestCoreFor(cpu);
  const userSet = environment !== null && simulated === null;
  const upgrade = !userSet && cpuBest !== null && coreTier(detected) < coreTier(cpuBest);
  const rejected: CoreSelection['rejected'] = [];
  const wrong = env[TEST_WRONG_ENV]?.trim().toLowerCase() ?? '';
  for (const wanted of candidateCores(detected, cpuBest, upgrade)) {
    const core = addon.info().corename.toLowerCase() === wanted.toLowerCase() ? wanted : addon.useCore(wanted);
    if (core.toLowerCase() !== wanted.toLowerCase()) {
      rejected.push({ core: wanted, reason: `OpenBLAS selected ${core} instead` });
      continue;
    }
    const error = gemmError(addon.gemm, core.toLowerCase() === wrong);
    if (error !== null) {
      rejected.push({ core, reason: error });
      continue;
    }
    const chosenBy = core === detected ? (userSet ? 'environment' : 'openblas') : 'edgefed';
    const selection: CoreSelection = { detected, core, cpuBest, chosenBy, environment, rejected };
    const refusedRightCore = rejected.some((r) => !r.reason.startsWith('OpenBLAS selected'));
    return { selection, warning: refusedRightCore ? describeRejections(rejected, core) : null };
  }
  return {
    selection: { detected, core: null, cpuBest, chosenBy: 'openblas', environment, rejected },
    warning: describeRejections(rejected, null),
  };
}

function describeRejections(rejected: CoreSelection['rejected'], core: string | null): string {
  const why = rejected.map((r) => `${r.core}: ${r.reason}`).join('; ');
  return `edgefed: OpenBLAS core check failed (${why}); ${core ? `using ${core}` : 'native kernels disabled'}.`;
}

/**
 * Compares the addon's gemm with the TypeScript one on every transpose combination and the seed MLP's
 * shapes. Returns null when they agree, else what differed. `corrupt` is the test seam for a broken core.
 */
export function gemmError(gemm: Kernels['gemm'], corrupt = false): string | null {
  const shapes: [boolean, boolean, number, number, number][] = [
    [false, false, 33, 17, 65],
    [true, false, 33, 17, 65],
    [false, true, 33, 17, 65],
    [true, true, 33, 17, 65],
    [false, false, 32, 128, 784],
    [true, false, 784, 128, 32],
    [false, true, 32, 784, 128],
  ];
  let seed = 12345;
  const random = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 31 - 1;
  };
  for (const [transA, transB, m, n, k] of shapes) {
    const a = Float32Array.from({ length: m * k }, random);
    const b = Float32Array.from({ length: k * n }, random);
    const got = Float32Array.from({ length: m * n }, random);
    const want = got.slice();
    gemm(transA, transB, m, n, k, 0.5, a, b, 0.25, got);
    jsKernels.gemm(transA, transB, m, n, k, 0.5, a, b, 0.25, want);
    if (corrupt) got[got.length >> 1] += 1;
    // Inputs lie in [-1, 1]: float32 rounding over k products stays far below k * 1e-6.
    const tolerance = 1e-6 * k + 1e-6;
    for (let i = 0; i < got.length; i++) {
      const diff = Math.abs(got[i] - want[i]);
      if (!(diff <= tolerance)) {
        return (
          `gemm(${transA}, ${transB}, ${m}x${n}x${k}) differs from the TypeScript gemm by ${diff.toExponential(2)} ` +
          `at element ${i} (tolerance ${tolerance.toExponential(1)})`
        );
      }
    }
  }
  return null;
}

/** One line for tables and logs, e.g. 'SkylakeX (OpenBLAS detected Prescott)'. */
export function describeCore(selection: CoreSelection | null): string {
  if (!selection) return 'none';
  if (!selection.core) return `none (every core failed its check; OpenBLAS detected ${selection.detected})`;
  if (selection.chosenBy === 'edgefed') return `${selection.core} (OpenBLAS detected ${selection.detected})`;
  if (selection.chosenBy === 'environment') return `${selection.core} (OPENBLAS_CORETYPE)`;
  return selection.core;
}
