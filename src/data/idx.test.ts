import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { IDX_DTYPES, idxCandidateNames, loadIdxDataset, parseIdx, readIdx, writeIdx, type IdxDtype } from './idx.js';

const DTYPES = Object.keys(IDX_DTYPES) as IdxDtype[];

function header(type: number, dims: number[]): number[] {
  const out = [0, 0, type, dims.length];
  for (const d of dims) out.push((d >>> 24) & 255, (d >>> 16) & 255, (d >>> 8) & 255, d & 255);
  return out;
}

function bytes(...parts: number[][]): Uint8Array {
  return Uint8Array.from(parts.flat());
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'edgefed-idx-'));
}

test('parseIdx decodes a hand-written uint8 file', () => {
  const r = parseIdx(bytes(header(0x08, [2, 3]), [1, 2, 3, 4, 5, 255]), 'a.idx');
  assert.deepEqual(r.dims, [2, 3]);
  assert.equal(r.dtype, 'uint8');
  assert.deepEqual(r.data, Uint8Array.from([1, 2, 3, 4, 5, 255]));
});

test('parseIdx reads big-endian multi-byte values', () => {
  assert.deepEqual(parseIdx(bytes(header(0x0b, [2]), [0xff, 0xfe, 0x01, 0x02]), 'x').data, Int16Array.from([-2, 258]));
  assert.deepEqual(parseIdx(bytes(header(0x0c, [1]), [0x80, 0, 0, 0]), 'x').data, Int32Array.from([-2147483648]));
  assert.deepEqual(parseIdx(bytes(header(0x0d, [1]), [0x3f, 0x80, 0, 0]), 'x').data, Float32Array.from([1]));
  assert.deepEqual(parseIdx(bytes(header(0x0e, [1]), [0xc0, 0, 0, 0, 0, 0, 0, 0]), 'x').data, Float64Array.from([-2]));
  assert.deepEqual(parseIdx(bytes(header(0x09, [2]), [0xff, 0x7f]), 'x').data, Int8Array.from([-1, 127]));
});

test('parseIdx result does not alias the input buffer', () => {
  const b = bytes(header(0x08, [2]), [7, 8]);
  const r = parseIdx(b, 'x');
  b[8] = 99;
  assert.equal(r.data[0], 7);
});

test('parseIdx works on a subarray with an unaligned byteOffset', () => {
  const file = writeIdx([3], 'float64', [1.5, -2.25, 1e300]);
  const padded = new Uint8Array(file.length + 3);
  padded.set(file, 3);
  assert.deepEqual(parseIdx(padded.subarray(3), 'x').data, Float64Array.from([1.5, -2.25, 1e300]));
});

const malformed: [string, Uint8Array, RegExp][] = [
  ['empty', new Uint8Array(0), /^bad\.idx: too short for an IDX header \(0 bytes, need at least 4\)$/],
  ['3 bytes', bytes([0, 0, 8]), /^bad\.idx: too short for an IDX header \(3 bytes/],
  [
    'bad magic byte 0',
    bytes([0x1f, 0x8b, 8, 1], [0, 0, 0, 1], [0]),
    /^bad\.idx: bad IDX magic: first two bytes are 0x1f 0x8b, expected 0x00 0x00/,
  ],
  [
    'bad magic byte 1',
    bytes([0, 1, 8, 1], [0, 0, 0, 1], [0]),
    /^bad\.idx: bad IDX magic: first two bytes are 0x00 0x01/,
  ],
  ['unknown type', bytes([0, 0, 0x0a, 1], [0, 0, 0, 1], [0]), /^bad\.idx: unknown IDX type code 0x0a/],
  ['ndim 0', bytes([0, 0, 8, 0]), /^bad\.idx: IDX header gives 0 dimensions, expected 1 to 8$/],
  [
    'ndim 9',
    bytes(header(0x08, [1, 1, 1, 1, 1, 1, 1, 1, 1]), [0]),
    /^bad\.idx: IDX header gives 9 dimensions, expected 1 to 8$/,
  ],
  [
    'header cut short',
    bytes([0, 0, 8, 3], [0, 0, 0, 1]),
    /^bad\.idx: too short: header with 3 dimensions needs 16 bytes, file has 8$/,
  ],
  ['zero dim', bytes(header(0x08, [2, 0, 3])), /^bad\.idx: dimension 1 is 0 in dims \[2, 0, 3\]$/],
  [
    'absurd dims',
    bytes(header(0x0e, [0xffffffff, 0xffffffff]), [1, 2, 3]),
    /^bad\.idx: absurd dims \[4294967295, 4294967295\] of float64/,
  ],
  [
    'truncated',
    bytes(header(0x08, [2, 3]), [1, 2, 3, 4, 5]),
    /^bad\.idx: truncated: dims \[2, 3\] of uint8 need 18 bytes, file has 17$/,
  ],
  [
    'truncated int32',
    bytes(header(0x0c, [2]), [0, 0, 0, 1, 0, 0]),
    /^bad\.idx: truncated: dims \[2\] of int32 need 16 bytes, file has 14$/,
  ],
  [
    'trailing',
    bytes(header(0x08, [2]), [1, 2, 3, 4]),
    /^bad\.idx: 2 trailing bytes: dims \[2\] of uint8 need 10 bytes, file has 12$/,
  ],
];

for (const [what, b, re] of malformed) {
  test(`parseIdx rejects a malformed file: ${what}`, () => {
    assert.throws(
      () => parseIdx(b, 'bad.idx'),
      (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.match(e.message, re);
        assert.ok(!e.message.includes('\n'), 'message is one line');
        return true;
      },
    );
  });
}

test('readIdx names the path in errors, including a missing file', () => {
  const dir = tempDir();
  try {
    const p = join(dir, 'broken-idx1-ubyte');
    writeFileSync(p, bytes(header(0x08, [5]), [1, 2]));
    assert.throws(
      () => readIdx(p),
      (e: Error) => e.message.startsWith(`${p}: truncated: dims [5] of uint8 need 13 bytes, file has 10`),
    );
    assert.throws(() => readIdx(join(dir, 'nope')), /nope: cannot read IDX file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function valueArb(dtype: IdxDtype): fc.Arbitrary<number> {
  const range = IDX_DTYPES[dtype].range;
  if (range) return fc.integer({ min: range[0], max: range[1] });
  return dtype === 'float32' ? fc.float() : fc.double();
}

test('property: writeIdx then parseIdx returns the same dims, dtype and data for every dtype', () => {
  for (const dtype of DTYPES) {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 }).chain((dims) =>
          fc.tuple(
            fc.constant(dims),
            fc.array(valueArb(dtype), {
              minLength: dims.reduce((a, b) => a * b, 1),
              maxLength: dims.reduce((a, b) => a * b, 1),
            }),
          ),
        ),
        ([dims, values]) => {
          const r = parseIdx(writeIdx(dims, dtype, values), 'rt');
          assert.deepEqual(r.dims, dims);
          assert.equal(r.dtype, dtype);
          // Object.is semantics: NaN and -0 must survive the round trip too.
          assert.deepEqual(Array.from(r.data), values);
        },
      ),
      { numRuns: 60 },
    );
  }
});

test('property: mutated, truncated or extended files parse consistently or throw a named Error', () => {
  const valid = writeIdx([3, 2, 2], 'int16', [1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12]);
  const mutation = fc.record({
    edits: fc.array(fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
    cut: fc.integer({ min: -4, max: valid.length }),
  });
  fc.assert(
    fc.property(mutation, ({ edits, cut }) => {
      let b = valid.slice();
      for (const [i, v] of edits) b[i] = v;
      if (cut < 0) b = Uint8Array.from([...b, ...new Array(-cut).fill(0)]);
      else if (cut < b.length) b = b.slice(0, cut);
      try {
        const r = parseIdx(b, 'mut.idx');
        const count = r.dims.reduce((a, x) => a * x, 1);
        assert.equal(r.data.length, count);
        assert.equal(b.length, 4 + 4 * r.dims.length + count * IDX_DTYPES[r.dtype].bytes);
      } catch (e) {
        if (e instanceof assert.AssertionError) throw e;
        assert.ok(e instanceof Error, 'throws an Error');
        assert.match(e.message, /^mut\.idx: \S/);
        assert.ok(!e.message.includes('\n'));
      }
    }),
    { numRuns: 2000 },
  );
});

test('writeIdx rejects bad input', () => {
  assert.throws(() => writeIdx([2, 2], 'uint8', [1, 2, 3]), /dims \[2, 2\] hold 4 values but data has 3/);
  assert.throws(() => writeIdx([], 'uint8', []), /need 1 to 8 dimensions, got 0/);
  assert.throws(() => writeIdx([0], 'uint8', []), /bad dimension 0/);
  assert.throws(() => writeIdx([1], 'uint8', [256]), /value 256 at index 0 does not fit uint8/);
  assert.throws(() => writeIdx([2], 'int8', [0, 1.5]), /value 1.5 at index 1 does not fit int8/);
  assert.throws(() => writeIdx([1], 'int16', [40000]), /does not fit int16/);
  assert.throws(() => writeIdx([1], 'bogus' as IdxDtype, [1]), /unknown dtype 'bogus'/);
});

// --- loadIdxDataset on small generated directories ---

function writeSet(dir: string, files: Record<string, Uint8Array>): void {
  for (const [name, b] of Object.entries(files)) writeFileSync(join(dir, name), b);
}

function withDir(fn: (dir: string) => void): void {
  const dir = tempDir();
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('loadIdxDataset: 3-D uint8 images become [h, w, 1] in [0, 1], labels Int32, numClasses over both sets', () => {
  withDir((dir) => {
    writeSet(dir, {
      'train-images-idx3-ubyte': writeIdx([2, 2, 3], 'uint8', [0, 255, 51, 0, 0, 0, 1, 2, 3, 4, 5, 6]),
      'train-labels-idx1-ubyte': writeIdx([2], 'uint8', [1, 0]),
      't10k-images-idx3-ubyte': writeIdx([1, 2, 3], 'uint8', [255, 255, 255, 0, 0, 0]),
      't10k-labels-idx1-ubyte': writeIdx([1], 'uint8', [4]),
    });
    const { train, test: te } = loadIdxDataset(dir);
    assert.equal(train.n, 2);
    assert.deepEqual(train.featureShape, [2, 3, 1]);
    assert.ok(train.x instanceof Float32Array);
    assert.equal(train.x[1], 1);
    assert.equal(train.x[2], Math.fround(0.2));
    assert.deepEqual(train.y, Int32Array.from([1, 0]));
    assert.equal(train.numClasses, 5);
    assert.equal(te.numClasses, 5);
    assert.equal(te.n, 1);
    assert.equal(train.source, join(dir, 'train-images-idx3-ubyte'));
  });
});

test('loadIdxDataset: 4-D images, dotted names, test- prefix, float images kept as-is, int16 labels', () => {
  withDir((dir) => {
    writeSet(dir, {
      'train-images.idx4-ubyte': writeIdx([2, 1, 1, 3], 'float32', [0.5, -1, 2, 3, 4, 5]),
      'train-labels.idx1-ubyte': writeIdx([2], 'int16', [0, 2]),
      'test-images.idx4-ubyte': writeIdx([1, 1, 1, 3], 'float32', [1, 1, 1]),
      'test-labels.idx1-ubyte': writeIdx([1], 'float64', [1]),
    });
    const { train, test: te } = loadIdxDataset(dir, { trainSource: 'tr', testSource: 'te' });
    assert.deepEqual(train.featureShape, [1, 1, 3]);
    assert.deepEqual(Array.from(train.x), [0.5, -1, 2, 3, 4, 5]);
    assert.equal(train.numClasses, 3);
    assert.equal(te.source, 'te');
    assert.deepEqual(te.y, Int32Array.from([1]));
  });
});

test('loadIdxDataset: missing files error lists what was looked for', () => {
  withDir((dir) => {
    writeSet(dir, {
      'train-images-idx3-ubyte': writeIdx([1, 1, 1], 'uint8', [0]),
      'train-labels-idx1-ubyte': writeIdx([1], 'uint8', [0]),
    });
    assert.throws(
      () => loadIdxDataset(dir),
      (e: Error) => {
        assert.match(
          e.message,
          /missing test images \(looked for t10k-images-idx3-ubyte, t10k-images\.idx3-ubyte, .*test-images-idx3-ubyte/,
        );
        assert.match(e.message, /test labels \(looked for t10k-labels-idx1-ubyte/);
        assert.doesNotMatch(e.message, /train images/);
        return true;
      },
    );
  });
  assert.throws(() => loadIdxDataset(join(tmpdir(), 'edgefed-no-such-dir-xyz')), /does not exist/);
  assert.ok(idxCandidateNames('train images').includes('train-images.idx3-ubyte'));
});

function badSet(files: Record<string, Uint8Array>, re: RegExp): void {
  withDir((dir) => {
    writeSet(dir, {
      'train-images-idx3-ubyte': writeIdx([2, 1, 1], 'uint8', [0, 1]),
      'train-labels-idx1-ubyte': writeIdx([2], 'uint8', [0, 1]),
      't10k-images-idx3-ubyte': writeIdx([1, 1, 1], 'uint8', [0]),
      't10k-labels-idx1-ubyte': writeIdx([1], 'uint8', [0]),
      ...files,
    });
    assert.throws(() => loadIdxDataset(dir), re);
  });
}

test('loadIdxDataset: label count mismatch', () => {
  badSet(
    { 'train-labels-idx1-ubyte': writeIdx([3], 'uint8', [0, 1, 2]) },
    /train-labels-idx1-ubyte: 3 labels but .*train-images-idx3-ubyte has 2 images/,
  );
});

test('loadIdxDataset: negative, non-integer and multi-dimensional labels', () => {
  badSet(
    { 'train-labels-idx1-ubyte': writeIdx([2], 'int8', [0, -1]) },
    /train-labels-idx1-ubyte: label 1 is -1; class indices must be >= 0/,
  );
  badSet(
    { 't10k-labels-idx1-ubyte': writeIdx([1], 'float32', [0.5]) },
    /t10k-labels-idx1-ubyte: label 0 is 0.5, not an integer/,
  );
  badSet(
    { 'train-labels-idx1-ubyte': writeIdx([2, 1], 'uint8', [0, 1]) },
    /train-labels-idx1-ubyte: labels must be 1-D \[n\], got dims \[2, 1\]/,
  );
});

test('loadIdxDataset: images of the wrong rank or mismatched shapes', () => {
  badSet(
    { 'train-images-idx3-ubyte': writeIdx([2, 1], 'uint8', [0, 1]) },
    /train-images-idx3-ubyte: images must have dims \[n, h, w\] or \[n, h, w, c\], got \[2, 1\]/,
  );
  badSet(
    { 't10k-images-idx3-ubyte': writeIdx([1, 1, 2], 'uint8', [0, 0]) },
    /train images are \[1, 1, 1\] but test images are \[1, 2, 1\]/,
  );
});

test('loadIdxDataset: a corrupt file is reported with its path', () => {
  badSet({ 't10k-images-idx3-ubyte': Uint8Array.from([0, 0, 8]) }, /t10k-images-idx3-ubyte: too short/);
});
