/**
 * FedPer's split of a model (Arivazhagan et al. 2019): the body (shared, fused by the server) and the head,
 * the last `layers` layers, which each node keeps to itself. A layer is the tensors sharing a name prefix
 * (`output/kernel`, `output/bias`), in layout order; for the MLP and 2NN the head of 1 is the last Dense.
 */
import type { TensorSlot } from './params.js';

const layerOf = (name: string) => (name.includes('/') ? name.slice(0, name.lastIndexOf('/')) : name);

/** The slots of the last `layers` layers; throws when that leaves no body. */
export function headSlots(layout: readonly TensorSlot[], layers: number): TensorSlot[] {
  const names = [...new Set(layout.map((s) => layerOf(s.name)))];
  if (!Number.isInteger(layers) || layers < 1 || layers >= names.length) {
    throw new Error(
      `the personal head must be a whole number of layers from 1 to ${names.length - 1} (the model has ${names.length}), got ${layers}`,
    );
  }
  const head = new Set(names.slice(names.length - layers));
  return layout.filter((s) => head.has(layerOf(s.name)));
}

/** The head's values of `weights`, concatenated in slot order. */
export function takeHead(weights: Float32Array, slots: readonly TensorSlot[]): Float32Array {
  const out = new Float32Array(slots.reduce((a, s) => a + s.size, 0));
  let at = 0;
  for (const s of slots) {
    out.set(weights.subarray(s.offset, s.offset + s.size), at);
    at += s.size;
  }
  return out;
}

/** A copy of `weights` with the head's slots set from `head` (as takeHead laid it out). */
export function withHead(weights: Float32Array, head: Float32Array, slots: readonly TensorSlot[]): Float32Array {
  const out = new Float32Array(weights);
  let at = 0;
  for (const s of slots) {
    out.set(head.subarray(at, at + s.size), s.offset);
    at += s.size;
  }
  if (at !== head.length) throw new Error(`a personal head of ${head.length} values does not fit slots of ${at}`);
  return out;
}

/** The 10th percentile by nearest rank (the value at rank ceil(0.1 n) of the sorted values). */
export function percentile10(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(0.1 * sorted.length) - 1)];
}
