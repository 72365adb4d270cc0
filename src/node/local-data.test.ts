import { test } from 'node:test';
import assert from 'node:assert/strict';
import { csvLocalData, holdOutValidation, parseShardSpec } from './local-data.js';
import { standardizeStats } from '../data/split.js';

test('parseShardSpec reads I/N[:PARTITION] and refuses anything else', () => {
  assert.deepEqual(parseShardSpec('0/10', 'shard'), { index: 0, count: 10, partition: 'iid' });
  assert.deepEqual(parseShardSpec('3/10:dirichlet:0.5', 'shard'), { index: 3, count: 10, partition: 'dirichlet:0.5' });
  for (const bad of ['', '1', '1/', '/2', 'a/b', '-1/3', '1.5/3', ' 1/3'])
    assert.throws(() => parseShardSpec(bad, 'shard'), /^Error: shard: expected I\/N/, bad);
  for (const bad of ['3/3', '0/0', '9/2']) assert.throws(() => parseShardSpec(bad, 'shard'), /need 0 <= I < N/, bad);
});

test('csvLocalData parses, standardizes and holds out 20% seeded by the node name', () => {
  const rows = Array.from({ length: 50 }, (_, i) => `${i},${(i * 7) % 13},${i % 2 === 0 ? 'ok' : 'fault'}`);
  const text = `a,b,status\n${rows.join('\n')}\n`;
  const d = csvLocalData(text, 'sensors.csv', 'tab-1');
  assert.equal(d.train.n, 40);
  assert.equal(d.validation.n, 10);
  assert.equal(d.train.numClasses, 2);
  assert.deepEqual(d.train.featureShape, [2]);
  // Standardized over all rows: the 50 rows together have mean 0 and unit deviation per feature.
  const all = { ...d.train, n: 50, x: Float32Array.from([...d.train.x, ...d.validation.x]) };
  const { mean, std } = standardizeStats(all);
  for (const m of mean) assert.ok(Math.abs(m) < 1e-5, `mean ${m}`);
  for (const s of std) assert.ok(Math.abs(s - 1) < 1e-4, `std ${s}`);
  // Same name, same split; another name, another split.
  assert.deepEqual(csvLocalData(text, 'sensors.csv', 'tab-1').validation.y, d.validation.y);
  assert.notDeepEqual(csvLocalData(text, 'sensors.csv', 'tab-2').validation.x, d.validation.x);
  assert.deepEqual(
    csvLocalData(text, 'sensors.csv', 'tab-1', { label: 'a', keep: ['status'] }).train.featureShape,
    [1],
  );
});

test('csvLocalData names the file and line of a malformed CSV', () => {
  assert.throws(
    () => csvLocalData('a,b,c\n1,2,x\n3,4\n', 'mine.csv', 'n'),
    /^Error: mine\.csv line 3: expected 3 fields/,
  );
  assert.throws(() => csvLocalData('a,b\n1,2\n', 'mine.csv', 'n', { label: 'zzz' }), /mine\.csv.*zzz/);
});

test('holdOutValidation with fraction 0 keeps every row for training', () => {
  const d = csvLocalData('a,b\n1,0\n2,1\n3,0\n4,1\n5,0\n', 'f.csv', 'n');
  const all = holdOutValidation(d.train, 'n', 0);
  assert.equal(all.train.n, d.train.n);
  assert.equal(all.validation.n, 0);
});

test("scaledWith: the same rows in the same split, scaled with a run's statistics; other columns refused", () => {
  const rows = Array.from({ length: 30 }, (_, i) => `${i},${(i * 5) % 11},${i % 3}`);
  const text = `a,b,label\n${rows.join('\n')}\n`;
  const own = csvLocalData(text, 'pump.csv', 'pump-1');
  const stats = { columns: ['a', 'b'], mean: [100, -2], std: [4, 0] };
  const run = own.scaledWith!(stats);
  assert.equal(run.raw, own.raw);
  assert.deepEqual(run.validation.y, own.validation.y);
  // Naive reference: each raw row of the validation split, (x - mean) / std (std 0: only centred).
  const raw = own.raw!;
  const rowOfA = new Map(Array.from({ length: raw.n }, (_, r) => [raw.x[r * 2], r]));
  for (let k = 0; k < run.validation.n; k++) {
    const a = run.validation.x[k * 2] * 4 + 100;
    const r = rowOfA.get(Math.round(a))!; // column a is the row number: unique
    assert.ok(Math.abs(run.validation.x[k * 2] - (raw.x[r * 2] - 100) / 4) < 1e-6);
    assert.ok(Math.abs(run.validation.x[k * 2 + 1] - (raw.x[r * 2 + 1] + 2)) < 1e-6);
  }
  assert.throws(
    () => own.scaledWith!({ ...stats, columns: ['a', 'c'] }),
    /the run scales the feature columns a, c; this node's CSV .* has a, b: give the node a file/,
  );
});
