import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Dataset } from '../data/types.js';
import { subset } from '../data/types.js';
import { partition } from '../core/partition.js';
import { Rng } from '../core/rng.js';
import { contiguousStart, rowsView, shareDataset, sharePartitioned } from './shared-data.js';
import { localData } from './sim-host.js';

function toy(n: number, f: number): Dataset {
  const rng = new Rng(7);
  const x = Float32Array.from({ length: n * f }, () => rng.next());
  const y = Int32Array.from({ length: n }, (_, i) => (i * 7) % 10);
  return { source: 'toy', n, featureShape: [f], x, y, numClasses: 10 };
}

const bytes = (d: Dataset) => [
  Buffer.from(d.x.buffer, d.x.byteOffset, d.x.byteLength),
  Buffer.from(d.y.buffer, d.y.byteOffset, d.y.byteLength),
];

test('every node gets the same bytes from the partition-ordered shared dataset (as views) as from a copy', () => {
  const d = toy(300, 5);
  // Disjoint parts of uneven sizes, one empty, rows out of order, one row in no part.
  const order = new Rng(4).permutation(300);
  const sizes = [50, 0, 80, 1, 69, 60, 39];
  let at = 0;
  const parts = sizes.map((s) => order.slice(at, (at += s)));
  const shared = sharePartitioned(d, parts);
  assert.ok(shared.data.x.buffer instanceof SharedArrayBuffer);
  for (let k = 0; k < parts.length; k++) {
    for (const vf of [0, 0.25]) {
      const fromView = localData(shared.data, shared.parts[k], k, vf, 1);
      const fromCopy = localData(d, parts[k], k, vf, 1);
      assert.deepEqual(bytes(fromView.train), bytes(fromCopy.train), `node ${k} train, validation ${vf}`);
      assert.deepEqual(bytes(fromView.validation), bytes(fromCopy.validation), `node ${k} validation ${vf}`);
      assert.equal(fromView.train.source, fromCopy.train.source);
    }
    if (sizes[k] > 0)
      assert.equal(localData(shared.data, shared.parts[k], k, 0, 1).train.x.buffer, shared.data.x.buffer);
  }
});

test('parts that repeat rows keep the plain shared copy (the reordered one would be larger)', () => {
  const d = toy(20, 3);
  const parts = [Int32Array.of(0, 1, 2, 3), Int32Array.of(3, 4, 5), Int32Array.from({ length: 14 }, (_, i) => i + 6)];
  const shared = sharePartitioned(d, parts);
  assert.equal(shared.parts, parts);
  assert.deepEqual(bytes(shared.data), bytes(shareDataset(d)));
});

test('contiguousStart and rowsView', () => {
  assert.equal(contiguousStart(Int32Array.of(4, 5, 6)), 4);
  assert.equal(contiguousStart(Int32Array.of(4, 6)), -1);
  assert.equal(contiguousStart(Int32Array.of(5, 4)), -1);
  assert.equal(contiguousStart([]), -1);
  const d = toy(10, 2);
  assert.deepEqual(bytes(rowsView(d, 3, 4, 'v')), bytes(subset(d, [3, 4, 5, 6])));
  assert.throws(
    () => rowsView({ ...d, extra: { id: Array.from({ length: 10 }, (_, i) => i) } }, 0, 2, 'v'),
    /extra columns/,
  );
});

test('a real partition (shards) round-trips through sharePartitioned', () => {
  const d = toy(400, 4);
  const parts = partition({ kind: 'shards', shardsPerNode: 2 }, { labels: d.y, numClasses: 10 }, 10, new Rng(1));
  const shared = sharePartitioned(d, parts);
  for (let k = 0; k < 10; k++)
    assert.deepEqual(bytes(localData(shared.data, shared.parts[k], k, 0, 1).train), bytes(subset(d, parts[k])));
});
