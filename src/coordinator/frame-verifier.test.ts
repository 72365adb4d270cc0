import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newIdentity, signFrame, type Binding } from '../core/identity.js';
import { FrameError } from '../core/wire.js';
import { verifyNodeFrame, type FrameCheckContext } from './frame-verifier.js';

const node = newIdentity();
const pending: Binding = { run: 3, round: 5, node: 7, nonce: 'a'.repeat(32) };
const inner = new TextEncoder().encode('EFW1 an update');
const ctx = (over: Partial<FrameCheckContext> = {}): FrameCheckContext => ({
  nodeId: 7,
  publicKey: node.publicKey,
  auth: true,
  configuredRun: 3,
  pending,
  seenNonces: new Set(),
  ...over,
});
const refused = (bytes: Uint8Array, c: FrameCheckContext, code: string) =>
  assert.throws(
    () => verifyNodeFrame(bytes, c),
    (e: unknown) => e instanceof FrameError && e.code === code,
    code,
  );

test('a frame signed by the node for the pending request passes, with its binding and inner frame', () => {
  const out = verifyNodeFrame(signFrame(pending, inner, node.secretKey), ctx());
  assert.deepEqual(out.binding, pending);
  assert.deepEqual(out.frame, inner);
  // an earlier round's answer passes the verifier (it is late, and the transport records it as such)
  assert.ok(
    verifyNodeFrame(signFrame({ ...pending, round: 4, nonce: 'b'.repeat(32) }, inner, node.secretKey), ctx()).binding,
  );
});

test('unsigned, wrongly signed, re-bound, replayed and future-round frames are refused with their code', () => {
  refused(inner, ctx(), 'unsigned');
  refused(signFrame(pending, inner, newIdentity().secretKey), ctx(), 'bad_signature');
  const tampered = signFrame(pending, inner, node.secretKey);
  tampered[tampered.length - 1] ^= 1;
  refused(tampered, ctx(), 'bad_signature');
  refused(signFrame(pending, inner, node.secretKey), ctx({ publicKey: null }), 'unauthenticated');
  refused(signFrame({ ...pending, node: 8 }, inner, node.secretKey), ctx(), 'bad_binding');
  refused(signFrame({ ...pending, run: 2 }, inner, node.secretKey), ctx(), 'bad_binding');
  refused(signFrame(pending, inner, node.secretKey), ctx({ seenNonces: new Set([pending.nonce]) }), 'replayed');
  refused(signFrame({ ...pending, nonce: 'c'.repeat(32) }, inner, node.secretKey), ctx(), 'replayed');
  refused(signFrame({ ...pending, round: 6 }, inner, node.secretKey), ctx(), 'wrong_round');
});

test('with auth off, unsigned frames pass and signed ones are read without a key', () => {
  assert.deepEqual(verifyNodeFrame(inner, ctx({ auth: false, publicKey: null })), { binding: null, frame: inner });
  const out = verifyNodeFrame(
    signFrame(pending, inner, newIdentity().secretKey),
    ctx({ auth: false, publicKey: null }),
  );
  assert.deepEqual(out.binding, pending);
  refused(
    signFrame({ ...pending, node: 1 }, inner, node.secretKey),
    ctx({ auth: false, publicKey: null }),
    'bad_binding',
  );
});
