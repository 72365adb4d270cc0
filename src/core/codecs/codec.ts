/**
 * What an update codec is: how one tensor of an update is encoded on a node, checked and decoded on the
 * coordinator, and laid out as wire tensors. One module per codec; registry.ts lists them, and the spec text,
 * its label, the frame checks and the wire layout all go through it (compress-update.ts, engine/compressed-tensors.ts).
 */
import type { Rounding } from '../compress.js';
import type { TensorSlot } from '../params.js';
import type { Rng } from '../rng.js';
import type { WireDtype, WireTensor } from '../wire.js';

/** The per-run settings a codec reads (fields of the run's CompressionSpec). */
export interface CodecSettings {
  /** int8: values per scale; 0 = one scale per tensor. */
  block: number;
  /** int8: nearest, or stochastic (unbiased, seeded by the node's round seed). */
  rounding: Rounding;
  /** topk: fraction of each tensor's values sent. */
  fraction: number;
}

/** Reads the next wire tensor, checking its name, dtype and (when given) shape. */
export type TakeTensor = (name: string, dtype: WireDtype, shape?: readonly number[]) => WireTensor;

export interface Codec<T extends { kind: string }> {
  kind: T['kind'];
  /** The text forms it parses, for help and errors (e.g. `int8`, `int8-block:N`). */
  forms: readonly string[];
  /** Error feedback on by default (it drops values, so what it dropped should be sent later). */
  errorFeedback: boolean;
  /** The settings a text head `name[:arg]` stands for, or null when the head is not this codec's. */
  parse(name: string, arg: string | undefined, fail: (why: string) => never): Partial<CodecSettings> | null;
  /** Reads an option beyond ef and delta (`rounding=...`); false when the codec has no such option. */
  option?(key: string, value: string, settings: CodecSettings, fail: (why: string) => never): boolean;
  /** The canonical text: its head and its own options. */
  label(s: CodecSettings): { head: string; options: string[] };
  encode(part: Float32Array, s: CodecSettings, slot: TensorSlot, rng: Rng): T;
  /** Throws (via bad) unless `c` fits the slot and the settings. */
  check(c: T, s: CodecSettings, slot: TensorSlot, bad: (why: string) => never): void;
  decode(c: T, s: CodecSettings, slot: TensorSlot): Float32Array;
  toWire(c: T, slot: TensorSlot): WireTensor[];
  fromWire(slot: TensorSlot, take: TakeTensor): T;
}

/** Checks a definition's shape and returns it typed (the way to add a codec). */
export function defineCodec<T extends { kind: string }>(codec: Codec<T>): Codec<T> {
  return codec;
}
