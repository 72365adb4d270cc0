import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newIdentity, nobleCrypto, openSignedFrame, signFrame, type Binding } from '../core/identity.js';
import { makeHello, verifyHelloSignature } from './node-protocol.js';
import { signRequestHeaders, verifyRequest, AUTH_HEADERS } from '../core/request-auth.js';
import fc from 'fast-check';
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
    assert.throws(
      () => openSignedFrame(signed, other.publicKey, impl),
      (e: unknown) => e instanceof FrameError && e.code === 'bad_signature',
    );
    const tampered = signed.slice();
    tampered[tampered.length - 1] ^= 1;
    assert.throws(
      () => openSignedFrame(tampered, id.publicKey, impl),
      (e: unknown) => e instanceof FrameError && e.code === 'bad_signature',
    );
  }
  assert.equal(nodeCrypto.verify(new Uint8Array(64), new Uint8Array(1), new Uint8Array(31)), false, 'short key');
});

test('keys are interchangeable: what one implementation signs the other verifies, with the same signature bytes', () => {
  const frame = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7) % 256);
  for (const [signer, verifier] of [
    [nobleCrypto, nodeCrypto],
    [nodeCrypto, nobleCrypto],
  ]) {
    const id = newIdentity();
    const signed = signFrame(binding, frame, id.secretKey, signer);
    assert.deepEqual(openSignedFrame(signed, id.publicKey, verifier).frame, frame);
    const hello = makeHello(
      binding.nonce,
      { name: 'node-1', resources: { cores: 2 }, tags: { site: 'a' } },
      id.secretKey,
      signer,
    );
    assert.equal(verifyHelloSignature(binding.nonce, hello, id.publicKey, verifier), true);
    assert.equal(
      verifyHelloSignature(binding.nonce, { ...hello, name: 'node-2' }, id.publicKey, verifier),
      false,
      'other name',
    );
    const request = {
      name: 'node-1',
      timestamp: 1,
      nonce: binding.nonce,
      method: 'GET',
      path: '/v1/models',
      body: new Uint8Array(),
    };
    const sig = signRequestHeaders(request, id.secretKey, signer)[AUTH_HEADERS.signature];
    assert.equal(verifyRequest(request, sig, id.publicKey, verifier), true);
    assert.equal(verifyRequest({ ...request, path: '/v1/other' }, sig, id.publicKey, verifier), false, 'other path');
  }
});

test('node:crypto signs exactly as noble does (Ed25519 is deterministic)', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.uint8Array({ maxLength: 300 }),
      (secretKey, message) => {
        assert.deepEqual(nodeCrypto.sign(message, secretKey), nobleCrypto.sign(message, secretKey));
      },
    ),
    { numRuns: 50 },
  );
});

test('node:crypto refuses a secret key of the wrong length, and a reused key array signs with its new bytes', () => {
  assert.throws(() => nodeCrypto.sign(new Uint8Array(1), new Uint8Array(31)), /secret key must be 32 bytes, got 31/);
  const key = newIdentity().secretKey;
  const message = new Uint8Array([1, 2, 3]);
  const first = nodeCrypto.sign(message, key);
  key.set(newIdentity().secretKey);
  assert.notDeepEqual(nodeCrypto.sign(message, key), first);
  assert.deepEqual(nodeCrypto.sign(message, key), nobleCrypto.sign(message, key));
});
