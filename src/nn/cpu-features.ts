/**
 * What this CPU can run, read from the flags the kernel reports (/proc/cpuinfo). NODE-ONLY. Used to tell
 * whether OpenBLAS fell back to a core slower than the CPU allows, and printed by `edgefed doctor`.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

export interface CpuFeatures {
  model: string;
  /** Flags from /proc/cpuinfo (empty where the platform has no such file, e.g. macOS). */
  flags: ReadonlySet<string>;
  /** The widest vector extension both the CPU and the kernel support. */
  vector: 'avx512' | 'avx2' | 'avx' | 'sse' | 'unknown';
}

/** The AVX-512 subsets OpenBLAS's SkylakeX kernels use. */
export const AVX512_FLAGS = ['avx512f', 'avx512cd', 'avx512bw', 'avx512dq', 'avx512vl'] as const;

let cached: CpuFeatures | null = null;

export function cpuFeatures(): CpuFeatures {
  if (cached) return cached;
  let text = '';
  try {
    text = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    /* not Linux: no flags, so no core upgrade */
  }
  cached = parseCpuInfo(text, cpus()[0]?.model ?? 'unknown CPU');
  return cached;
}

/** Parses the first processor's flags out of /proc/cpuinfo text. */
export function parseCpuInfo(text: string, fallbackModel: string): CpuFeatures {
  const line = (key: string) => text.match(new RegExp(`^${key}\\s*:\\s*(.*)$`, 'm'))?.[1]?.trim();
  const flags = new Set((line('flags') ?? '').split(/\s+/).filter((f) => f !== ''));
  return { model: line('model name') ?? fallbackModel, flags, vector: vectorLevel(flags) };
}

export function vectorLevel(flags: ReadonlySet<string>): CpuFeatures['vector'] {
  if (flags.size === 0) return 'unknown';
  if (AVX512_FLAGS.every((f) => flags.has(f))) return 'avx512';
  if (flags.has('avx2') && flags.has('fma')) return 'avx2';
  if (flags.has('avx')) return 'avx';
  return 'sse';
}
