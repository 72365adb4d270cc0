import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkCompressionSpec,
  compressionLabel,
  compressVector,
  decompressVector,
  NO_COMPRESSION,
  parseCompression,
  reconstructUpdate,
  UpdateCompressor,
  type CompressedTensor,
} from './compress-update.ts';
import { makeLayout } from './params.ts';
import { Rng } from './rng.ts';
import { assertClose } from '../../test/support/numeric.ts';

const layout = makeLayout([
  { name: 'w', shape: [30, 10] },
  { name: 'b', shape: [10] },
]);
const vec = (seed: number) => {
  const rng = new Rng(seed);
  return Float32Array.from({ length: 310 }, () => rng.normal());
};

test('parseCompression: kinds, defaults (delta on when compressing, error feedback on for top-k) and options', () => {
  assert.deepEqual(parseCompression('none'), NO_COMPRESSION);
  assert.deepEqual(parseCompression('fp16'), { ...NO_COMPRESSION, kind: 'fp16', delta: true });
  assert.deepEqual(parseCompression('int8'), { ...NO_COMPRESSION, kind: 'int8', delta: true });
  assert.deepEqual(parseCompression('int8-block:256,rounding=stochastic'), {
    ...NO_COMPRESSION,
    kind: 'int8',
    block: 256,
    rounding: 'stochastic',
    delta: true,
  });
  assert.deepEqual(parseCompression(' topk:0.01 '), {
    ...NO_COMPRESSION,
    kind: 'topk',
    fraction: 0.01,
    ef: true,
    delta: true,
  });
  assert.deepEqual(parseCompression('topk:0.05,ef=off,delta=off'), { ...NO_COMPRESSION, kind: 'topk', fraction: 0.05 });
  assert.deepEqual(parseCompression('fp16,ef=on'), { ...NO_COMPRESSION, kind: 'fp16', delta: true, ef: true });
  for (const text of [
    'none',
    'fp16',
    'int8',
    'int8-block:64,rounding=stochastic',
    'topk:0.01',
    'topk:0.2,ef=off,delta=off',
  ]) {
    assert.deepEqual(parseCompression(compressionLabel(parseCompression(text))), parseCompression(text), text);
  }
});

test('parseCompression: bad specs are refused with a message naming the problem', () => {
  const bad: [string, RegExp][] = [
    ['zip', /unknown compression/],
    ['', /unknown compression/],
    ['int8:4', /unknown compression/],
    ['int8-block', /unknown compression/],
    ['int8-block:0', /block size/],
    ['int8-block:2.5', /block size/],
    ['int8-block:-4', /block size/],
    ['int8-block:1e3', /block size/],
    ['topk:0', /fraction/],
    ['topk:1.5', /fraction/],
    ['topk:abc', /fraction/],
    ['topk:', /fraction/],
    ['fp16:1', /unknown compression/],
    ['topk:0.1,ef=yes', /ef must be on or off/],
    ['topk:0.1,ef', /key=value/],
    ['fp16,rounding=stochastic', /unknown option 'rounding'/],
    ['int8,rounding=up', /rounding must be/],
    ['none,ef=on', /none takes no options/],
    ['int8,colour=red', /unknown option/],
  ];
  for (const [text, re] of bad) assert.throws(() => parseCompression(text), re, text);
});

test('checkCompressionSpec: accepts what parseCompression makes, refuses anything else from a header', () => {
  assert.deepEqual(
    checkCompressionSpec(JSON.parse(JSON.stringify(parseCompression('topk:0.01')))),
    parseCompression('topk:0.01'),
  );
  const good = parseCompression('int8-block:8');
  for (const patch of [
    { kind: 'zip' },
    { block: -1 },
    { block: 1.5 },
    { block: 2 ** 30 },
    { rounding: 'up' },
    { fraction: 0 },
    { fraction: 2 },
    { fraction: '0.1' },
    { ef: 1 },
    { delta: 'yes' },
    { extra: 1 },
  ]) {
    assert.throws(() => checkCompressionSpec({ ...good, ...patch }), /compression spec/, JSON.stringify(patch));
  }
  for (const u of [null, 5, 'int8', [good]]) assert.throws(() => checkCompressionSpec(u), /not an object/);
});

test('compress/decompress per tensor: every kind within its bound of the input', () => {
  const x = vec(1);
  const rng = new Rng(9);
  for (const [text, tol] of [
    ['fp16', 2 ** -11],
    ['int8', 0.5 / 127],
    ['int8-block:16', 0.5 / 127],
  ] as const) {
    const spec = parseCompression(text);
    const y = decompressVector(spec, layout, compressVector(spec, layout, x, rng));
    for (const slot of layout) {
      const max = Math.max(...Array.from(x.subarray(slot.offset, slot.offset + slot.size), Math.abs));
      assertClose(
        y.subarray(slot.offset, slot.offset + slot.size),
        x.subarray(slot.offset, slot.offset + slot.size),
        tol * max * 1.0001,
        0,
      );
    }
  }
  const spec = parseCompression('topk:0.1');
  const parts = compressVector(spec, layout, x, rng);
  assert.deepEqual(
    parts.map((p) => p.kind === 'topk' && p.sparse.indices.length),
    [30, 1],
  );
  const y = decompressVector(spec, layout, parts);
  assert.equal(y.filter((v) => v !== 0).length, 31);
});

test('decompressVector refuses payloads that do not fit the slot or the spec', () => {
  const x = vec(2);
  const rng = new Rng(1);
  const tamper = (text: string, change: (p: CompressedTensor[]) => void, re: RegExp) => {
    const spec = parseCompression(text);
    const parts = compressVector(spec, layout, x, rng);
    change(parts);
    assert.throws(() => decompressVector(spec, layout, parts), re, `${text}: ${re}`);
  };
  const int8 = (p: CompressedTensor[]) => p[0] as Extract<CompressedTensor, { kind: 'int8' }>;
  const topk = (p: CompressedTensor[]) => p[0] as Extract<CompressedTensor, { kind: 'topk' }>;
  tamper('fp16', (p) => p.pop(), /expected 2 compressed tensors/);
  tamper(
    'fp16',
    (p) => {
      p[0] = { kind: 'fp16', half: new Uint16Array(5) };
    },
    /holds 5 values/,
  );
  tamper(
    'fp16',
    (p) => {
      p[1] = compressVector(parseCompression('int8'), layout, x, rng)[1];
    },
    /is int8, the run compresses with fp16/,
  );
  tamper(
    'int8',
    (p) => {
      int8(p).q[3] = -128;
    },
    /-128/,
  );
  tamper(
    'int8',
    (p) => {
      int8(p).scales[0] = NaN;
    },
    /scales must be finite/,
  );
  tamper(
    'int8',
    (p) => {
      int8(p).scales[0] = -1;
    },
    /scales must be finite and >= 0/,
  );
  tamper(
    'int8-block:16',
    (p) => {
      int8(p).scales = int8(p).scales.slice(1);
    },
    /expected 19/,
  );
  tamper(
    'int8',
    (p) => {
      int8(p).q = int8(p).q.slice(1);
    },
    /holds 299 values/,
  );
  tamper(
    'topk:0.1',
    (p) => {
      topk(p).sparse.indices[0] = 300;
    },
    /outside \[0, 300\)|ascending/,
  );
  tamper(
    'topk:0.1',
    (p) => {
      topk(p).sparse.indices[29] = 300;
    },
    /index 300 is outside/,
  );
  tamper(
    'topk:0.1',
    (p) => {
      topk(p).sparse.indices[29] = -1;
    },
    /outside|ascending/,
  );
  tamper(
    'topk:0.1',
    (p) => {
      topk(p).sparse.indices[1] = topk(p).sparse.indices[0];
    },
    /ascending and unique/,
  );
  tamper(
    'topk:0.1',
    (p) => {
      topk(p).sparse.values[2] = Infinity;
    },
    /not finite/,
  );
  tamper(
    'topk:0.1',
    (p) => {
      const s = topk(p).sparse;
      topk(p).sparse = { indices: s.indices.slice(1), values: s.values.slice(1) };
    },
    /expected 30 of each/,
  );
});

test('UpdateCompressor: deltas against the global, residual per node carried to the next round, reconstruction adds the global back', () => {
  const global = vec(3);
  const local = vec(4);
  const spec = parseCompression('topk:0.05');
  const c = new UpdateCompressor(layout);
  const parts = c.compress(7, spec, local, global, false, new Rng(1));
  const sent = decompressVector(spec, layout, parts);
  const delta = local.map((v, i) => v - global[i]);
  const residual = c.residual(7)!;
  assertClose(
    sent.map((v, i) => v + residual[i]),
    delta,
    1e-6,
    0,
  );
  assert.equal(c.residual(8), undefined, 'residuals are per node');
  // Next round: the residual is added before top-k, so a value dropped now can be sent later.
  const parts2 = c.compress(7, spec, local, global, false, new Rng(2));
  const sent2 = decompressVector(spec, layout, parts2);
  assertClose(
    sent2.map((v, i) => v + c.residual(7)![i]),
    delta.map((v, i) => v + residual[i]),
    1e-5,
    0,
  );
  const whole = reconstructUpdate(spec, sent, global, false);
  assertClose(
    whole,
    global.map((g, i) => g + sent[i]),
    0,
    0,
  );
  // Gradients are never deltas; without ef no residual is kept.
  const plain = parseCompression('int8,ef=off');
  const g = new UpdateCompressor(layout);
  const gp = decompressVector(plain, layout, g.compress(1, plain, local, global, true, new Rng(1)));
  assertClose(gp, local, (0.5 / 127) * 3.5 * 1.001, 0);
  assert.equal(g.residual(1), undefined);
  assert.equal(reconstructUpdate(plain, gp, global, true), gp);
});
