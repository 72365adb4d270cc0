import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CHUNK_HEADER_BYTES, Reassembler, splitFrame } from './chunks.js';
import { FrameError, encodeFrame } from './wire.js';

const frame = (n: number) =>
  encodeFrame('train', { round: 1, node: 0 }, [
    { name: 'w', dtype: 'float32', shape: [n], data: Float32Array.from({ length: n }, (_, i) => i * 0.5) },
  ]);

test('small frames pass through whole; large frames split and reassemble exactly, in any order', () => {
  const small = frame(4);
  assert.deepEqual(splitFrame(small, 1, 1024), [small]);
  const big = frame(10_000);
  const parts = splitFrame(big, 7, 4096);
  assert.equal(parts.length, Math.ceil(big.length / 4096));
  assert.ok(parts.every((p) => p.length <= 4096 + CHUNK_HEADER_BYTES));
  const r = new Reassembler(1 << 20);
  const shuffled = [...parts].reverse();
  let out: Uint8Array | null = null;
  shuffled.forEach((p, i) => {
    out = r.push(p);
    assert.equal(out === null, i < shuffled.length - 1);
  });
  assert.deepEqual(out, big);
});

test('property: any frame and chunk size round-trips; interleaved messages do not mix', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 1, max: 5000 }), (n, size) => {
      const a = frame(n);
      const b = frame(n + 1);
      const pa = splitFrame(a, 1, size);
      const pb = splitFrame(b, 2, size);
      const r = new Reassembler(1 << 20);
      const got: Uint8Array[] = [];
      for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
        for (const p of [pa[i], pb[i]]) {
          if (!p) continue;
          const f = r.push(p);
          if (f) got.push(f);
        }
      }
      assert.equal(got.length, 2);
      assert.deepEqual(new Set(got.map((g) => g.length)), new Set([a.length, b.length]));
      assert.deepEqual(
        got.find((g) => g.length === a.length),
        a,
      );
    }),
    { numRuns: 100 },
  );
});

test('hostile chunks: oversized, inconsistent, duplicated, too many pending — FrameError, never a crash', () => {
  const parts = splitFrame(frame(5000), 3, 1000);
  assert.throws(
    () => new Reassembler(100).push(parts[0]),
    (e: unknown) => e instanceof FrameError && e.code === 'too_large',
  );
  const r = new Reassembler(1 << 20);
  r.push(parts[0]);
  assert.throws(
    () => r.push(parts[0]),
    (e: unknown) => e instanceof FrameError && e.code === 'bad_chunk',
  );
  const lying = parts[1].slice();
  new DataView(lying.buffer).setUint32(12, 99, true);
  assert.throws(() => new Reassembler(1 << 20).push(lying), FrameError);
  const few = new Reassembler(1 << 20, 2);
  few.push(splitFrame(frame(5000), 10, 1000)[0]);
  few.push(splitFrame(frame(5000), 11, 1000)[0]);
  assert.throws(
    () => few.push(splitFrame(frame(5000), 12, 1000)[0]),
    (e: unknown) => e instanceof FrameError && e.code === 'too_many_chunked',
  );
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 64 }), (junk) => {
      const bytes = new Uint8Array([...new TextEncoder().encode('EFC1'), ...junk]);
      try {
        new Reassembler(1 << 16).push(bytes);
      } catch (e) {
        assert.ok(e instanceof FrameError, String(e));
      }
    }),
    { numRuns: 500 },
  );
});

test('an oversized chunked frame is refused once; its other chunks are dropped quietly', () => {
  const parts = splitFrame(frame(5000), 9, 1000);
  const r = new Reassembler(2000);
  assert.throws(
    () => r.push(parts[0]),
    (e: unknown) => e instanceof FrameError && e.code === 'too_large',
  );
  for (const p of parts.slice(1)) assert.equal(r.push(p), null);
  const ok = splitFrame(frame(100), 10, 1000);
  assert.ok(ok.length === 1 && r.push(ok[0]) !== null, 'later frames still pass');
});
