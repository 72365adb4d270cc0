/**
 * A train reply frame with the update compressed as the request's config asks (plain float32 when it asks
 * nothing): shared by a node's host and a gateway answering the cloud for its site. Stochastic rounding is
 * seeded by the round's node seed, so a run stays reproducible whichever process serves the node.
 */
import { checkCompressionSpec, type UpdateCompressor } from '../core/compress-update.js';
import type { TensorSlot } from '../core/params.js';
import { Rng } from '../core/rng.js';
import { encodeCompressedTrainReply, encodeTrainReply, type TrainReply } from '../engine/messages.js';
import type { TrainConfig } from '../model/trainer.js';

export function encodeUpdateReply(
  layout: readonly TensorSlot[],
  compressor: UpdateCompressor,
  r: TrainReply,
  config: TrainConfig,
  global: Float32Array,
  gradient: boolean,
): Uint8Array {
  const spec = config.compression === undefined ? undefined : checkCompressionSpec(config.compression);
  if (!spec || spec.kind === 'none') return encodeTrainReply(layout, r);
  const parts = compressor.compress(r.nodeId, spec, r.vector, global, gradient, new Rng(config.seed).fork('compress'));
  return encodeCompressedTrainReply(layout, r, spec, parts);
}
