/** A float32 vector in a checkpoint's JSON extra state, as base64 (bit-exact), and back with its length checked. */
export function vectorToBase64(v: Float32Array): string {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
}

export function vectorFromBase64(text: unknown, length: number, what: string): Float32Array {
  if (typeof text !== 'string') throw new Error(`${what}: the checkpoint's extra state has no base64 vector`);
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== length * 4) {
    throw new Error(
      `${what}: the checkpoint holds ${bytes.length} bytes, a model of ${length} values needs ${length * 4}`,
    );
  }
  const out = new Float32Array(length);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}
