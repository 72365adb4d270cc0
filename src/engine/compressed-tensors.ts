/**
 * Compressed update tensors on the wire: per layout slot, fp16 as one float16 tensor of the slot's shape,
 * int8 as an int8 tensor of that shape plus `<name>#scales` (float32), top-k as `<name>#indices` (int32)
 * and `<name>#values` (float32). Decoding expects exactly that sequence; the values are then checked
 * against the slot and the run's spec by decompressVector.
 */
import { FrameError, type WireDtype, type WireTensor } from '../core/wire.js';
import type { CompressedTensor, CompressionSpec } from '../core/compress-update.js';
import type { TensorSlot } from '../core/params.js';

export function compressedToTensors(layout: readonly TensorSlot[], parts: readonly CompressedTensor[]): WireTensor[] {
  return layout.flatMap((slot, i): WireTensor[] => {
    const c = parts[i];
    if (c.kind === 'fp16') return [{ name: slot.name, dtype: 'float16', shape: slot.shape, data: c.half }];
    if (c.kind === 'int8') {
      return [{ name: slot.name, dtype: 'int8', shape: slot.shape, data: c.q }, { name: `${slot.name}#scales`, dtype: 'float32', shape: [c.scales.length], data: c.scales }];
    }
    const k = c.sparse.indices.length;
    return [
      { name: `${slot.name}#indices`, dtype: 'int32', shape: [k], data: c.sparse.indices },
      { name: `${slot.name}#values`, dtype: 'float32', shape: [k], data: c.sparse.values },
    ];
  });
}

export function tensorsToCompressed(layout: readonly TensorSlot[], spec: CompressionSpec, tensors: readonly WireTensor[]): CompressedTensor[] {
  let next = 0;
  const take = (name: string, dtype: WireDtype, shape?: readonly number[]): WireTensor => {
    const t = tensors[next++];
    if (!t) throw new FrameError('bad_tensors', `tensor ${name} is missing`);
    if (t.name !== name) throw new FrameError('bad_tensors', `tensor ${next - 1} is '${t.name}', expected '${name}'`);
    if (t.dtype !== dtype) throw new FrameError('bad_tensors', `tensor ${name} is ${t.dtype}, expected ${dtype}`);
    const want = shape ?? [t.data.length];
    if (t.shape.length !== want.length || t.shape.some((d, j) => d !== want[j])) {
      throw new FrameError('bad_tensors', `tensor ${name} has shape [${t.shape.join(',')}], expected [${want.join(',')}]`);
    }
    return t;
  };
  const parts = layout.map((slot): CompressedTensor => {
    if (spec.kind === 'fp16') return { kind: 'fp16', half: take(slot.name, 'float16', slot.shape).data as Uint16Array };
    if (spec.kind === 'int8') {
      const q = take(slot.name, 'int8', slot.shape).data as Int8Array;
      return { kind: 'int8', q, scales: take(`${slot.name}#scales`, 'float32').data as Float32Array };
    }
    if (spec.kind === 'topk') {
      const indices = take(`${slot.name}#indices`, 'int32').data as Int32Array;
      return { kind: 'topk', sparse: { indices, values: take(`${slot.name}#values`, 'float32').data as Float32Array } };
    }
    throw new FrameError('bad_field', 'compression none has no compressed tensors');
  });
  if (next !== tensors.length) throw new FrameError('bad_tensors', `expected ${next} compressed tensors, got ${tensors.length}`);
  return parts;
}
