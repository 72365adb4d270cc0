/**
 * Update compression primitives over Float32Array (pure: no I/O, no tfjs): IEEE half precision, int8
 * quantisation with one scale per tensor or per block, top-k sparsification, and the error-feedback step.
 * Encoders reject non-finite input (a node must not send what it cannot represent); decoders take only
 * validated payloads (compress-update.ts checks what arrives from the wire).
 */
import type { Rng } from './rng.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Rounds away the low `shift` bits of `m` to nearest, ties to even (shift >= 1). */
function roundShift(m: number, shift: number): number {
  const kept = Math.floor(m / 2 ** shift);
  const rem = m - kept * 2 ** shift;
  const mid = 2 ** (shift - 1);
  return rem > mid || (rem === mid && (kept & 1) === 1) ? kept + 1 : kept;
}

/** A float32 value as IEEE 754 binary16 bits, rounded to nearest even; overflow gives +-Inf, NaN stays NaN. */
export function toHalf(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return mant !== 0 ? sign | 0x7e00 | (mant >>> 13) : sign | 0x7c00;
  const e = exp - 127 + 15; // the half's biased exponent
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): value = M * 2^(E-23) with the implicit bit, in units of 2^-24.
    if (e < -10) return sign;
    return sign | roundShift(mant | 0x800000, 14 - e);
  }
  // A carry out of the mantissa moves into the exponent, which is right (up to Inf from 65520).
  return sign | ((e << 10) + roundShift(mant, 13));
}

/** IEEE binary16 bits back to a number (exact: every half is a float32). */
export function fromHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m !== 0 ? NaN : sign * Infinity;
  return sign * (1024 + m) * 2 ** (e - 25);
}

export function encodeFp16(x: Float32Array): Uint16Array {
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = toHalf(x[i]);
  return out;
}

export function decodeFp16(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) out[i] = fromHalf(h[i]);
  return out;
}

export type Rounding = 'nearest' | 'stochastic';

export interface Int8Blocks {
  /** Quantised values in [-127, 127] (symmetric: -128 is never produced and is rejected on decode). */
  q: Int8Array;
  /** One scale per block: block max |x| / 127 (0 for an all-zero block). */
  scales: Float32Array;
}

/** Blocks of `block` values (0 = the whole array is one block) covering `size` values. */
export function blockCount(size: number, block: number): number {
  if (size === 0) return 0;
  return block === 0 ? 1 : Math.ceil(size / block);
}

function checkFinite(x: Float32Array, what: string): void {
  for (let i = 0; i < x.length; i++)
    if (!Number.isFinite(x[i])) throw new Error(`${what}: value ${i} is ${x[i]}, not finite`);
}

/**
 * Symmetric int8 quantisation with one scale per block. Nearest rounding errs by at most scale/2 per value;
 * stochastic rounding (unbiased, drawn from `rng`) by less than scale.
 */
export function quantizeInt8(x: Float32Array, block: number, rounding: Rounding, rng?: Rng): Int8Blocks {
  if (!Number.isInteger(block) || block < 0)
    throw new Error(`int8 block size must be a whole number >= 0, got ${block}`);
  if (rounding === 'stochastic' && !rng) throw new Error('stochastic rounding needs a seeded Rng');
  checkFinite(x, 'int8');
  const size = block === 0 ? x.length : block;
  const scales = new Float32Array(blockCount(x.length, block));
  const q = new Int8Array(x.length);
  for (let b = 0; b < scales.length; b++) {
    const lo = b * size;
    const hi = Math.min(x.length, lo + size);
    let max = 0;
    for (let i = lo; i < hi; i++) max = Math.max(max, Math.abs(x[i]));
    const scale = Math.fround(max / 127);
    scales[b] = scale;
    if (scale === 0) continue;
    for (let i = lo; i < hi; i++) {
      const v = x[i] / scale;
      const r = rounding === 'nearest' ? Math.round(v) : Math.floor(v + rng!.next());
      q[i] = Math.max(-127, Math.min(127, r));
    }
  }
  return { q, scales };
}

export function dequantizeInt8(blocks: Int8Blocks, block: number): Float32Array {
  const { q, scales } = blocks;
  const size = block === 0 ? q.length : block;
  const out = new Float32Array(q.length);
  for (let i = 0; i < q.length; i++) out[i] = q[i] * scales[Math.floor(i / size)];
  return out;
}

export interface Sparse {
  /** Ascending, unique positions in [0, size). */
  indices: Int32Array;
  values: Float32Array;
}

/** How many values top-k keeps of `size` at `fraction`: ceil(fraction * size), at least 1 of a non-empty tensor. */
export function topkCount(size: number, fraction: number): number {
  if (size === 0) return 0;
  return Math.min(size, Math.max(1, Math.ceil(fraction * size - 1e-9)));
}

/** The k values of largest |x| (ties: the lower index wins), returned in index order. */
export function topK(x: Float32Array, k: number): Sparse {
  if (!Number.isInteger(k) || k < 0 || k > x.length)
    throw new Error(`top-k: k must be a whole number in [0, ${x.length}], got ${k}`);
  checkFinite(x, 'top-k');
  const order = new Int32Array(x.length);
  for (let i = 0; i < order.length; i++) order[i] = i;
  order.sort((a, b) => Math.abs(x[b]) - Math.abs(x[a]) || a - b);
  const indices = order.slice(0, k).sort();
  const values = new Float32Array(k);
  for (let i = 0; i < k; i++) values[i] = x[indices[i]];
  return { indices, values };
}

export function densify(s: Sparse, size: number): Float32Array {
  const out = new Float32Array(size);
  for (let i = 0; i < s.indices.length; i++) out[s.indices[i]] = s.values[i];
  return out;
}

/** Error feedback, before compressing: the input plus what earlier rounds failed to send. */
export function withResidual(input: Float32Array, residual: Float32Array | undefined): Float32Array {
  if (!residual) return new Float32Array(input);
  if (residual.length !== input.length)
    throw new Error(`error feedback: residual has ${residual.length} values, the update ${input.length}`);
  const out = new Float32Array(input.length);
  for (let i = 0; i < input.length; i++) out[i] = input[i] + residual[i];
  return out;
}

/** Error feedback, after compressing: what was meant to be sent minus what the receiver decodes. */
export function residualOf(corrected: Float32Array, decoded: Float32Array): Float32Array {
  const out = new Float32Array(corrected.length);
  for (let i = 0; i < corrected.length; i++) out[i] = corrected[i] - decoded[i];
  return out;
}
