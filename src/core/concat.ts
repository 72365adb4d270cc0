/** Typed arrays joined end to end: the byte encoders and the weight readers all build one array from parts. */

/** Writes the parts one after another into `out` (as long as the parts together) and returns it. */
export function joinInto<T extends Uint8Array | Int32Array | Float32Array>(
  out: T,
  parts: readonly ArrayLike<number>[],
): T {
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** The parts' bytes in one new array. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  return joinInto(new Uint8Array(totalLength(parts)), parts);
}

/** The parts' values in one new float32 array. */
export function concatFloat32(parts: readonly Float32Array[]): Float32Array {
  return joinInto(new Float32Array(totalLength(parts)), parts);
}

function totalLength(parts: readonly ArrayLike<number>[]): number {
  return parts.reduce((sum, part) => sum + part.length, 0);
}
