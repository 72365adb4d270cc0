import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeSlice, encodeSlice, SLICE_HEADER_BYTES } from './slice.js';
import type { Dataset } from './types.js';

function images(n: number, seed: number): Dataset {
  return {
    source: `img${seed}`,
    n,
    featureShape: [2, 3, 1],
    numClasses: 4,
    x: Float32Array.from({ length: n * 6 }, (_, i) => ((i * 31 + seed) % 17) / 16),
    y: Int32Array.from({ length: n }, (_, i) => (i + seed) % 4),
  };
}

test('a slice round-trips its train and test splits exactly, including an empty test split', () => {
  for (const [nTrain, nTest] of [
    [5, 3],
    [7, 0],
  ]) {
    const train = images(nTrain, 1);
    const test = images(nTest, 2);
    const bytes = encodeSlice({ train, test });
    assert.equal(bytes.byteLength, SLICE_HEADER_BYTES + 4 * (nTrain * 7 + nTest * 7));
    const back = decodeSlice(bytes.buffer, 's');
    for (const [got, want] of [
      [back.train, train],
      [back.test, test],
    ] as const) {
      assert.equal(got.n, want.n);
      assert.deepEqual(got.featureShape, want.featureShape);
      assert.equal(got.numClasses, 4);
      assert.deepEqual(got.x, want.x);
      assert.deepEqual(got.y, want.y);
    }
  }
});

test('decodeSlice names what is wrong with a malformed file', () => {
  const good = encodeSlice({ train: images(4, 1), test: images(2, 2) });
  assert.throws(() => decodeSlice(new ArrayBuffer(10), 'f'), /^Error: f: 10 bytes is too short for the header/);
  const magic = good.slice();
  magic[0] ^= 0xff;
  assert.throws(() => decodeSlice(magic.buffer, 'f'), /f: bad magic/);
  const version = good.slice();
  new Uint32Array(version.buffer, 0, 8)[1] = 9;
  assert.throws(() => decodeSlice(version.buffer, 'f'), /f: version 9, expected 1/);
  assert.throws(
    () => decodeSlice(good.slice(0, good.byteLength - 4).buffer, 'f'),
    /f: \d+ bytes, the header implies \d+/,
  );
  const count = good.slice();
  new Uint32Array(count.buffer, 0, 8)[2] = 1e6;
  assert.throws(() => decodeSlice(count.buffer, 'f'), /the header implies/);
  assert.throws(
    () => encodeSlice({ train: { ...images(2, 1), featureShape: [6] }, test: images(1, 2) }),
    /need image data/,
  );
  assert.throws(
    () => encodeSlice({ train: { ...images(2, 1), y: new Float32Array(2) }, test: images(1, 2) }),
    /needs class labels/,
  );
});
