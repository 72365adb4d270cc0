/**
 * Compressed updates, per run (pure): the spec (`none | fp16 | int8 | int8-block:N | topk:F` with options),
 * compressing a flat update tensor by tensor along the model layout, checking what arrives, and the node's
 * error-feedback state. Every tensor is compressed on its own (one int8 scale per tensor or per block of
 * it; top-k keeps ceil(F * size) values of each tensor), so the coordinator checks each against its slot.
 */
import { applyDelta, deltas } from './aggregate.js';
import { blockCount, decodeFp16, densify, dequantizeInt8, encodeFp16, quantizeInt8, residualOf, topK, topkCount, withResidual, type Rounding, type Sparse } from './compress.js';
import type { TensorSlot } from './params.js';
import type { Rng } from './rng.js';

export const COMPRESSION_KINDS = ['none', 'fp16', 'int8', 'topk'] as const;
export type CompressionKind = (typeof COMPRESSION_KINDS)[number];

export interface CompressionSpec {
  kind: CompressionKind;
  /** int8: values per scale; 0 = one scale per tensor. */
  block: number;
  /** int8: nearest, or stochastic (unbiased, seeded by the node's round seed). */
  rounding: Rounding;
  /** topk: fraction of each tensor's values sent. */
  fraction: number;
  /** Error feedback: what compression dropped is kept on the node and added to its next update. */
  ef: boolean;
  /** Weights-mode updates travel as local - global (the coordinator adds the global back). */
  delta: boolean;
}

export const NO_COMPRESSION: CompressionSpec = { kind: 'none', block: 0, rounding: 'nearest', fraction: 1, ef: false, delta: false };

const MAX_BLOCK = 1 << 24;

function onOff(text: string, key: string, value: string): boolean {
  if (value === 'on') return true;
  if (value === 'off') return false;
  throw new Error(`compression '${text}': ${key} must be on or off, got '${value}'`);
}

/**
 * Parses `none | fp16 | int8 | int8-block:N | topk:F` followed by optional `,ef=on|off`, `,delta=on|off`,
 * `,rounding=nearest|stochastic` (int8). Delta is on for every compressed kind, error feedback for topk.
 */
export function parseCompression(text: string): CompressionSpec {
  const [head, ...opts] = text.trim().split(',').map((s) => s.trim());
  const [name, arg] = head.split(':', 2) as [string, string | undefined];
  let spec: CompressionSpec;
  if (name === 'none' && arg === undefined) spec = { ...NO_COMPRESSION };
  else if (name === 'fp16' && arg === undefined) spec = { ...NO_COMPRESSION, kind: 'fp16', delta: true };
  else if (name === 'int8' && arg === undefined) spec = { ...NO_COMPRESSION, kind: 'int8', delta: true };
  else if (name === 'int8-block' && arg !== undefined) {
    const block = Number(arg);
    if (!/^\d+$/.test(arg) || !(block >= 1 && block <= MAX_BLOCK)) throw new Error(`compression '${text}': block size must be a whole number in [1, ${MAX_BLOCK}], got '${arg}'`);
    spec = { ...NO_COMPRESSION, kind: 'int8', block, delta: true };
  } else if (name === 'topk' && arg !== undefined) {
    const fraction = Number(arg);
    if (arg === '' || !(fraction > 0 && fraction <= 1)) throw new Error(`compression '${text}': top-k fraction must be in (0, 1], got '${arg}'`);
    spec = { ...NO_COMPRESSION, kind: 'topk', fraction, ef: true, delta: true };
  } else {
    throw new Error(`unknown compression '${text}' (none, fp16, int8, int8-block:N, topk:F, then optional ,ef=on|off ,delta=on|off ,rounding=nearest|stochastic)`);
  }
  for (const opt of opts) {
    const [key, value] = opt.split('=', 2);
    if (value === undefined) throw new Error(`compression '${text}': option '${opt}' needs the form key=value`);
    if (spec.kind === 'none') throw new Error(`compression '${text}': none takes no options`);
    if (key === 'ef') spec.ef = onOff(text, key, value);
    else if (key === 'delta') spec.delta = onOff(text, key, value);
    else if (key === 'rounding' && spec.kind === 'int8') {
      if (value !== 'nearest' && value !== 'stochastic') throw new Error(`compression '${text}': rounding must be nearest or stochastic, got '${value}'`);
      spec.rounding = value;
    } else throw new Error(`compression '${text}': unknown option '${key}' for ${spec.kind}`);
  }
  return spec;
}

/** The canonical text of a spec (parseCompression(compressionLabel(s)) equals s). */
export function compressionLabel(s: CompressionSpec): string {
  if (s.kind === 'none') return 'none';
  const head = s.kind === 'int8' ? (s.block === 0 ? 'int8' : `int8-block:${s.block}`) : s.kind === 'topk' ? `topk:${s.fraction}` : 'fp16';
  return [head, `ef=${s.ef ? 'on' : 'off'}`, `delta=${s.delta ? 'on' : 'off'}`, ...(s.kind === 'int8' ? [`rounding=${s.rounding}`] : [])].join(',');
}

/** A spec as it arrives in a frame header: every field checked, nothing else allowed. */
export function checkCompressionSpec(u: unknown): CompressionSpec {
  const bad = (why: string): never => { throw new Error(`compression spec: ${why}`); };
  if (typeof u !== 'object' || u === null || Array.isArray(u)) return bad('not an object');
  const o = u as Record<string, unknown>;
  const keys = Object.keys(NO_COMPRESSION);
  for (const k of Object.keys(o)) if (!keys.includes(k)) bad(`unknown field '${k}'`);
  if (!(COMPRESSION_KINDS as readonly unknown[]).includes(o.kind)) bad(`kind must be one of ${COMPRESSION_KINDS.join(', ')}`);
  if (!Number.isInteger(o.block) || (o.block as number) < 0 || (o.block as number) > MAX_BLOCK) bad(`block must be a whole number in [0, ${MAX_BLOCK}]`);
  if (o.rounding !== 'nearest' && o.rounding !== 'stochastic') bad('rounding must be nearest or stochastic');
  if (typeof o.fraction !== 'number' || !(o.fraction > 0 && o.fraction <= 1)) bad('fraction must be in (0, 1]');
  if (typeof o.ef !== 'boolean' || typeof o.delta !== 'boolean') bad('ef and delta must be booleans');
  return o as unknown as CompressionSpec;
}

export type CompressedTensor =
  | { kind: 'fp16'; half: Uint16Array }
  | { kind: 'int8'; q: Int8Array; scales: Float32Array }
  | { kind: 'topk'; sparse: Sparse };

/** Compresses a flat update tensor by tensor (spec.kind must not be none). */
export function compressVector(spec: CompressionSpec, layout: readonly TensorSlot[], x: Float32Array, rng: Rng): CompressedTensor[] {
  return layout.map((slot): CompressedTensor => {
    const part = x.subarray(slot.offset, slot.offset + slot.size);
    switch (spec.kind) {
      case 'fp16': return { kind: 'fp16', half: encodeFp16(part) };
      case 'int8': return { kind: 'int8', ...quantizeInt8(part, spec.block, spec.rounding, rng.fork(`int8:${slot.name}`)) };
      case 'topk': return { kind: 'topk', sparse: topK(part, topkCount(slot.size, spec.fraction)) };
      default: throw new Error(`compression ${spec.kind} has no compressed form`);
    }
  });
}

/**
 * Checks one compressed tensor against its slot and the spec: sizes, int8 range, finite non-negative
 * scales, exactly k top-k entries at ascending unique in-range indices with finite values.
 */
export function checkCompressed(spec: CompressionSpec, slot: TensorSlot, c: CompressedTensor): void {
  const bad = (why: string): never => { throw new Error(`tensor ${slot.name}: ${why}`); };
  if (c.kind !== spec.kind) bad(`is ${c.kind}, the run compresses with ${spec.kind}`);
  if (c.kind === 'fp16' && c.half.length !== slot.size) bad(`holds ${c.half.length} values, expected ${slot.size}`);
  if (c.kind === 'int8') {
    if (c.q.length !== slot.size) bad(`holds ${c.q.length} values, expected ${slot.size}`);
    if (c.q.some((v) => v === -128)) bad('int8 value -128 is outside the symmetric range [-127, 127]');
    const blocks = blockCount(slot.size, spec.block);
    if (c.scales.length !== blocks) bad(`has ${c.scales.length} scales, expected ${blocks}`);
    if (c.scales.some((s) => !Number.isFinite(s) || s < 0)) bad('scales must be finite and >= 0');
  }
  if (c.kind === 'topk') {
    const k = topkCount(slot.size, spec.fraction);
    const { indices, values } = c.sparse;
    if (indices.length !== k || values.length !== k) bad(`has ${indices.length} indices and ${values.length} values, expected ${k} of each`);
    for (let i = 0; i < k; i++) {
      if (indices[i] < 0 || indices[i] >= slot.size) bad(`index ${indices[i]} is outside [0, ${slot.size})`);
      if (i > 0 && indices[i] <= indices[i - 1]) bad('indices must be ascending and unique');
      if (!Number.isFinite(values[i])) bad(`value ${i} is not finite`);
    }
  }
}

/** The dense update the compressed tensors stand for (checked first). */
export function decompressVector(spec: CompressionSpec, layout: readonly TensorSlot[], parts: readonly CompressedTensor[]): Float32Array {
  if (parts.length !== layout.length) throw new Error(`expected ${layout.length} compressed tensors, got ${parts.length}`);
  const size = layout.length === 0 ? 0 : layout[layout.length - 1].offset + layout[layout.length - 1].size;
  const out = new Float32Array(size);
  layout.forEach((slot, i) => {
    const c = parts[i];
    checkCompressed(spec, slot, c);
    out.set(c.kind === 'fp16' ? decodeFp16(c.half) : c.kind === 'int8' ? dequantizeInt8(c, spec.block) : densify(c.sparse, slot.size), slot.offset);
  });
  return out;
}

/**
 * The node side: turns a node's trained vector into compressed tensors, keeping each node's error-feedback
 * residual between rounds (so a node must always be served by the same compressor within a run).
 */
export class UpdateCompressor {
  private readonly residuals = new Map<number, Float32Array>();

  constructor(private readonly layout: readonly TensorSlot[]) {}

  /** `vector` is the local weights (delta taken against `global`) or a gradient (`global` unused). */
  compress(nodeId: number, spec: CompressionSpec, vector: Float32Array, global: Float32Array, gradient: boolean, rng: Rng): CompressedTensor[] {
    const update = spec.delta && !gradient ? deltas(global, [vector])[0] : vector;
    const corrected = withResidual(update, spec.ef ? this.residuals.get(nodeId) : undefined);
    const parts = compressVector(spec, this.layout, corrected, rng);
    if (spec.ef) this.residuals.set(nodeId, residualOf(corrected, decompressVector(spec, this.layout, parts)));
    return parts;
  }

  residual(nodeId: number): Float32Array | undefined {
    return this.residuals.get(nodeId);
  }
}

/** The coordinator side: the update as the strategy expects it (local weights or gradient). */
export function reconstructUpdate(spec: CompressionSpec, decoded: Float32Array, global: Float32Array, gradient: boolean): Float32Array {
  return spec.delta && !gradient ? applyDelta(global, decoded) : decoded;
}
