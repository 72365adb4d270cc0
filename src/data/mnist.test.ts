import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadMnist, mnistDir } from './mnist.js';

test('mnistDir holds the four IDX files', () => {
  for (const f of [
    'train-images-idx3-ubyte',
    'train-labels-idx1-ubyte',
    't10k-images-idx3-ubyte',
    't10k-labels-idx1-ubyte',
  ]) {
    assert.ok(existsSync(join(mnistDir(), f)), f);
  }
});

test('loadMnist: 60000/10000 examples, [28,28,1], labels 0..9, values in [0,1]', () => {
  const t0 = performance.now();
  const { train, test: te } = loadMnist();
  const ms = performance.now() - t0;
  assert.equal(train.n, 60000);
  assert.equal(te.n, 10000);
  assert.equal(train.source, 'mnist:train');
  assert.equal(te.source, 'mnist:test');
  for (const d of [train, te]) {
    assert.deepEqual(d.featureShape, [28, 28, 1]);
    assert.equal(d.x.length, d.n * 784);
    assert.ok(d.y instanceof Int32Array);
    assert.equal(d.numClasses, 10);
    const counts = new Array(10).fill(0);
    for (let i = 0; i < d.n; i++) counts[d.y[i]]++;
    assert.ok(
      counts.every((c) => c > 0),
      'every digit occurs',
    );
    let lo = Infinity;
    let hi = -Infinity;
    const x = d.x;
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    assert.equal(lo, 0);
    assert.equal(hi, 1);
  }
  assert.equal(train.y[0], 5);
  assert.equal(te.y[0], 7);
  // Well-known first training image: row 14 has ink in the middle.
  assert.ok(train.x[14 * 28 + 14] > 0);
  // Reported, never asserted: tests do not time the machine.
  console.log(`# loadMnist took ${ms.toFixed(0)} ms`);
});
