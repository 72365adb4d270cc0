import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  adoptFrame,
  decodeFrame,
  encodeFrame,
  FrameError,
  MAX_HEADER_BYTES,
  peekHeader,
  WIRE_VERSION,
  type Frame,
  type WireTensor,
} from './wire.ts';

// ---------- helpers ----------

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function headerLengthOf(frame: Uint8Array): number {
  return new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(4, true);
}

function headerOf(frame: Uint8Array): Record<string, unknown> {
  return JSON.parse(new TextDecoder().decode(frame.subarray(8, 8 + headerLengthOf(frame))));
}

/** A frame assembled by hand, so the header can say anything: magic | u32 length | header | zero pad | data. */
function rawFrame(header: unknown, data: Uint8Array = new Uint8Array(0), lengthField?: number): Uint8Array {
  const text = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const dataStart = (8 + text.length + 3) & ~3;
  const out = new Uint8Array(dataStart + data.length);
  out.set(new TextEncoder().encode('EFW1'), 0);
  new DataView(out.buffer).setUint32(4, lengthField ?? text.length, true);
  out.set(text, 8);
  out.set(data, dataStart);
  return out;
}

/** The data section of a frame built by encodeFrame. */
function dataOf(frame: Uint8Array): Uint8Array {
  return frame.subarray((8 + headerLengthOf(frame) + 3) & ~3);
}

function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A decoded frame must be internally consistent and must not share memory with its input. */
function assertConsistent(frame: Frame, input: Uint8Array): void {
  const h = frame.header as Record<string, unknown>;
  assert.equal(typeof h, 'object');
  assert.equal(h.v, WIRE_VERSION);
  assert.equal(typeof h.type, 'string');
  assert.ok(!('tensors' in h), 'header.tensors is removed');
  const names = new Set<string>();
  for (const t of frame.tensors) {
    assert.equal(typeof t.name, 'string');
    assert.ok(t.name.length > 0 && t.name.length <= 256);
    assert.ok(!names.has(t.name), 'names are unique');
    names.add(t.name);
    const arrays = { float32: Float32Array, int32: Int32Array, float16: Uint16Array, int8: Int8Array };
    assert.ok(t.dtype in arrays);
    assert.ok(t.data instanceof arrays[t.dtype], 'data type matches dtype');
    assert.ok(Array.isArray(t.shape) && t.shape.length <= 8 && t.shape.every((d) => Number.isInteger(d) && d >= 0));
    assert.equal(t.data.length, product(t.shape));
    assert.notEqual(t.data.buffer, input.buffer, 'tensor data is a copy');
    assert.equal(t.data.byteOffset % 4, 0);
  }
}

type Outcome = { ok: true; frame: Frame } | { ok: false; error: FrameError };

/** decodeFrame either gives a consistent frame or throws a FrameError with a code; never anything else, never slowly. */
function decodeSafely(bytes: Uint8Array, maxBytes?: number): Outcome {
  let outcome: Outcome;
  try {
    const frame = maxBytes === undefined ? decodeFrame(bytes) : decodeFrame(bytes, maxBytes);
    assertConsistent(frame, bytes);
    outcome = { ok: true, frame };
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    assert.ok(
      e instanceof FrameError,
      `expected a FrameError, got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`,
    );
    assert.equal(typeof e.code, 'string');
    assert.ok(e.code.length > 0, 'FrameError has a code');
    assert.ok(e.message.length > 0, 'FrameError has a message');
    outcome = { ok: false, error: e };
  }
  return outcome;
}

function expectCode(bytes: Uint8Array, code: string, maxBytes?: number): void {
  const r = decodeSafely(bytes, maxBytes);
  assert.ok(!r.ok, `expected FrameError '${code}', but the frame decoded`);
  assert.equal(r.error.code, code, r.error.message);
}

// ---------- generators ----------

const nameArb = fc.string({ minLength: 1, maxLength: 12 });
const shapeArb = fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 4 });

const tensorArb: fc.Arbitrary<WireTensor> = fc
  .tuple(nameArb, fc.constantFrom('float32' as const, 'int32' as const), shapeArb)
  .chain(([name, dtype, shape]) => {
    const n = product(shape);
    return dtype === 'float32'
      ? fc.float32Array({ minLength: n, maxLength: n }).map((data): WireTensor => ({ name, dtype, shape, data }))
      : fc.int32Array({ minLength: n, maxLength: n }).map((data): WireTensor => ({ name, dtype, shape, data }));
  });

const tensorsArb = fc.uniqueArray(tensorArb, { maxLength: 5, selector: (t) => t.name });

const fieldsArb = fc.dictionary(
  fc.string({ maxLength: 8 }).filter((k) => !['v', 'type', 'tensors', '__proto__'].includes(k)),
  fc.jsonValue({ maxDepth: 1 }),
  { maxKeys: 4 },
);

const typeArb = fc.string({ maxLength: 16 });

const validFrameArb = fc
  .tuple(typeArb, fieldsArb, tensorsArb)
  .map(([type, fields, tensors]) => ({ type, fields, tensors, bytes: encodeFrame(type, fields, tensors) }));

// ---------- round trips ----------

test('round trip: float32 and int32 tensors of various shapes, incl. empty and zero tensors', () => {
  const tensors: WireTensor[] = [
    { name: 'scalar', dtype: 'float32', shape: [], data: new Float32Array([3.5]) },
    { name: 'vec', dtype: 'float32', shape: [3], data: new Float32Array([1, -2.25, 1e-30]) },
    { name: 'mat', dtype: 'int32', shape: [2, 3], data: new Int32Array([1, -2, 3, 2147483647, -2147483648, 0]) },
    { name: 'empty', dtype: 'float32', shape: [0], data: new Float32Array(0) },
    { name: 'empty2d', dtype: 'int32', shape: [4, 0], data: new Int32Array(0) },
    { name: 'zeros', dtype: 'float32', shape: [2, 2, 2], data: new Float32Array(8) },
    { name: 'special', dtype: 'float32', shape: [4], data: new Float32Array([NaN, Infinity, -Infinity, -0]) },
  ];
  const frame = encodeFrame('update', { round: 3, note: 'hé ✓', nested: { a: [1, 2] } }, tensors);
  const decoded = decodeFrame(frame);
  assert.deepEqual(decoded.header, { round: 3, note: 'hé ✓', nested: { a: [1, 2] }, v: WIRE_VERSION, type: 'update' });
  assert.equal(decoded.tensors.length, tensors.length);
  decoded.tensors.forEach((t, i) => {
    assert.equal(t.name, tensors[i].name);
    assert.equal(t.dtype, tensors[i].dtype);
    assert.deepEqual(t.shape, tensors[i].shape);
    assert.equal(t.data.constructor, tensors[i].data.constructor);
    assert.deepEqual(bytesOf(t.data), bytesOf(tensors[i].data), `bytes of ${t.name}`);
  });
  assert.ok(Object.is(decoded.tensors[6].data[3], -0));
  assert.ok(Number.isNaN(decoded.tensors[6].data[0]));
});

test('round trip with no tensors and with empty fields', () => {
  const d = decodeFrame(encodeFrame('ping', {}));
  assert.deepEqual(d.header, { v: WIRE_VERSION, type: 'ping' });
  assert.deepEqual(d.tensors, []);
});

test('encoder-owned header fields win over caller fields of the same name', () => {
  const d = decodeFrame(encodeFrame('real', { v: 99, type: 'fake', tensors: 'nope' }));
  assert.equal(d.header.v, WIRE_VERSION);
  assert.equal(d.header.type, 'real');
  assert.deepEqual(d.tensors, []);
});

test('round trip property: header fields and tensor bytes preserved; data section aligned and zero-padded', () => {
  fc.assert(
    fc.property(validFrameArb, ({ type, fields, tensors, bytes }) => {
      // layout of the frame itself
      assert.deepEqual(Array.from(bytes.subarray(0, 4)), [0x45, 0x46, 0x57, 0x31]);
      const hl = headerLengthOf(bytes);
      const dataStart = (8 + hl + 3) & ~3;
      assert.equal(dataStart % 4, 0);
      assert.ok(
        bytes.subarray(8 + hl, dataStart).every((b) => b === 0),
        'padding is zero',
      );
      assert.equal(
        bytes.length - dataStart,
        tensors.reduce((a, t) => a + t.data.byteLength, 0),
      );
      const entries = headerOf(bytes).tensors as { offset: number; length: number }[];
      for (const e of entries) assert.equal(e.offset % 4, 0, 'tensor offsets are 4-aligned');

      const d = decodeFrame(bytes);
      assertConsistent(d, bytes);
      assert.deepEqual(d.header, { ...JSON.parse(JSON.stringify(fields)), v: WIRE_VERSION, type });
      assert.equal(d.tensors.length, tensors.length);
      d.tensors.forEach((t, i) => {
        assert.equal(t.name, tensors[i].name);
        assert.equal(t.dtype, tensors[i].dtype);
        assert.deepEqual(t.shape, tensors[i].shape);
        assert.deepEqual(bytesOf(t.data), bytesOf(tensors[i].data));
      });
    }),
    { numRuns: 300 },
  );
});

test('tensor views at any byte offset are encoded from their own bytes only', () => {
  const big = new Float32Array([9, 9, 1, 2, 3, 9, 9]);
  const view = big.subarray(2, 5);
  const d = decodeFrame(encodeFrame('t', {}, [{ name: 'w', dtype: 'float32', shape: [3], data: view }]));
  assert.deepEqual(Array.from(d.tensors[0].data), [1, 2, 3]);
});

test('float16 and int8 tensors: odd lengths are zero-padded so every tensor starts 4-byte aligned, and decode exactly', () => {
  const tensors: WireTensor[] = [
    { name: 'q', dtype: 'int8', shape: [5], data: new Int8Array([-127, -1, 0, 1, 127]) },
    { name: 'h', dtype: 'float16', shape: [3], data: new Uint16Array([0x3c00, 0x7c00, 0x8001]) },
    { name: 'f', dtype: 'float32', shape: [1], data: new Float32Array([2.5]) },
    { name: 'e', dtype: 'int8', shape: [0], data: new Int8Array(0) },
  ];
  const frame = encodeFrame('t', {}, tensors);
  const d = decodeFrame(frame);
  d.tensors.forEach((t, i) => {
    assert.equal(t.dtype, tensors[i].dtype);
    assert.equal(Object.prototype.toString.call(t.data), Object.prototype.toString.call(tensors[i].data));
    assert.deepEqual(Array.from(t.data), Array.from(tensors[i].data));
  });
  const header = peekHeader(frame) as unknown as { tensors: { offset: number; length: number }[] };
  assert.deepEqual(
    header.tensors.map((t) => [t.offset, t.length]),
    [
      [0, 5],
      [8, 6],
      [16, 4],
      [20, 0],
    ],
  );
  // The length must be count * the dtype's size: an int8 tensor claiming float32-sized bytes is refused.
  assert.throws(
    () => encodeFrame('t', {}, [{ name: 'q', dtype: 'int8', shape: [2], data: new Uint16Array(2) }]),
    /dtype/,
  );
  assert.throws(
    () => encodeFrame('t', {}, [{ name: 'q', dtype: 'float16', shape: [2], data: new Int8Array(2) }]),
    /dtype/,
  );
});

test('decoded tensors are copies: changing the input, the source or another tensor afterwards changes nothing', () => {
  const src = new Float32Array([1, 2, 3, 4]);
  const ints = new Int32Array([7, 8]);
  const frame = encodeFrame('t', {}, [
    { name: 'a', dtype: 'float32', shape: [2, 2], data: src },
    { name: 'b', dtype: 'int32', shape: [2], data: ints },
  ]);
  src[0] = 100; // the frame was copied from the source
  const d = decodeFrame(frame);
  assert.deepEqual(Array.from(d.tensors[0].data), [1, 2, 3, 4]);
  frame.fill(0xff);
  assert.deepEqual(Array.from(d.tensors[0].data), [1, 2, 3, 4]);
  assert.deepEqual(Array.from(d.tensors[1].data), [7, 8]);
  assert.notEqual(d.tensors[0].data.buffer, d.tensors[1].data.buffer);
  d.tensors[0].data[1] = -1;
  assert.deepEqual(Array.from(d.tensors[1].data), [7, 8]);
});

test('decodes from a Node Buffer and from an unaligned view into a bigger buffer', () => {
  const frame = encodeFrame('t', { k: 1 }, [
    { name: 'w', dtype: 'float32', shape: [3], data: new Float32Array([1.5, -2, 3]) },
  ]);
  // Small Buffers come from a shared pool: their .buffer is the pool, their byteOffset arbitrary.
  const pooled = Buffer.concat([Buffer.from([1, 2, 3]), Buffer.from(frame)]).subarray(3);
  const fromBuffer = decodeFrame(pooled);
  assert.equal(fromBuffer.tensors[0].data.length, 3);
  assert.deepEqual(Array.from(fromBuffer.tensors[0].data), [1.5, -2, 3]);
  assert.notEqual(fromBuffer.tensors[0].data.buffer, pooled.buffer);
  pooled.fill(0);
  assert.deepEqual(Array.from(fromBuffer.tensors[0].data), [1.5, -2, 3]);

  const host = new Uint8Array(frame.length + 5);
  host.set(frame, 1);
  const unaligned = host.subarray(1, 1 + frame.length);
  assert.deepEqual(Array.from(decodeFrame(unaligned).tensors[0].data), [1.5, -2, 3]);
});

test('an adopted frame decodes to views into it; in shared memory or unaligned it is copied as any frame', () => {
  const tensors: WireTensor[] = [
    { name: 'a', dtype: 'float32', shape: [3], data: new Float32Array([1.5, -2, 3]) },
    { name: 'q', dtype: 'float16', shape: [3], data: new Uint16Array([1, 2, 3]) },
    { name: 'b', dtype: 'int8', shape: [2], data: new Int8Array([-7, 8]) },
  ];
  const frame = encodeFrame('t', { k: 1 }, tensors);
  const copied = decodeFrame(frame);
  const owned = decodeFrame(adoptFrame(frame));
  assert.deepEqual(owned, copied);
  for (const t of owned.tensors) assert.equal(t.data.buffer, frame.buffer, `${t.name} is a view`);
  for (const t of copied.tensors) assert.notEqual(t.data.buffer, frame.buffer, `${t.name} is a copy`);

  const shared = new Uint8Array(new SharedArrayBuffer(frame.length));
  shared.set(frame);
  for (const t of decodeFrame(adoptFrame(shared)).tensors) assert.ok(!(t.data.buffer instanceof SharedArrayBuffer));

  const host = new Uint8Array(frame.length + 1);
  host.set(frame, 1);
  const unaligned = adoptFrame(host.subarray(1));
  const d = decodeFrame(unaligned);
  assert.deepEqual(d, copied);
  assert.notEqual(d.tensors[0].data.buffer, host.buffer, 'a float32 view needs 4-byte alignment');
  assert.equal(d.tensors[2].data.buffer, host.buffer, 'int8 needs none');
});

test('encodeFrame rejects tensors its own decoder would reject', () => {
  const f = (t: Partial<WireTensor>): WireTensor => ({
    name: 'w',
    dtype: 'float32',
    shape: [2],
    data: new Float32Array(2),
    ...t,
  });
  assert.throws(() => encodeFrame('t', {}, [f({ shape: [3] })]), /holds 3 values/);
  assert.throws(() => encodeFrame('t', {}, [f({ shape: [-1, -2] })]));
  assert.throws(() => encodeFrame('t', {}, [f({ shape: [1, 1, 1, 1, 1, 1, 1, 1, 1, 2] })]));
  assert.throws(() => encodeFrame('t', {}, [f({ name: '' })]));
  assert.throws(() => encodeFrame('t', {}, [f({ name: 'x'.repeat(257) })]));
  assert.throws(() => encodeFrame('t', {}, [f({}), f({})]), /twice/);
  assert.throws(() => encodeFrame('t', {}, [f({ dtype: 'int32' })]), /dtype/);
  assert.throws(() => encodeFrame('t', {}, [f({ data: new Int32Array(2) })]), /dtype/);
  assert.throws(() => encodeFrame('t', { big: 'x'.repeat(MAX_HEADER_BYTES) }), /header/);
  // the limits themselves are fine
  decodeFrame(encodeFrame('t', {}, [f({ name: 'x'.repeat(256), shape: [1, 1, 1, 1, 1, 1, 1, 2] })]));
});

// ---------- hand-written malicious frames, each with its expected code ----------

test('malicious frames are rejected with the right FrameError code', () => {
  const data = new Uint8Array(16);
  const entry = { name: 'w', dtype: 'float32', shape: [2], offset: 0, length: 8 };
  const hdr = (e: Record<string, unknown>[], headerFields: Record<string, unknown> = {}) => ({
    v: 1,
    type: 't',
    tensors: e,
    ...headerFields,
  });
  const withEntry = (patch: Record<string, unknown>) => rawFrame(hdr([{ ...entry, ...patch }]), data);

  // the unpatched frame is fine, so every rejection below is due to its patch
  assert.ok(decodeSafely(withEntry({})).ok);

  expectCode(new Uint8Array(0), 'truncated');
  expectCode(new Uint8Array([0x45, 0x46, 0x57, 0x31, 0, 0, 0]), 'truncated');
  expectCode(new TextEncoder().encode('EFW2\0\0\0\0'), 'bad_magic');
  expectCode(rawFrame(hdr([]), new Uint8Array(0), 10_000), 'bad_header'); // length field larger than the frame
  expectCode(rawFrame(hdr([]), new Uint8Array(0), MAX_HEADER_BYTES + 1), 'bad_header');
  expectCode(rawFrame(hdr([]), new Uint8Array(0), 0xffffffff), 'bad_header');
  expectCode(rawFrame('{"v":1,"type":"t"'), 'bad_header'); // invalid JSON
  expectCode(rawFrame(''), 'bad_header');
  {
    const bad = rawFrame('{"v":1,"type":"\u00ff"}');
    bad[8 + 15] = 0xc3; // a lone UTF-8 lead byte
    bad[8 + 16] = 0x22;
    expectCode(bad, 'bad_header');
  }
  expectCode(rawFrame('[1,2]'), 'bad_header');
  expectCode(rawFrame('null'), 'bad_header');
  expectCode(rawFrame('42'), 'bad_header');
  expectCode(rawFrame('"EFW1"'), 'bad_header');
  expectCode(rawFrame(hdr([], { v: 2 })), 'bad_version');
  expectCode(rawFrame(hdr([], { v: '1' })), 'bad_version');
  expectCode(rawFrame({ type: 't' }), 'bad_version');
  expectCode(rawFrame({ v: 1 }), 'bad_header');
  expectCode(rawFrame({ v: 1, type: 5 }), 'bad_header');
  expectCode(rawFrame({ v: 1, type: 't', tensors: {} }), 'bad_header');
  expectCode(rawFrame({ v: 1, type: 't', tensors: 'w' }), 'bad_header');
  expectCode(rawFrame(hdr([null as unknown as Record<string, unknown>]), data), 'bad_tensor');
  expectCode(rawFrame(hdr([7 as unknown as Record<string, unknown>]), data), 'bad_tensor');

  for (const patch of [
    { name: '' },
    { name: 5 },
    { name: 'x'.repeat(257) },
    { dtype: 'float64' },
    { dtype: 'FLOAT32' },
    { dtype: undefined },
    { shape: 2 },
    { shape: [-2] },
    { shape: [2.5] },
    { shape: ['2'] },
    { shape: [1, 1, 1, 1, 1, 1, 1, 1, 2] },
    { shape: [1e9, 1e9], length: 8 },
    { shape: [2 ** 31, 2 ** 31, 2 ** 31, 2 ** 31], length: 8 },
    { shape: [1e300, 1e300, 0], length: 0 }, // the product overflows to Infinity * 0 = NaN
    { offset: 16 }, // past the end
    { offset: 12 }, // overlaps the end
    { offset: -4 },
    { offset: 2 }, // unaligned
    { offset: 0.5 },
    { offset: '0' },
    { offset: null },
    { offset: 2 ** 53 },
    { length: 4 }, // does not match the shape
    { dtype: 'int8' }, // 8 bytes are not 2 int8 values
    { dtype: 'float16' }, // nor 2 float16 values
    { length: 12 },
    { length: -8 },
    { length: '8' },
    { length: 8.0000001 },
    { shape: [5], length: 20 }, // matches the shape but not the frame
  ]) {
    expectCode(withEntry(patch), 'bad_tensor');
  }
  expectCode(rawFrame(hdr([entry, { ...entry, offset: 8 }]), data), 'bad_tensor'); // duplicate name
  expectCode(rawFrame(hdr([entry, { ...entry, name: 'w2', offset: 16 }]), data), 'bad_tensor'); // second past the end
});

test('maxBytes is respected', () => {
  const frame = encodeFrame('t', {}, [{ name: 'w', dtype: 'float32', shape: [10], data: new Float32Array(10) }]);
  assert.ok(decodeSafely(frame, frame.length).ok);
  expectCode(frame, 'too_large', frame.length - 1);
  expectCode(frame, 'too_large', 0);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(80), (bytes, maxBytes) => {
      const r = decodeSafely(bytes, maxBytes);
      if (bytes.length > maxBytes) assert.ok(!r.ok && r.error.code === 'too_large');
      else assert.ok(r.ok || r.error.code !== 'too_large');
    }),
    { numRuns: 200 },
  );
});

// ---------- fuzzing ----------

test('fuzz (a): arbitrary bytes, with and without a valid prefix', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
      decodeSafely(bytes);
    }),
    { numRuns: 300 },
  );
  // random bytes behind a correct magic and a header length that fits, to get past the first checks
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 256 }), fc.nat(300), (rest, len) => {
      const bytes = new Uint8Array(8 + rest.length);
      bytes.set(new TextEncoder().encode('EFW1'));
      new DataView(bytes.buffer).setUint32(4, len, true);
      bytes.set(rest, 8);
      decodeSafely(bytes);
    }),
    { numRuns: 300 },
  );
});

const mutationArb = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.nat(255) }),
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('extend' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    extra: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
);

type Mutation = typeof mutationArb extends fc.Arbitrary<infer M> ? M : never;

function mutate(bytes: Uint8Array, m: Mutation): Uint8Array {
  const n = bytes.length;
  switch (m.kind) {
    case 'set': {
      const out = bytes.slice();
      if (n > 0) out[m.at % n] = m.value;
      return out;
    }
    case 'flip': {
      const out = bytes.slice();
      if (n > 0) out[m.at % n] ^= 1 << m.bit;
      return out;
    }
    case 'truncate':
      return bytes.slice(0, m.at % (n + 1));
    case 'extend': {
      const out = new Uint8Array(n + m.extra.length);
      out.set(bytes);
      out.set(m.extra, n);
      return out;
    }
    case 'delete': {
      const at = m.at % (n + 1);
      const out = new Uint8Array(n - Math.min(m.count, n - at));
      out.set(bytes.subarray(0, at));
      out.set(bytes.subarray(at + m.count), at);
      return out;
    }
    case 'insert': {
      const at = m.at % (n + 1);
      const out = new Uint8Array(n + m.extra.length);
      out.set(bytes.subarray(0, at));
      out.set(m.extra, at);
      out.set(bytes.subarray(at), at + m.extra.length);
      return out;
    }
  }
}

test('fuzz (b): valid frames with byte mutations, truncations, insertions and extensions', () => {
  fc.assert(
    fc.property(validFrameArb, fc.array(mutationArb, { minLength: 1, maxLength: 4 }), ({ bytes }, mutations) => {
      const original = bytes.slice();
      const mutated = mutations.reduce(mutate, bytes);
      decodeSafely(mutated);
      assert.deepEqual(bytes, original, 'the input is never modified');
    }),
    { numRuns: 600 },
  );
  // mutations confined to the data section leave the structure intact
  fc.assert(
    fc.property(validFrameArb, fc.nat(), fc.nat(255), ({ bytes, tensors }, at, value) => {
      const data = dataOf(bytes);
      fc.pre(data.length > 0);
      data[at % data.length] = value;
      const r = decodeSafely(bytes);
      assert.ok(r.ok);
      assert.deepEqual(
        r.frame.tensors.map((t) => [t.name, t.dtype, t.shape]),
        tensors.map((t) => [t.name, t.dtype, t.shape]),
      );
    }),
    { numRuns: 100 },
  );
});

/** Edits to a decoded header object that a hostile peer might make. */
const headerEditArb = fc.oneof(
  // replace one field of one tensor entry by anything JSON can carry, or by a nasty number
  fc.record({
    kind: fc.constant('entryField' as const),
    index: fc.nat(),
    field: fc.constantFrom('name', 'dtype', 'shape', 'offset', 'length', 'extra'),
    value: fc.oneof(
      fc.jsonValue({ maxDepth: 2 }),
      fc.integer({ min: -64, max: 64 }),
      fc.constantFrom(-1, -4, 1, 2, 3, 2 ** 31, 2 ** 32, 2 ** 53, 1e308, -0, 0.5, 4.5),
      fc.array(fc.oneof(fc.integer({ min: -2, max: 8 }), fc.constantFrom(2 ** 30, 2 ** 40, 1e300, 0.5)), {
        maxLength: 10,
      }),
    ),
  }),
  // shift an entry's offset or length by a few bytes
  fc.record({
    kind: fc.constant('nudge' as const),
    index: fc.nat(),
    field: fc.constantFrom('offset', 'length'),
    by: fc.integer({ min: -9, max: 9 }),
  }),
  // make a name collide with another entry's
  fc.record({ kind: fc.constant('duplicate' as const), index: fc.nat() }),
  // copy an entry (same name) or drop it
  fc.record({ kind: fc.constant('clone' as const), index: fc.nat() }),
  fc.record({ kind: fc.constant('drop' as const), index: fc.nat() }),
  // top-level fields
  fc.record({
    kind: fc.constant('top' as const),
    field: fc.constantFrom('v', 'type', 'tensors'),
    value: fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(undefined, 0, 2, '1')),
  }),
  // a wrong header length field
  fc.record({
    kind: fc.constant('lengthField' as const),
    value: fc.oneof(fc.nat(400), fc.constantFrom(MAX_HEADER_BYTES, MAX_HEADER_BYTES + 1, 0xffffffff)),
  }),
);

type HeaderEdit = typeof headerEditArb extends fc.Arbitrary<infer E> ? E : never;

interface Editable {
  header: Record<string, unknown>;
  lengthField?: number;
}

function applyEdit(target: Editable, e: HeaderEdit): void {
  const entries = Array.isArray(target.header.tensors) ? (target.header.tensors as Record<string, unknown>[]) : [];
  const picked = entries.length > 0 ? entries[((e as { index?: number }).index ?? 0) % entries.length] : undefined;
  // entries may already be edited into non-objects; arrays are left alone (setting an array's length to {} throws in the test itself)
  const entry = typeof picked === 'object' && picked !== null && !Array.isArray(picked) ? picked : undefined;
  switch (e.kind) {
    case 'entryField':
      if (entry) entry[e.field] = e.value;
      break;
    case 'nudge':
      if (entry && typeof entry[e.field] === 'number') entry[e.field] = (entry[e.field] as number) + e.by;
      break;
    case 'duplicate':
      if (entry && entries.length > 1) entry.name = entries[(e.index + 1) % entries.length]?.name;
      break;
    case 'clone':
      if (entry) entries.push({ ...entry });
      break;
    case 'drop':
      if (entry) entries.splice(entries.indexOf(entry), 1);
      break;
    case 'top':
      if (e.value === undefined) delete target.header[e.field];
      else target.header[e.field] = e.value;
      break;
    case 'lengthField':
      target.lengthField = e.value;
      break;
  }
}

test('fuzz (c): valid frames with maliciously edited header JSON', () => {
  let rejected = 0;
  let accepted = 0;
  fc.assert(
    fc.property(validFrameArb, fc.array(headerEditArb, { minLength: 1, maxLength: 3 }), ({ bytes }, edits) => {
      const target: Editable = { header: headerOf(bytes) };
      for (const e of edits) applyEdit(target, e);
      const r = decodeSafely(rawFrame(target.header, dataOf(bytes), target.lengthField));
      if (r.ok) accepted++;
      else rejected++;
    }),
    { numRuns: 700 },
  );
  // the generator exercises both outcomes, so neither check above is vacuous
  assert.ok(rejected > 100, `only ${rejected} edited frames were rejected`);
  assert.ok(accepted > 10, `only ${accepted} edited frames were accepted`);
});

test('a header value whose toString is not a function is refused as a FrameError, shown as JSON', () => {
  const bad = { toString: false };
  const version = rawFrame({ v: bad, type: 't', tensors: [] }, new Uint8Array(0));
  assert.throws(
    () => decodeFrame(version),
    (e: unknown) => {
      assert.ok(e instanceof FrameError && e.code === 'bad_version', String(e));
      assert.match(e.message, /protocol version \{"toString":false\} is not 1/);
      return true;
    },
  );
  const tensors = [{ name: 'w', dtype: bad, shape: [1], offset: 0, length: 4 }];
  const dtype = rawFrame({ v: 1, type: 't', tensors }, new Uint8Array(4));
  assert.throws(
    () => decodeFrame(dtype),
    (e: unknown) => e instanceof FrameError && e.code === 'bad_tensor',
  );
});
