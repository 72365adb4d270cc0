import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadDatasetSpec } from './load.js';

test('fashion-mnist: 60,000 / 10,000 images of [28, 28, 1] in [0, 1], 10 classes interleaved, no image in both', () => {
  const d = loadDatasetSpec('fashion-mnist');
  assert.equal(d.train.n, 60000);
  assert.equal(d.test.n, 10000);
  assert.deepEqual(d.train.featureShape, [28, 28, 1]);
  assert.match(d.description, /^Fashion-MNIST: 60000 train \/ 10000 test/);
  assert.deepEqual(Array.from(d.train.y.subarray(0, 12)), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
  const counts = new Array(10).fill(0);
  for (const v of d.test.y) counts[v]++;
  assert.deepEqual(counts, new Array(10).fill(1000));
  let min = Infinity,
    max = -Infinity;
  for (const v of d.train.x) {
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  assert.equal(min, 0);
  assert.equal(max, 1);
  // the first test image of class 0 is not the first training image of class 0
  assert.notDeepEqual(d.test.x.subarray(0, 784), d.train.x.subarray(0, 784));
});
