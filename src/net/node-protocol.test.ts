import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { newIdentity } from '../core/identity.js';
import {
  canonicalJson,
  makeHello,
  PROTOCOL_VERSION,
  verifyHelloSignature,
  type HelloDeclaration,
} from './node-protocol.js';

const declared: HelloDeclaration = {
  name: 'n0',
  resources: { cores: 4, memoryMb: 2048, samplesPerSecond: 900 },
  tags: { site: 'a', class: 'edge' },
};
const challenge = '0123456789abcdef0123456789abcdef';

test('a hello verifies only over its own challenge and exactly what it declares', () => {
  const { secretKey, publicKey } = newIdentity();
  const hello = makeHello(challenge, declared, secretKey);
  assert.equal(hello.protocol, PROTOCOL_VERSION);
  assert.ok(verifyHelloSignature(challenge, hello, publicKey));
  // what a JSON round trip does to it (the coordinator parses text) changes nothing
  assert.ok(verifyHelloSignature(challenge, JSON.parse(JSON.stringify(hello)), publicKey));
  assert.equal(
    verifyHelloSignature('f'.repeat(32), hello, publicKey),
    false,
    "another connection's challenge: a replay",
  );
  const changed: Partial<HelloDeclaration & { protocol: number }>[] = [
    { name: 'n1' },
    { tags: { site: 'b', class: 'edge' } },
    { tags: { ...declared.tags, extra: 'x' } },
    { resources: { ...declared.resources, cores: 64 } },
    { resources: { cores: 4, memoryMb: 2048 } },
    { protocol: 1 },
  ];
  for (const c of changed)
    assert.equal(verifyHelloSignature(challenge, { ...hello, ...c }, publicKey), false, JSON.stringify(c));
  assert.equal(verifyHelloSignature(challenge, hello, newIdentity().publicKey), false, 'another key');
  assert.equal(verifyHelloSignature(challenge, makeHello(challenge, declared), publicKey), false, 'unsigned');
  assert.equal(verifyHelloSignature(challenge, { ...hello, signature: 'zz' }, publicKey), false, 'malformed signature');
});

test('canonicalJson does not depend on key order, and is JSON', () => {
  const value = fc.letrec((tie) => ({
    leaf: fc.oneof(
      fc.string(),
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.boolean(),
      fc.constant(null),
    ),
    node: fc.oneof(
      { depthSize: 'small' },
      tie('leaf'),
      fc.array(tie('node'), { maxLength: 4 }),
      fc.dictionary(fc.string(), tie('node'), { maxKeys: 4 }),
    ),
  })).node;
  fc.assert(
    fc.property(value, (v) => {
      const reversed = JSON.parse(JSON.stringify(v), (_k, x) =>
        x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).reverse()) : x,
      );
      assert.equal(canonicalJson(reversed), canonicalJson(v));
      assert.deepEqual(JSON.parse(canonicalJson(v)), JSON.parse(JSON.stringify(v)));
    }),
  );
});
