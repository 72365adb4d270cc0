import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newIdentity, nobleCrypto, openSignedFrame, signFrame, type Binding } from '../core/identity.js';
import { FrameError } from '../core/wire.js';
import { nodeCrypto } from './node-crypto.js';

const binding: Binding = { run: 1, round: 2, node: 3, nonce: '0123456789abcdef0123456789abcdef' };

test('node:crypto and noble agree on hashes and Ed25519 signatures, including rejections', () => {
  const id = newIdentity();
  const other = newIdentity();
  const frame = Uint8Array.from({ length: 5000 }, (_, i) => i % 251);
  assert.deepEqual(nodeCrypto.sha256(frame), nobleCrypto.sha256(frame));
  const signed = signFrame(binding, frame, id.secretKey);
  for (const impl of [nobleCrypto, nodeCrypto]) {
    const opened = openSignedFrame(signed, id.publicKey, impl);
    assert.deepEqual(opened.binding, binding);
    assert.deepEqual(opened.frame, frame);
    assert.throws(() => openSignedFrame(signed, other.publicKey, impl), (e: unknown) => e instanceof FrameError && e.code === 'bad_signature');
    const tampered = signed.slice();
    tampered[tampered.length - 1] ^= 1;
    assert.throws(() => openSignedFrame(tampered, id.publicKey, impl), (e: unknown) => e instanceof FrameError && e.code === 'bad_signature');
  }
  assert.equal(nodeCrypto.verify(new Uint8Array(64), new Uint8Array(1), new Uint8Array(31)), false, 'short key');
});
