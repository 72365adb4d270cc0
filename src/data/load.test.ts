import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeIdx } from './idx.js';
import { loadDatasetSpec } from './load.js';

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-load-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** 50 rows: id, two features, a string label; a constant feature checks std-0 handling. */
function sensorCsv(): string {
  const lines = ['device,temp,vib,const,status'];
  for (let i = 0; i < 50; i++)
    lines.push(`d${i % 5},${20 + (i % 7)},${(i * 37) % 11},3,${i % 3 === 0 ? 'fault' : 'ok'}`);
  return lines.join('\n') + '\n';
}

test('csv spec: seeded hold-out from file contents, standardized with train stats', () => {
  withDir((dir) => {
    const p = join(dir, 'sensors.csv');
    writeFileSync(p, sensorCsv());
    const a = loadDatasetSpec(`csv:${p}?keep=device`);
    assert.equal(a.train.n, 40);
    assert.equal(a.test.n, 10);
    assert.deepEqual(a.train.columns, ['temp', 'vib', 'const']);
    assert.deepEqual(a.classNames, ['fault', 'ok']);
    assert.equal(a.train.numClasses, 2);
    assert.equal(a.train.source, `${p}#train`);
    assert.equal(a.test.source, `${p}#test`);
    assert.equal(a.train.extra!.device.length, 40);
    assert.match(a.description, /40 train \/ 10 test, features \[3\], 2 classes; class label 'status'/);
    // Train features have mean ~0; the constant column is 0 everywhere, not NaN.
    const f = 3;
    for (let j = 0; j < f; j++) {
      let s = 0;
      for (let r = 0; r < a.train.n; r++) s += a.train.x[r * f + j];
      assert.ok(Math.abs(s / a.train.n) < 1e-5, `feature ${j} mean`);
    }
    assert.ok(a.test.x.every((v) => Number.isFinite(v)));
    assert.equal(a.standardization!.std[2], 0);
    // Same file => same test set, independent of anything else.
    const b = loadDatasetSpec(`csv:${p}?keep=device`);
    assert.deepEqual(a.test.x, b.test.x);
    assert.deepEqual(a.test.extra, b.test.extra);
    // Changed contents => a different hold-out.
    writeFileSync(p, sensorCsv() + 'd9,21,4,3,ok\n');
    const c = loadDatasetSpec(`csv:${p}?keep=device`);
    assert.equal(c.train.n + c.test.n, 51);
    assert.notDeepEqual(a.test.extra, c.test.extra);
  });
});

test('csv spec options: label, test fraction, task', () => {
  withDir((dir) => {
    const p = join(dir, 'r.csv');
    writeFileSync(p, sensorCsv());
    const d = loadDatasetSpec(`csv:${p}?label=temp&test=0.5&keep=device,status&task=regression`);
    assert.equal(d.train.n, 25);
    assert.equal(d.test.n, 25);
    assert.equal(d.train.numClasses, 0);
    assert.ok(d.train.y instanceof Float32Array);
    assert.deepEqual(d.train.columns, ['vib', 'const']);
    assert.match(d.description, /regression; regression target 'temp'/);
    assert.throws(() => loadDatasetSpec(`csv:${p}?test=1`), /test must be a fraction in \(0, 1\), got '1'/);
    assert.throws(() => loadDatasetSpec(`csv:${p}?test=`), /test must be a fraction/);
    assert.throws(
      () => loadDatasetSpec(`csv:${p}?task=maybe`),
      /task must be classification or regression, got 'maybe'/,
    );
    assert.throws(
      () => loadDatasetSpec(`csv:${p}?lable=x`),
      /unknown option 'lable' \(accepted: label, test, keep, task, window, horizon, target, key\)/,
    );
    assert.throws(() => loadDatasetSpec(`csv:${p}?label=nope`), /r\.csv: label column 'nope' not found/);
    writeFileSync(p, 'a,b\n1,0\n');
    assert.throws(
      () => loadDatasetSpec(`csv:${p}`),
      /r\.csv: 1 data rows are too few to hold out a test fraction of 0.2/,
    );
    assert.throws(() => loadDatasetSpec(`csv:${join(dir, 'none.csv')}`), /none\.csv: cannot read CSV file/);
  });
});

test('idx spec loads a directory', () => {
  withDir((dir) => {
    writeFileSync(join(dir, 'train-images-idx3-ubyte'), writeIdx([2, 1, 2], 'uint8', [0, 255, 255, 0]));
    writeFileSync(join(dir, 'train-labels-idx1-ubyte'), writeIdx([2], 'uint8', [0, 1]));
    writeFileSync(join(dir, 't10k-images-idx3-ubyte'), writeIdx([1, 1, 2], 'uint8', [0, 0]));
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), writeIdx([1], 'uint8', [1]));
    const d = loadDatasetSpec(`idx:${dir}`);
    assert.equal(d.train.n, 2);
    assert.deepEqual(d.train.featureShape, [1, 2, 1]);
    assert.match(d.description, /^IDX .*: 2 train \/ 1 test, features \[1, 2, 1\], 2 classes$/);
  });
});

test('unknown or incomplete specs list the accepted forms', () => {
  for (const spec of ['', 'cifar', 'idx:', 'csv:', 'http://x', 'MNIST']) {
    assert.throws(
      () => loadDatasetSpec(spec),
      /unknown dataset spec '.*'; accepted forms: mnist \| fashion-mnist \| idx:DIR \| csv:FILE\[\?label=COL&test=0\.2&keep=a,b&task=classification\|regression\]/,
    );
  }
});

test('mnist spec', () => {
  const d = loadDatasetSpec('mnist');
  assert.equal(d.train.n, 60000);
  assert.equal(d.test.n, 10000);
  assert.equal(d.description, 'MNIST: 60000 train / 10000 test, features [28, 28, 1], 10 classes');
});
