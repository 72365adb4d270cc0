/**
 * What every benchmark records and prints beside its figures: the commit, the machine (CPU model, kernels,
 * OpenBLAS core when known, load average), numeric flags checked the same way, and result files written
 * whole or not at all. One module so each bench script carries none of this itself.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { arch, availableParallelism, cpus, loadavg, platform, release, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getKernels } from '../../src/nn/kernels-select.js';
import { cpuFeatures } from '../../src/nn/cpu-features.js';
import { nativeKernelsInfo } from '../../src/nn/kernels-native.js';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** `git ARGS` in the repository, trimmed; null without git or outside a checkout. */
export function git(args: string[]): string | null {
  try {
    return execFileSync('git', args, { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

export function gitCommit(): string | null {
  return git(['rev-parse', 'HEAD']);
}

/** Whether src/ has uncommitted changes (the commit alone does not then name the code measured). */
export function gitSrcDirty(): boolean | null {
  const status = git(['status', '--porcelain', '--', 'src']);
  return status === null ? null : status.length > 0;
}

/** The CPU's marketing name: /proc/cpuinfo on Linux (os.cpus() may shorten it), else os.cpus(). */
function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1].trim();
  } catch {
    // not Linux: os.cpus() it is
  }
  return cpus()[0]?.model ?? 'unknown';
}

const round2 = (v: number) => Math.round(v * 100) / 100;

export function machine(workers?: number) {
  const kernels = getKernels();
  const native = kernels.name.startsWith('native') ? nativeKernelsInfo() : null;
  return {
    cpu_model: cpuModel(),
    cpu_cores: cpus().length,
    available_parallelism: availableParallelism(),
    memory_gb: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    platform: `${platform()} ${release()} ${arch()}`,
    node: process.version,
    kernels: kernels.name,
    kernels_env: process.env.EDGEFED_KERNELS ?? null,
    // The core EdgeFed chose (and why), and OPENBLAS_CORETYPE, which NumPy's OpenBLAS reads too.
    openblas: native ? { config: native.config, core: native.core, threads: native.threads } : null,
    openblas_coretype_env: process.env.OPENBLAS_CORETYPE ?? null,
    cpu_vector: cpuFeatures().vector,
    load_average: loadavg().map(round2),
    ...(workers === undefined ? {} : { workers }),
    note: 'shared machine: other jobs may run on the same cores, so wall times are upper bounds',
  };
}

export type Machine = ReturnType<typeof machine>;

/** The environment as lines to print beside a figure: CPU, kernels, OpenBLAS core, load, commit. */
export function environmentLines(m: Machine = machine(), commit: string | null = gitCommit()): string[] {
  const blas = m.openblas
    ? `OpenBLAS core ${m.openblas.core ?? '?'}, ${m.openblas.threads ?? '?'} thread(s)`
    : 'OpenBLAS: not in use';
  return [
    `cpu: ${m.cpu_model} x${m.cpu_cores} (${m.available_parallelism} available, ${m.cpu_vector}), ${m.memory_gb} GB, ${m.platform}, node ${m.node}`,
    `kernels: ${m.kernels}${m.kernels_env ? ` (EDGEFED_KERNELS=${m.kernels_env})` : ''}; ${blas}`,
    `load average (1, 5, 15 min): ${m.load_average.join(' ')} now; commit ${commit ?? 'unknown'}${gitSrcDirty() ? ' + uncommitted src changes' : ''}`,
  ];
}

/** Prints environmentLines to stderr, each prefixed with the benchmark's name. */
export function printEnvironment(bench: string, m: Machine = machine()): void {
  for (const line of environmentLines(m)) process.stderr.write(`${bench}: ${line}\n`);
}

/** Writes through a temporary file and a rename, so a reader never sees half a file (creating its folder). */
export function writeAtomic(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/** A numeric flag value, or an Error naming the flag and what it expects. */
export function numberFlag(name: string, text: string, ok: (v: number) => boolean, what: string): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || !ok(v))
    throw new Error(`--${name}: expected ${what}, got '${text}'`);
  return v;
}

/** Where and when a result was measured: the machine, the commit, the finish time and the wall time. */
export interface Provenance {
  machine: Machine;
  git_commit: string | null;
  finished_at: string;
  total_seconds: number;
}

export function provenance(workers: number, startedMs: number): Provenance {
  return {
    machine: machine(workers),
    git_commit: gitCommit(),
    finished_at: new Date().toISOString(),
    total_seconds: Math.round(performance.now() - startedMs) / 1000,
  };
}

/**
 * A benchmark's result files DIR/NAME.json and DIR/NAME.md. With reportOnly the table is rewritten from the
 * JSON and null comes back (nothing to run).
 */
export function resultFiles<T>(
  dir: string,
  bench: string,
  reportOnly: boolean,
  markdown: (results: T) => string,
): { json: string; md: string } | null {
  const json = join(dir, `${bench}.json`);
  const md = join(dir, `${bench}.md`);
  if (!reportOnly) return { json, md };
  writeAtomic(md, markdown(JSON.parse(readFileSync(json, 'utf8')) as T));
  process.stderr.write(`${bench}: wrote ${md} from ${json}\n`);
  return null;
}

/** The parseArgs options of a bench that writes result files: --workers, --results-dir, --report-only. */
export const RESULT_FLAGS = {
  workers: { type: 'string' },
  'results-dir': { type: 'string', default: 'bench/results' },
  'report-only': { type: 'boolean', default: false },
} as const;

/** A flag that must be a whole number >= 1. */
export function wholeFlag(name: string, text: string): number {
  return numberFlag(name, text, (x) => Number.isInteger(x) && x >= 1, 'a whole number >= 1');
}

/** The environment, load and wall time as markdown list lines under a result table. */
export function environmentFooter(f: Provenance): string[] {
  return [
    ...environmentLines(f.machine, f.git_commit).map((l) => `- ${l}`),
    `- load average at the end ${f.machine.load_average.join(', ')}; ${f.machine.note}`,
    `- total wall time ${f.total_seconds.toFixed(1)} s, finished ${f.finished_at}`,
  ];
}
