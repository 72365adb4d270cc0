/**
 * Compressed update tensors on the wire: per layout slot, fp16 as one float16 tensor of the slot's shape,
 * int8 as an int8 tensor of that shape plus `<name>#scales` (float32), top-k as `<name>#indices` (int32)
 * and `<name>#values` (float32). Decoding expects exactly that sequence; the values are then checked
 * against the slot and the run's spec by decompressVector.
 */
import { FrameError, type WireDtype, type WireTensor } from '../core/wire.js';
import type { CompressedTensor, CompressionSpec } from '../core/compress-update.js';
import { codecOf } from '../core/codecs/registry.js';
import type { TensorSlot } from '../core/params.js';

export function compressedToTensors(layout: readonly TensorSlot[], parts: readonly CompressedTensor[]): WireTensor[] {
  return layout.flatMap((slot, i) => codecOf(parts[i].kind).toWire(parts[i], slot));
}

export function tensorsToCompressed(
  layout: readonly TensorSlot[],
  spec: CompressionSpec,
  tensors: readonly WireTensor[],
): CompressedTensor[] {
  let next = 0;
  const take = (name: string, dtype: WireDtype, shape?: readonly number[]): WireTensor => {
    const tensor = tensors[next++];
    if (!tensor) throw new FrameError('bad_tensors', `tensor ${name} is missing`);
    if (tensor.name !== name)
      throw new FrameError('bad_tensors', `tensor ${next - 1} is '${tensor.name}', expected '${name}'`);
    if (tensor.dtype !== dtype)
      throw new FrameError('bad_tensors', `tensor ${name} is ${tensor.dtype}, expected ${dtype}`);
    const want = shape ?? [tensor.data.length];
    if (tensor.shape.length !== want.length || tensor.shape.some((d, j) => d !== want[j])) {
      throw new FrameError(
        'bad_tensors',
        `tensor ${name} has shape [${tensor.shape.join(',')}], expected [${want.join(',')}]`,
      );
    }
    return tensor;
  };
  if (spec.kind === 'none') throw new FrameError('bad_field', 'compression none has no compressed tensors');
  const codec = codecOf(spec.kind);
  const parts = layout.map((slot) => codec.fromWire(slot, take));
  if (next !== tensors.length)
    throw new FrameError('bad_tensors', `expected ${next} compressed tensors, got ${tensors.length}`);
  return parts;
}
