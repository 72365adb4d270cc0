/**
 * A model's parameters travel as one flat Float32Array; its layout names the shape and offset of each tensor.
 * Fusion, compression and serialisation work on the flat buffer; the layout maps it back to tensors.
 */
export interface TensorSpec {
  name: string;
  shape: number[];
}

export interface TensorSlot extends TensorSpec {
  offset: number;
  size: number;
}

function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`bad tensor dimension ${d} in shape [${shape.join(',')}]`);
    n *= d;
  }
  return n;
}

export function makeLayout(specs: readonly TensorSpec[]): TensorSlot[] {
  let offset = 0;
  const seen = new Set<string>();
  return specs.map((s) => {
    if (seen.has(s.name)) throw new Error(`duplicate tensor name '${s.name}'`);
    seen.add(s.name);
    const size = sizeOf(s.shape);
    const slot = { name: s.name, shape: [...s.shape], offset, size };
    offset += size;
    return slot;
  });
}

export function layoutSize(layout: readonly TensorSlot[]): number {
  return layout.length === 0 ? 0 : layout[layout.length - 1].offset + layout[layout.length - 1].size;
}
