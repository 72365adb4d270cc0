import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCsv, splitCsvRecords } from './csv.js';
import { loadCsv } from './load.js';

function throwsMsg(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Error);
    assert.match(e.message, re);
    return true;
  });
}

test('happy path: numeric features, integer labels, last column is the label', () => {
  const d = parseCsv('temp,hum,label\n20.5,0.3,1\n-1e2,.5,0\n3,4,2\n', 'data.csv');
  assert.equal(d.n, 3);
  assert.deepEqual(d.featureShape, [2]);
  assert.deepEqual(d.columns, ['temp', 'hum']);
  assert.deepEqual(Array.from(d.x), [20.5, 0.3, -100, 0.5, 3, 4].map(Math.fround));
  assert.ok(d.y instanceof Int32Array);
  assert.deepEqual(Array.from(d.y), [1, 0, 2]);
  assert.equal(d.numClasses, 3);
  assert.equal(d.task, 'classification');
  assert.equal(d.labelColumn, 'label');
  assert.equal(d.classNames, undefined);
  assert.equal(d.extra, undefined);
  assert.equal(d.source, 'data.csv');
});

test('label option, keep columns go to extra, CRLF, blank lines, BOM, no trailing newline', () => {
  const text = '\ufeffdevice,y,a,b\r\n\r\ndev-1,0,1,2\r\n  \r\n"dev,2",1,3,4\r\ndev-1,1,5,6';
  const d = parseCsv(text, 'x.csv', { label: 'y', keep: ['device'] });
  assert.deepEqual(d.columns, ['a', 'b']);
  assert.deepEqual(Array.from(d.x), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(Array.from(d.y), [0, 1, 1]);
  assert.deepEqual(d.extra, { device: ['dev-1', 'dev,2', 'dev-1'] });
});

test('quoted fields: commas, doubled quotes, newlines inside quotes, quoted numbers', () => {
  const recs = splitCsvRecords('a,b\n"x, ""y""",2\n"multi\nline",3\n"",4\n', 'q.csv');
  assert.deepEqual(recs, [
    { line: 1, fields: ['a', 'b'] },
    { line: 2, fields: ['x, "y"', '2'] },
    { line: 3, fields: ['multi\nline', '3'] },
    { line: 5, fields: ['', '4'] },
  ]);
  const d = parseCsv('"f 1","label"\n"1.5","a,b"\n"2","c""d"\n', 'q.csv');
  assert.deepEqual(Array.from(d.x), [1.5, 2]);
  assert.deepEqual(d.classNames, ['a,b', 'c"d']);
  // Line numbers after a multi-line quoted field stay physical.
  throwsMsg(
    () => parseCsv('name,v\n"a\nb",1\nc,zz\n', 'q.csv', { label: 'name' }),
    /^q\.csv line 4: column 'v' value 'zz' is not a number$/,
  );
});

test('string labels map to class indices in sorted order with classNames', () => {
  const d = parseCsv('t,state\n1,ok\n2,fault\n3,ok\n4, warn \n', 's.csv');
  assert.deepEqual(d.classNames, ['fault', 'ok', 'warn']);
  assert.deepEqual(Array.from(d.y), [1, 0, 1, 2]);
  assert.equal(d.numClasses, 3);
  assert.equal(d.task, 'classification');
});

test('task detection: non-integer or negative or many distinct values => regression', () => {
  const reg = parseCsv('a,y\n1,0.5\n2,1.25\n', 'r.csv');
  assert.equal(reg.task, 'regression');
  assert.ok(reg.y instanceof Float32Array);
  assert.equal(reg.numClasses, 0);
  assert.deepEqual(Array.from(reg.y), [0.5, 1.25]);
  assert.equal(parseCsv('a,y\n1,-1\n2,1\n', 'r.csv').task, 'regression');
  const many = 'a,y\n' + Array.from({ length: 101 }, (_, i) => `${i},${i}`).join('\n');
  assert.equal(parseCsv(many, 'r.csv').task, 'regression');
  const hundred = 'a,y\n' + Array.from({ length: 100 }, (_, i) => `${i},${i}`).join('\n');
  const c = parseCsv(hundred, 'r.csv');
  assert.equal(c.task, 'classification');
  assert.equal(c.numClasses, 100);
});

test('explicit task overrides detection', () => {
  const r = parseCsv('a,y\n1,0\n2,1\n', 'r.csv', { task: 'regression' });
  assert.equal(r.task, 'regression');
  assert.equal(r.numClasses, 0);
  const c = parseCsv('a,y\n1,-1\n2,1\n3,-1\n', 'c.csv', { task: 'classification' });
  assert.deepEqual(c.classNames, ['-1', '1']);
  assert.deepEqual(Array.from(c.y), [0, 1, 0]);
  // Sparse large integer classes are made dense rather than giving the model 40001 outputs.
  const s = parseCsv('a,y\n1,40000\n2,7\n', 's.csv', { task: 'classification' });
  assert.equal(s.numClasses, 2);
  assert.deepEqual(s.classNames, ['7', '40000']);
  throwsMsg(
    () => parseCsv('a,y\n1,ok\n', 'r.csv', { task: 'regression' }),
    /^r\.csv line 2: label column 'y' value 'ok' is not a number \(task is regression\)$/,
  );
  throwsMsg(
    () => parseCsv('a,y\n1,2\n', 'r.csv', { task: 'bogus' as 'regression' }),
    /r\.csv: task must be 'classification' or 'regression'/,
  );
});

test('feature errors name the file, line and column', () => {
  const rows = Array.from({ length: 15 }, (_, i) => `${i},1,0`);
  const text = ['id,temp,label', ...rows, '15,abc,1'].join('\n');
  throwsMsg(() => parseCsv(text, 'data.csv'), /^data\.csv line 17: column 'temp' value 'abc' is not a number$/);
  throwsMsg(() => parseCsv('a,b\n,1\n', 'e.csv'), /^e\.csv line 2: column 'a' value '' is empty/);
  throwsMsg(() => parseCsv('a,b\nNaN,1\n', 'e.csv'), /^e\.csv line 2: column 'a' value 'NaN' is not a number$/);
  throwsMsg(() => parseCsv('a,b\nInfinity,1\n', 'e.csv'), /line 2: column 'a' value 'Infinity' is not a number/);
  throwsMsg(() => parseCsv('a,b\n1e999,1\n', 'e.csv'), /line 2: column 'a' value '1e999' is out of float32 range/);
  throwsMsg(() => parseCsv('a,b\n0x1f,1\n', 'e.csv'), /line 2: column 'a' value '0x1f' is not a number/);
  throwsMsg(
    () => parseCsv('a,b,c\n1,2,0\n1,"x y",0\n', 'e.csv'),
    /^e\.csv line 3: column 'b' value 'x y' is not a number$/,
  );
});

test('structural errors: field counts, quotes, header problems, empty files', () => {
  throwsMsg(
    () => parseCsv('a,b,c\n1,2,3\n\n1,2\n', 'f.csv'),
    /^f\.csv line 4: expected 3 fields as in the header, found 2$/,
  );
  throwsMsg(() => parseCsv('a,b\n1,2,3\n', 'f.csv'), /^f\.csv line 2: expected 2 fields as in the header, found 3$/);
  throwsMsg(() => parseCsv('a,b\n1,"2\n', 'f.csv'), /^f\.csv line 2: quoted field is never closed$/);
  throwsMsg(() => parseCsv('a,b\n1,"2"x\n', 'f.csv'), /^f\.csv line 2: unexpected character 'x' after a closing quote/);
  throwsMsg(() => parseCsv('', 'f.csv'), /^f\.csv: file is empty \(a header row is required\)$/);
  throwsMsg(() => parseCsv('\n\r\n  \n', 'f.csv'), /^f\.csv: file is empty/);
  throwsMsg(() => parseCsv('a,b\n', 'f.csv'), /^f\.csv: no data rows after the header on line 1$/);
  throwsMsg(() => parseCsv('a,a\n1,2\n', 'f.csv'), /^f\.csv line 1: column name 'a' appears twice/);
  throwsMsg(() => parseCsv('a,,b\n1,2,3\n', 'f.csv'), /^f\.csv line 1: header column 2 has no name/);
  throwsMsg(
    () => parseCsv('a,b\n1,2\n', 'f.csv', { label: 'y' }),
    /^f\.csv: label column 'y' not found; columns are 'a', 'b'$/,
  );
  throwsMsg(
    () => parseCsv('a,b\n1,2\n', 'f.csv', { keep: ['z'] }),
    /^f\.csv: keep column 'z' not found; columns are 'a', 'b'$/,
  );
  throwsMsg(() => parseCsv('a,b\n1,2\n', 'f.csv', { keep: ['b'] }), /cannot be both the label and a kept column/);
  throwsMsg(() => parseCsv('a,b\n1,2\n', 'f.csv', { keep: ['a'] }), /no feature columns left/);
  throwsMsg(() => parseCsv('a,b\n1,ok\n2,\n', 'f.csv'), /^f\.csv line 3: label column 'b' is empty$/);
});

test('loadCsv reads a file and names its path in errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-csv-'));
  try {
    const p = join(dir, 'sensors.csv');
    writeFileSync(p, 'x1,x2,status\n1,2,ok\n3,4,fault\n');
    const d = loadCsv(p);
    assert.equal(d.source, p);
    assert.deepEqual(d.classNames, ['fault', 'ok']);
    writeFileSync(p, 'x1,x2,status\n1,2,ok\n3,4\n');
    throwsMsg(() => loadCsv(p), /sensors\.csv line 3: expected 3 fields/);
    throwsMsg(() => loadCsv(join(dir, 'missing.csv')), /missing\.csv: cannot read CSV file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
