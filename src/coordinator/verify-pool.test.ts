// The verify pool's worker threads and the event loop's own check agree on every frame: the same frames
// accepted with the same binding and inner bytes, the same refused with the same code (bad signature, wrong
// key, truncated, tampered, unsigned, re-bound, large), including frames that share their buffer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newIdentity, signFrame, type Binding } from '../core/identity.js';
import { FrameError, readableFrame } from '../core/wire.js';
import { nodeCrypto } from '../net/node-crypto.js';
import { verifyNodeFrame, type FrameCheckContext } from './frame-verifier.js';
import { LazyVerifyPool, VerifyPool } from './verify-pool.js';

const node = newIdentity();
const pending: Binding = { run: 3, round: 5, node: 7, nonce: 'a'.repeat(32) };
const ctx: FrameCheckContext = {
  nodeId: 7,
  publicKey: node.publicKey,
  auth: true,
  configuredRun: 3,
  pending,
  seenNonces: new Set(),
  crypto: nodeCrypto,
};

type Outcome = { ok: true; binding: Binding | null; frame: number[] } | { ok: false; code: string };

function outcome(run: () => { binding: Binding | null; frame: Uint8Array }): Outcome {
  try {
    const v = run();
    return { ok: true, binding: v.binding, frame: [...v.frame] };
  } catch (e) {
    return { ok: false, code: e instanceof FrameError ? e.code : `other: ${(e as Error).message}` };
  }
}

function cases(): [string, Uint8Array][] {
  const inner = new TextEncoder().encode('EFW1 an update');
  const good = signFrame(pending, inner, node.secretKey, nodeCrypto);
  const badSig = good.slice();
  badSig[good.length - inner.length - 1] ^= 1; // the signature's last byte
  const tampered = good.slice();
  tampered[tampered.length - 1] ^= 1;
  // A 4 MB update (the size a big model's reply has): verified whole on both paths.
  const big = new Uint8Array(4 * 2 ** 20).map((_, i) => i % 251);
  // Inside a bigger buffer, as a chunk reassembler or socket may hand it over: the pool copies it once.
  const shared = new Uint8Array(good.length + 16);
  shared.set(good, 8);
  return [
    ['good', good],
    ['bad signature', badSig],
    ['tampered payload', tampered],
    ['wrong key', signFrame(pending, inner, newIdentity().secretKey, nodeCrypto)],
    ['truncated in the signature', good.subarray(0, good.length - inner.length - 10).slice()],
    ['truncated in the binding', good.subarray(0, 12).slice()],
    ['unsigned', inner],
    ['bound to another node', signFrame({ ...pending, node: 8 }, inner, node.secretKey, nodeCrypto)],
    ['large', signFrame(pending, big, node.secretKey, nodeCrypto)],
    [
      'large, one bit off',
      (() => {
        const b = signFrame(pending, big, node.secretKey, nodeCrypto);
        b[b.length - 1000] ^= 4;
        return b;
      })(),
    ],
    ['shares its buffer', shared.subarray(8, 8 + good.length)],
  ];
}

/** The pool's path as node-session.ts takes it: signature in a worker, the binding checks here. */
async function offThread(pool: VerifyPool, bytes: Uint8Array): Promise<Outcome> {
  if (bytes.length < 4 || new TextDecoder().decode(bytes.subarray(0, 4)) !== 'EFS1')
    return outcome(() => verifyNodeFrame(bytes, ctx));
  const verified = await pool.verify(bytes, node.publicKey);
  if (!verified.ok) return { ok: false, code: verified.code };
  return outcome(() => verifyNodeFrame(verified.bytes, { ...ctx, signatureChecked: true }));
}

test('worker threads and the event loop accept and refuse the same frames, with the same bytes', async () => {
  const pool = await VerifyPool.start(2);
  try {
    const expected = cases().map(([name, b]) => [name, outcome(() => verifyNodeFrame(b.slice(), ctx))] as const);
    const got = await Promise.all(cases().map(async ([name, b]) => [name, await offThread(pool, b)] as const));
    assert.deepEqual(got, expected);
    // The check really refuses what it should (the comparison alone would pass if both accepted everything).
    const codes = Object.fromEntries(expected.map(([n, verdict]) => [n, verdict.ok ? 'ok' : verdict.code]));
    assert.deepEqual(codes, {
      good: 'ok',
      'bad signature': 'bad_signature',
      'tampered payload': 'bad_signature',
      'wrong key': 'bad_signature',
      'truncated in the signature': 'truncated',
      'truncated in the binding': 'bad_binding',
      unsigned: 'unsigned',
      'bound to another node': 'bad_binding',
      large: 'ok',
      'large, one bit off': 'bad_signature',
      'shares its buffer': 'ok',
    });
  } finally {
    await pool.close();
  }
});

test('many frames at once come back to their own callers, batched over the threads', async () => {
  const pool = await VerifyPool.start(2);
  try {
    const frames = Array.from({ length: 300 }, (_, i) =>
      signFrame(
        { ...pending, nonce: i.toString(16).padStart(32, '0') },
        new Uint8Array([i & 255, 1, 2]),
        node.secretKey,
      ),
    );
    frames[17][frames[17].length - 1] ^= 1;
    const outs = await Promise.all(frames.map((f) => pool.verify(f, node.publicKey)));
    assert.deepEqual(
      outs.map((verdict) => verdict.ok),
      frames.map((_, i) => i !== 17),
    );
    assert.deepEqual([...outs[5].bytes.subarray(-3)], [5, 1, 2]);
  } finally {
    await pool.close();
  }
});

test('the lazy pool stays off below its fleet size and starts at it', async () => {
  const lazy = new LazyVerifyPool(1, 10, (e) => assert.fail(e));
  try {
    assert.equal(lazy.forFleet(9), null);
    assert.equal(lazy.forFleet(10), null); // starting: until it is up, frames are checked on the event loop
    let pool: VerifyPool | null = null;
    for (let i = 0; i < 500 && !pool; i++) {
      await new Promise((r) => setTimeout(r, 10));
      pool = lazy.forFleet(10);
    }
    assert.ok(pool);
    assert.equal(pool.threads, 1);
  } finally {
    await lazy.close();
  }
});

test('each thread is sent a key once and checks every later frame of that node against it, never another key', async () => {
  const pool = await VerifyPool.start(2);
  try {
    const nodes = [newIdentity(), newIdentity(), newIdentity()];
    const inner = new TextEncoder().encode('EFW1 an update');
    const checks = Array.from({ length: 60 }, (_, i) => {
      const signer = nodes[i % 3];
      const frame = signFrame(pending, inner, signer.secretKey, nodeCrypto);
      // Every fifth frame is checked against the next node's key: refused, the others accepted.
      const key = i % 5 === 4 ? nodes[(i + 1) % 3].publicKey : signer.publicKey;
      return pool.verify(frame, key).then((o) => [o.ok, i % 5 !== 4]);
    });
    for (const [ok, expected] of await Promise.all(checks)) assert.equal(ok, expected);
  } finally {
    await pool.close();
  }
});

test("a good frame's update comes back 4-byte aligned, so the event loop reads it without a copy", async () => {
  const pool = await VerifyPool.start(1);
  try {
    const inner = new Uint8Array(4001).map((_, i) => (i * 7) % 256);
    // Rounds of 1 to 4 digits give bindings of every length modulo 4; each frame owned, then inside a bigger buffer.
    for (const round of [5, 55, 555, 5555]) {
      const binding = { ...pending, round };
      for (const at of [-1, 0, 1, 2, 3]) {
        const signed = signFrame(binding, inner, node.secretKey, nodeCrypto);
        let bytes = signed;
        if (at >= 0) {
          const shared = new Uint8Array(signed.length + 8);
          shared.set(signed, at);
          bytes = shared.subarray(at, at + signed.length);
        }
        const verified = await pool.verify(bytes, node.publicKey);
        assert.ok(verified.ok, `round ${round} at ${at}`);
        const { frame } = verifyNodeFrame(verified.bytes, { ...ctx, pending: binding, signatureChecked: true });
        assert.equal(frame.byteOffset % 4, 0, `round ${round} at ${at}`);
        assert.deepEqual(frame, inner);
        assert.equal(readableFrame(frame, true), frame, 'adopted in place, not copied');
      }
    }
    // A refused frame comes back as it went: nothing is copied for it.
    const bad = signFrame(pending, inner, newIdentity().secretKey, nodeCrypto);
    const refused = await pool.verify(bad, node.publicKey);
    assert.equal(refused.ok, false);
    assert.equal(refused.bytes.byteOffset, 0);
  } finally {
    await pool.close();
  }
});
