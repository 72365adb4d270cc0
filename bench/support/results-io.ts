/** What a benchmark records beside its figures: the commit, the machine, and files written whole or not at all. */
import { execFileSync } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { arch, availableParallelism, cpus, platform, release } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getKernels } from '../../src/nn/kernels-select.js';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

export function machine(workers: number) {
  const cpu = cpus();
  return {
    cpu_model: cpu[0]?.model ?? 'unknown', cpu_cores: cpu.length, available_parallelism: availableParallelism(),
    platform: `${platform()} ${release()} ${arch()}`, node: process.version, kernels: getKernels().name, workers,
    note: 'shared machine: other jobs may run on the same cores, so wall times are upper bounds',
  };
}

/** Writes through a temporary file and a rename, so a reader never sees half a file. */
export function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/** A numeric flag value, or an Error naming the flag and what it expects. */
export function numberFlag(name: string, text: string, ok: (v: number) => boolean, what: string): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || !ok(v)) throw new Error(`--${name}: expected ${what}, got '${text}'`);
  return v;
}

/** Where and when a result was measured: the machine, the commit, the finish time and the wall time. */
export interface Provenance {
  machine: ReturnType<typeof machine>;
  git_commit: string | null;
  finished_at: string;
  total_seconds: number;
}

export function provenance(workers: number, startedMs: number): Provenance {
  return { machine: machine(workers), git_commit: gitCommit(), finished_at: new Date().toISOString(), total_seconds: Math.round(performance.now() - startedMs) / 1000 };
}

/**
 * A benchmark's result files DIR/NAME.json and DIR/NAME.md. With reportOnly the table is rewritten from the
 * JSON and null comes back (nothing to run).
 */
export function resultFiles<T>(dir: string, bench: string, reportOnly: boolean, markdown: (results: T) => string): { json: string; md: string } | null {
  const json = join(dir, `${bench}.json`);
  const md = join(dir, `${bench}.md`);
  if (!reportOnly) return { json, md };
  writeAtomic(md, markdown(JSON.parse(readFileSync(json, 'utf8')) as T));
  process.stderr.write(`${bench}: wrote ${md} from ${json}\n`);
  return null;
}
