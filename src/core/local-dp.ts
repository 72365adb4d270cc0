/**
 * Local differential privacy: a node clips and noises its own update before it leaves, so the guarantee does not
 * depend on the coordinator. The update local - global goes through the same grid mechanism as central DP-FedAvg
 * (dp-grid.ts: clip to C, round to C / 2^16, exact discrete Gaussian with stddev >= z C) with a denominator of 1.
 */
import type { RandomWords } from './discrete-gaussian.js';
import { dpGridMean } from './dp-grid.js';

export interface LocalDpSpec {
  /** L2 clip norm C of the node's update. */
  clip: number;
  /** Noise multiplier z: noise stddev z C per coordinate. */
  noise: number;
  /** delta of the node's (epsilon, delta) report. */
  delta: number;
}

/** Parses `clip=C,noise=Z[,delta=D]` (C > 0, Z > 0, D in (0, 1), default 1e-5), naming what is wrong. */
export function parseLocalDp(text: string): LocalDpSpec {
  const fields = new Map<string, string>();
  for (const part of text.split(',')) {
    const [key, value, unexpected] = part.split('=');
    if (value === undefined || unexpected !== undefined || !['clip', 'noise', 'delta'].includes(key.trim())) {
      throw new Error(`local DP '${text}': expected clip=C,noise=Z[,delta=D], got '${part}'`);
    }
    fields.set(key.trim(), value.trim());
  }
  const number = (key: string, ok: (v: number) => boolean, what: string, fallback?: number): number => {
    const raw = fields.get(key);
    if (raw === undefined && fallback !== undefined) return fallback;
    const v = Number(raw);
    if (raw === undefined || raw === '' || !Number.isFinite(v) || !ok(v))
      throw new Error(`local DP '${text}': ${key} must be ${what}, got '${raw ?? ''}'`);
    return v;
  };
  return {
    clip: number('clip', (v) => v > 0, 'a number > 0'),
    noise: number('noise', (v) => v > 0, 'a number > 0'),
    delta: number('delta', (v) => v > 0 && v < 1, 'in (0, 1)', 1e-5),
  };
}

/** The weights a node sends: global + clip(local - global) rounded to the grid, plus N_Z(0, (z C)^2) per coordinate. */
export function localDpWeights(
  global: Float32Array,
  local: Float32Array,
  spec: LocalDpSpec,
  words: RandomWords,
): Float32Array {
  if (global.length !== local.length)
    throw new Error(`local DP: the local model has ${local.length} values, the global ${global.length}`);
  const delta = Float32Array.from(local, (x, j) => x - global[j]);
  const noised = dpGridMean([delta], spec.clip, spec.noise, words, 1);
  return Float32Array.from(global, (g, j) => g + noised[j]);
}
