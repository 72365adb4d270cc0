/** Datasets in SharedArrayBuffers, so every simulation worker reads the same memory instead of a copy. */
import type { Dataset } from '../data/types.js';
import { featureSize } from '../data/types.js';

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

/**
 * The dataset shared with its rows in partition order (node 0's rows, then node 1's, ...) and each part
 * renumbered to its contiguous range, so a worker takes a node's data as a view (contiguousRows) instead of
 * copying it. Row i of every node's data is the same example as before: results do not change. Falls back to
 * shareDataset when the parts hold more rows than the dataset (an example given to several nodes), where the
 * reordered copy would be larger than the original.
 */
export function sharePartitioned(d: Dataset, parts: Int32Array[]): { data: Dataset; parts: Int32Array[] } {
  const total = parts.reduce((a, p) => a + p.length, 0);
  if (total > d.n || d.extra) return { data: shareDataset(d), parts };
  const f = featureSize(d);
  const x = new Float32Array(new SharedArrayBuffer(total * f * 4));
  const y =
    d.y instanceof Int32Array
      ? new Int32Array(new SharedArrayBuffer(total * 4))
      : new Float32Array(new SharedArrayBuffer(total * 4));
  const renumbered: Int32Array[] = [];
  let at = 0;
  for (const rows of parts) {
    const mine = new Int32Array(rows.length);
    for (let i = 0; i < rows.length; i++, at++) {
      const r = rows[i];
      x.set(d.x.subarray(r * f, (r + 1) * f), at * f);
      y[at] = d.y[r];
      mine[i] = at;
    }
    renumbered.push(mine);
  }
  return { data: { ...d, n: total, x, y }, parts: renumbered };
}

/** The first row when rows are start, start+1, ..., start+len-1 (a view can stand for them), else -1. */
export function contiguousStart(rows: ArrayLike<number>): number {
  if (rows.length === 0) return -1;
  const start = rows[0];
  for (let i = 1; i < rows.length; i++) if (rows[i] !== start + i) return -1;
  return start;
}

/** The dataset's rows start..start+len as views on the same memory (no copy); for datasets without extra columns. */
export function rowsView(d: Dataset, start: number, len: number, source: string): Dataset {
  if (d.extra) throw new Error(`rowsView: ${d.source} has extra columns, which a view does not carry`);
  const f = featureSize(d);
  return { ...d, source, n: len, x: d.x.subarray(start * f, (start + len) * f), y: d.y.subarray(start, start + len) };
}
