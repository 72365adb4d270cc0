/** What a benchmark records beside its figures: the commit, the machine, and files written whole or not at all. */
import { execFileSync } from 'node:child_process';
import { renameSync, writeFileSync } from 'node:fs';
import { arch, availableParallelism, cpus, platform, release } from 'node:os';
import { dirname, resolve } from 'node:path';
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
