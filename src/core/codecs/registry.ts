/** The update codecs, by kind: adding one is its module and one entry in CODECS. */
import type { Codec } from './codec.js';
import { fp16 } from './fp16.js';
import { int8 } from './int8.js';
import { topk } from './topk.js';

export const CODECS = [fp16, int8, topk] as const;

/** One tensor as any codec encodes it. */
export type CompressedTensor = ReturnType<(typeof CODECS)[number]['encode']>;
export type CodecKind = CompressedTensor['kind'];

export const CODEC_KINDS: readonly CodecKind[] = CODECS.map((c) => c.kind);

export function codecOf(kind: string): Codec<CompressedTensor> {
  const codec = CODECS.find((c) => c.kind === kind);
  if (!codec) throw new Error(`compression ${kind} has no compressed form`);
  return codec as unknown as Codec<CompressedTensor>;
}
