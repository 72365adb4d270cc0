import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../core/rng.js';
import type { Dataset } from './types.js';
import { applyStandardize, minMaxScale, standardize, trainValidationSplit } from './split.js';

/** n examples of 2 features; x = [i, 10 * i], y = i so rows can be identified after shuffling. */
function toy(n: number): Dataset {
  const x = new Float32Array(n * 2);
  for (let i = 0; i < n; i++) {
    x[2 * i] = i;
    x[2 * i + 1] = 10 * i;
  }
  return {
    source: 'toy',
    n,
    featureShape: [2],
    x,
    y: Int32Array.from({ length: n }, (_, i) => i),
    numClasses: n,
    extra: { id: Array.from({ length: n }, (_, i) => `r${i}`) },
  };
}

test('trainValidationSplit: sizes, disjoint, covering, rows intact', () => {
  const d = toy(100);
  const { train, validation } = trainValidationSplit(d, 0.25, new Rng(1));
  assert.equal(train.n, 75);
  assert.equal(validation.n, 25);
  const all = [...train.y, ...validation.y].sort((a, b) => a - b);
  assert.deepEqual(
    all,
    Array.from({ length: 100 }, (_, i) => i),
  );
  const valSet = new Set(validation.y);
  assert.ok(
    train.y.every((v) => !valSet.has(v)),
    'disjoint',
  );
  for (const s of [train, validation]) {
    for (let i = 0; i < s.n; i++) {
      assert.equal(s.x[2 * i], s.y[i]);
      assert.equal(s.x[2 * i + 1], 10 * s.y[i]);
      assert.equal(s.extra!.id[i], `r${s.y[i]}`);
    }
  }
  assert.equal(train.source, 'toy#train');
  assert.equal(validation.source, 'toy#validation');
  // Shuffled, not just cut.
  assert.notDeepEqual(
    Array.from(validation.y),
    Array.from({ length: 25 }, (_, i) => i),
  );
});

test('trainValidationSplit: same seed gives the same split, another seed a different one', () => {
  const d = toy(50);
  const a = trainValidationSplit(d, 0.2, new Rng(7));
  const b = trainValidationSplit(d, 0.2, new Rng(7));
  const c = trainValidationSplit(d, 0.2, new Rng(8));
  assert.deepEqual(a.validation.y, b.validation.y);
  assert.deepEqual(a.train.x, b.train.x);
  assert.notDeepEqual(a.validation.y, c.validation.y);
});

test('trainValidationSplit: fraction 0, rounding, tiny sets, bad fractions', () => {
  const z = trainValidationSplit(toy(10), 0, new Rng(1));
  assert.equal(z.train.n, 10);
  assert.equal(z.validation.n, 0);
  assert.equal(trainValidationSplit(toy(10), 0.25, new Rng(1)).validation.n, 3);
  // A fraction below 1 never leaves train empty.
  const one = trainValidationSplit(toy(1), 0.9, new Rng(1));
  assert.equal(one.train.n, 1);
  assert.equal(one.validation.n, 0);
  assert.equal(trainValidationSplit(toy(0), 0.5, new Rng(1)).train.n, 0);
  for (const f of [1, -0.1, 1.5, NaN]) {
    assert.throws(() => trainValidationSplit(toy(10), f, new Rng(1)), /validation fraction must be in \[0, 1\)/);
  }
});

test('standardize: statistics from train only, applied to others; constant columns centred', () => {
  const train: Dataset = {
    source: 'tr',
    n: 4,
    featureShape: [2],
    x: Float32Array.from([1, 5, 2, 5, 3, 5, 4, 5]),
    y: new Int32Array(4),
    numClasses: 1,
  };
  const other: Dataset = { ...train, source: 'te', n: 2, x: Float32Array.from([2.5, 7, 100, 5]), y: new Int32Array(2) };
  const { train: t, others, stats } = standardize(train, other);
  assert.deepEqual(stats.mean, [2.5, 5]);
  assert.equal(stats.std[1], 0);
  assert.ok(Math.abs(stats.std[0] - Math.sqrt(1.25)) < 1e-12);
  // Train becomes mean 0 / std 1 in the varying column.
  const col0 = [0, 2, 4, 6].map((i) => t.x[i]);
  assert.ok(Math.abs(col0.reduce((a, b) => a + b, 0)) < 1e-6);
  assert.ok(Math.abs(col0.reduce((a, b) => a + b * b, 0) / 4 - 1) < 1e-6);
  assert.deepEqual(
    [1, 3, 5, 7].map((i) => t.x[i]),
    [0, 0, 0, 0],
  );
  // The other set uses train's stats: its own mean would have made 2.5 nonzero.
  const standardizedOther = others[0];
  assert.equal(standardizedOther.x[0], 0);
  assert.ok(Math.abs(standardizedOther.x[2] - (100 - 2.5) / Math.sqrt(1.25)) < 1e-4);
  assert.equal(standardizedOther.x[1], 2, 'constant column: centred, not divided');
  assert.equal(standardizedOther.source, 'te');
  // Inputs are untouched.
  assert.equal(train.x[0], 1);
  assert.deepEqual(applyStandardize(other, stats).x, standardizedOther.x);
});

test('standardize and minMaxScale reject empty train and mismatched features', () => {
  const empty: Dataset = {
    source: 'e',
    n: 0,
    featureShape: [2],
    x: new Float32Array(0),
    y: new Int32Array(0),
    numClasses: 0,
  };
  assert.throws(() => standardize(empty), /e: cannot compute standardization statistics of an empty dataset/);
  const three: Dataset = {
    source: 'three',
    n: 1,
    featureShape: [3],
    x: new Float32Array(3),
    y: new Int32Array(1),
    numClasses: 1,
  };
  assert.throws(
    () => standardize(toy(3), three),
    /three: has 3 features per example but the scaling statistics cover 2/,
  );
  assert.throws(() => minMaxScale(toy(3), three), /three: has 3 features/);
});

test('minMaxScale: train maps to [0, 1] per feature using train min/max only', () => {
  const train = toy(5);
  const other: Dataset = { ...toy(1), x: Float32Array.from([8, 20]) };
  const { train: t, others, stats } = minMaxScale(train, other);
  assert.deepEqual(stats, { min: [0, 0], max: [4, 40] });
  assert.deepEqual(Array.from(t.x), [0, 0, 0.25, 0.25, 0.5, 0.5, 0.75, 0.75, 1, 1]);
  assert.deepEqual(Array.from(others[0].x), [2, 0.5]);
});
