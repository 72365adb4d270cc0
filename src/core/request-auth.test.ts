import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newIdentity } from './identity.js';
import { makeHello } from '../net/node-protocol.js';
import {
  AUTH_HEADERS,
  canonicalBody,
  signRequestHeaders,
  verifyRequest,
  type SignedRequestFields,
} from './request-auth.js';

test('a signed request verifies only unchanged, with the right key, and never as another domain', () => {
  const { secretKey, publicKey } = newIdentity();
  const r: SignedRequestFields = {
    name: 'n0',
    timestamp: 1_700_000_000_000,
    nonce: '0123456789abcdef0123456789abcdef',
    method: 'POST',
    path: '/v1/predict',
    body: canonicalBody({ inputs: [[1, 2]] }),
  };
  const sig = signRequestHeaders(r, secretKey)[AUTH_HEADERS.signature];
  assert.ok(verifyRequest(r, sig, publicKey));
  assert.ok(verifyRequest({ ...r, method: 'post' }, sig, publicKey), 'method case does not matter');
  for (const changed of [
    { name: 'n1' },
    { timestamp: r.timestamp + 1 },
    { nonce: 'f'.repeat(32) },
    { method: 'GET' },
    { path: '/v1/runs/1/models' },
    { body: canonicalBody({ inputs: [[1, 3]] }) },
  ]) {
    assert.equal(verifyRequest({ ...r, ...changed }, sig, publicKey), false, JSON.stringify(Object.keys(changed)));
  }
  assert.equal(verifyRequest(r, sig, newIdentity().publicKey), false);
  assert.equal(verifyRequest(r, 'zz', publicKey), false);
  assert.equal(
    verifyRequest(r, makeHello(r.nonce, { name: r.name, resources: {}, tags: {} }, secretKey).signature!, publicKey),
    false,
    'a hello signature is not a request signature',
  );
  assert.deepEqual(canonicalBody(undefined), new Uint8Array(0));
});
