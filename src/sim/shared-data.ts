/** Datasets in SharedArrayBuffers, so every simulation worker reads the same memory instead of a copy. */
import type { Dataset } from '../data/types.js';

export function shareDataset(d: Dataset): Dataset {
  const x = new Float32Array(new SharedArrayBuffer(d.x.byteLength));
  x.set(d.x);
  const y =
    d.y instanceof Int32Array
      ? new Int32Array(new SharedArrayBuffer(d.y.byteLength))
      : new Float32Array(new SharedArrayBuffer(d.y.byteLength));
  y.set(d.y);
  return { ...d, x, y };
}
