/**
 * Compressed updates, per run (pure): the spec (`none | fp16 | int8 | int8-block:N | topk:F` with options),
 * compressing a flat update tensor by tensor along the model layout, checking what arrives, and the node's
 * error-feedback state. Every tensor is compressed on its own (one int8 scale per tensor or per block of
 * it; top-k keeps ceil(F * size) values of each tensor), so the coordinator checks each against its slot.
 */
import { applyDelta, deltas } from './aggregate.js';
import { residualOf, withResidual } from './compress.js';
import type { CodecSettings } from './codecs/codec.js';
import { CODEC_KINDS, CODECS, codecOf, type CodecKind, type CompressedTensor } from './codecs/registry.js';
import type { TensorSlot } from './params.js';
import type { Rng } from './rng.js';

export type { CompressedTensor } from './codecs/registry.js';

export const COMPRESSION_KINDS = ['none', ...CODEC_KINDS] as const;
export type CompressionKind = 'none' | CodecKind;

export interface CompressionSpec extends CodecSettings {
  kind: CompressionKind;
  /** Error feedback: what compression dropped is kept on the node and added to its next update. */
  ef: boolean;
  /** Weights-mode updates travel as local - global (the coordinator adds the global back). */
  delta: boolean;
}

export const NO_COMPRESSION: CompressionSpec = {
  kind: 'none',
  block: 0,
  rounding: 'nearest',
  fraction: 1,
  ef: false,
  delta: false,
};

const MAX_BLOCK = 1 << 24;

function onOff(text: string, key: string, value: string): boolean {
  if (value === 'on') return true;
  if (value === 'off') return false;
  throw new Error(`compression '${text}': ${key} must be on or off, got '${value}'`);
}

/** The text forms of every codec, for help and errors. */
export function compressionForms(): string {
  return ['none', ...CODECS.flatMap((c) => c.forms)].join(', ');
}

/**
 * Parses `none` or a codec's form (`fp16 | int8 | int8-block:N | topk:F`) followed by optional `,ef=on|off`,
 * `,delta=on|off` and the codec's own options (`,rounding=nearest|stochastic` for int8). Delta is on for every
 * compressed kind, error feedback where the codec says (topk).
 */
export function parseCompression(text: string): CompressionSpec {
  const [head, ...opts] = text
    .trim()
    .split(',')
    .map((s) => s.trim());
  const [name, arg] = head.split(':', 2) as [string, string | undefined];
  const fail = (why: string): never => {
    throw new Error(`compression '${text}': ${why}`);
  };
  let spec: CompressionSpec | undefined = name === 'none' && arg === undefined ? { ...NO_COMPRESSION } : undefined;
  for (const codec of CODECS) {
    if (spec) break;
    const settings = codec.parse(name, arg, fail);
    if (settings) spec = { ...NO_COMPRESSION, ...settings, kind: codec.kind, ef: codec.errorFeedback, delta: true };
  }
  if (!spec) {
    throw new Error(
      `unknown compression '${text}' (${compressionForms()}, then optional ,ef=on|off ,delta=on|off ,rounding=nearest|stochastic)`,
    );
  }
  for (const opt of opts) {
    const [key, value] = opt.split('=', 2);
    if (value === undefined) fail(`option '${opt}' needs the form key=value`);
    if (spec.kind === 'none') fail('none takes no options');
    if (key === 'ef') spec.ef = onOff(text, key, value);
    else if (key === 'delta') spec.delta = onOff(text, key, value);
    else if (!codecOf(spec.kind).option?.(key, value, spec, fail)) fail(`unknown option '${key}' for ${spec.kind}`);
  }
  return spec;
}

/** The canonical text of a spec (parseCompression(compressionLabel(s)) equals s). */
export function compressionLabel(s: CompressionSpec): string {
  if (s.kind === 'none') return 'none';
  const { head, options } = codecOf(s.kind).label(s);
  return [head, `ef=${s.ef ? 'on' : 'off'}`, `delta=${s.delta ? 'on' : 'off'}`, ...options].join(',');
}

/** A spec as it arrives in a frame header: every field checked, nothing else allowed. */
export function checkCompressionSpec(u: unknown): CompressionSpec {
  const bad = (why: string): never => {
    throw new Error(`compression spec: ${why}`);
  };
  if (typeof u !== 'object' || u === null || Array.isArray(u)) return bad('not an object');
  const fields = u as Record<string, unknown>;
  const keys = Object.keys(NO_COMPRESSION);
  for (const k of Object.keys(fields)) if (!keys.includes(k)) bad(`unknown field '${k}'`);
  if (!(COMPRESSION_KINDS as readonly unknown[]).includes(fields.kind))
    bad(`kind must be one of ${COMPRESSION_KINDS.join(', ')}`);
  if (!Number.isInteger(fields.block) || (fields.block as number) < 0 || (fields.block as number) > MAX_BLOCK)
    bad(`block must be a whole number in [0, ${MAX_BLOCK}]`);
  if (fields.rounding !== 'nearest' && fields.rounding !== 'stochastic') bad('rounding must be nearest or stochastic');
  if (typeof fields.fraction !== 'number' || !(fields.fraction > 0 && fields.fraction <= 1))
    bad('fraction must be in (0, 1]');
  if (typeof fields.ef !== 'boolean' || typeof fields.delta !== 'boolean') bad('ef and delta must be booleans');
  return fields as unknown as CompressionSpec;
}

/** Compresses a flat update tensor by tensor (spec.kind must not be none). */
export function compressVector(
  spec: CompressionSpec,
  layout: readonly TensorSlot[],
  x: Float32Array,
  rng: Rng,
): CompressedTensor[] {
  const codec = codecOf(spec.kind);
  return layout.map((slot) => codec.encode(x.subarray(slot.offset, slot.offset + slot.size), spec, slot, rng));
}

/**
 * Checks one compressed tensor against its slot and the spec (the codec's own checks: sizes, ranges,
 * finite values, index order).
 */
export function checkCompressed(spec: CompressionSpec, slot: TensorSlot, c: CompressedTensor): void {
  const bad = (why: string): never => {
    throw new Error(`tensor ${slot.name}: ${why}`);
  };
  if (c.kind !== spec.kind) bad(`is ${c.kind}, the run compresses with ${spec.kind}`);
  codecOf(c.kind).check(c, spec, slot, bad);
}

/** The dense update the compressed tensors stand for (checked first). */
export function decompressVector(
  spec: CompressionSpec,
  layout: readonly TensorSlot[],
  parts: readonly CompressedTensor[],
): Float32Array {
  if (parts.length !== layout.length)
    throw new Error(`expected ${layout.length} compressed tensors, got ${parts.length}`);
  const size = layout.length === 0 ? 0 : layout[layout.length - 1].offset + layout[layout.length - 1].size;
  const out = new Float32Array(size);
  layout.forEach((slot, i) => {
    const c = parts[i];
    checkCompressed(spec, slot, c);
    out.set(codecOf(c.kind).decode(c, spec, slot), slot.offset);
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
  compress(
    nodeId: number,
    spec: CompressionSpec,
    vector: Float32Array,
    global: Float32Array,
    gradient: boolean,
    rng: Rng,
  ): CompressedTensor[] {
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
export function reconstructUpdate(
  spec: CompressionSpec,
  decoded: Float32Array,
  global: Float32Array,
  gradient: boolean,
): Float32Array {
  return spec.delta && !gradient ? applyDelta(global, decoded) : decoded;
}
