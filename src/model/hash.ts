/** The identity of a model's weights: sha256 of their little-endian float32 bytes. */
import { createHash } from 'node:crypto';

export function weightsSha256(w: Float32Array): string {
  return createHash('sha256')
    .update(new Uint8Array(w.buffer, w.byteOffset, w.byteLength))
    .digest('hex');
}
