/**
 * ParameterSet: a model's tensors as one flat Float32Array plus the name, shape and offset of each.
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

export interface ParameterSet {
  layout: TensorSlot[];
  values: Float32Array;
}

export function sizeOf(shape: readonly number[]): number {
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

export function zerosLike(p: ParameterSet): ParameterSet {
  return { layout: p.layout, values: new Float32Array(p.values.length) };
}

export function cloneParams(p: ParameterSet): ParameterSet {
  return { layout: p.layout, values: new Float32Array(p.values) };
}

/** The view of one tensor inside the flat buffer (shares memory). */
export function tensorView(p: ParameterSet, name: string): Float32Array {
  const slot = p.layout.find((s) => s.name === name);
  if (!slot) throw new Error(`no tensor named '${name}'`);
  return p.values.subarray(slot.offset, slot.offset + slot.size);
}

/** True when two layouts have the same names, shapes and order. */
export function sameLayout(a: readonly TensorSlot[], b: readonly TensorSlot[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i].name !== b[i].name || a[i].shape.length !== b[i].shape.length) return false;
    for (let j = 0; j < a[i].shape.length; j++) if (a[i].shape[j] !== b[i].shape[j]) return false;
  }
  return true;
}
