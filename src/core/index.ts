/**
 * The `edgefed/core` entry: the pure functions over Float32Array (no I/O, no tfjs), safe anywhere a
 * JavaScript engine runs: aggregation, robust rules, server optimisers, privacy, compression, partitioning,
 * sampling, the seeded generator, the wire format and secure aggregation's pieces.
 */
export * from './aggregate.js';
export * from './robust.js';
export {
  clipUpdate,
  dpAggregate,
  AdaptiveClip,
  adaptiveUpdateNoiseMultiplier,
  combinedNoiseMultiplier,
  nextClipNorm,
} from './dp.js';
export type { ClipResult, AdaptiveClipOptions, AdaptiveClipState, AdaptiveClipUpdate } from './dp.js';
export * from './rdp.js';
export * from './server-opt.js';
export * from './fedbuff.js';
export * from './compress.js';
export * from './compress-update.js';
export * from './partition.js';
export * from './sampling.js';
export * from './rng.js';
export * from './params.js';
export * from './wire.js';
export * from './chunks.js';
export * as secagg from './secagg/index.js';
export * as analytics from './analytics/index.js';
export { CODECS, CODEC_KINDS, codecOf } from './codecs/registry.js';
export type { CodecKind } from './codecs/registry.js';
export type * from './codecs/codec.js';
export type { RandomWords } from './discrete-gaussian.js';
