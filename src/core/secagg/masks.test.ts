import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chacha20 } from '@noble/ciphers/chacha.js';
import { Rng } from '../rng.js';
import { rngRandomBytes } from './random.js';
import { addMask, agreeKey, decryptShares, encryptShares, expandSeed, generateKeyPair, pairwiseSeed } from './masks.js';

const rb = rngRandomBytes(new Rng(42));

test('pairwise seeds agree from both ends and differ per session, pair and purpose', () => {
  const u = generateKeyPair(rb);
  const v = generateKeyPair(rb);
  const w = generateKeyPair(rb);
  const uv = pairwiseSeed(u.secretKey, v.publicKey, 's1');
  assert.equal(uv.length, 32);
  assert.deepEqual(pairwiseSeed(v.secretKey, u.publicKey, 's1'), uv);
  assert.notDeepEqual(pairwiseSeed(u.secretKey, v.publicKey, 's2'), uv);
  assert.notDeepEqual(pairwiseSeed(u.secretKey, w.publicKey, 's1'), uv);
  assert.notDeepEqual(agreeKey(u.secretKey, v.publicKey, 'share-encryption', 's1'), uv);
});

test('agreement with a low-order or malformed public key fails with a clear error', () => {
  const u = generateKeyPair(rb);
  assert.throws(() => pairwiseSeed(u.secretKey, new Uint8Array(32), 's'), /X25519 failed .* public key is invalid/);
  assert.throws(() => pairwiseSeed(u.secretKey, new Uint8Array(31), 's'), /public key must be 32 bytes/);
});

test('PRG is the ChaCha20 keystream read as little-endian u32, across 64 KiB chunk boundaries', () => {
  const seed = rb(32);
  const len = 16384 * 2 + 5;
  const ks = chacha20(seed, new Uint8Array(12), new Uint8Array(len * 4));
  const dv = new DataView(ks.buffer);
  const m = expandSeed(seed, len);
  for (const j of [0, 1, 16383, 16384, 16385, 32767, 32768, len - 1])
    assert.equal(m[j], dv.getUint32(4 * j, true), `word ${j}`);
  assert.deepEqual(expandSeed(seed, 7), m.subarray(0, 7));
  assert.equal(expandSeed(seed, 0).length, 0);
  assert.throws(() => expandSeed(new Uint8Array(16), 4), /seed must be 32 bytes/);
});

test('masks cancel: +PRG then -PRG returns the input exactly (mod 2^32)', () => {
  const x = new Uint32Array(1000).map((_, i) => (i * 2654435761) >>> 0);
  const y = x.slice();
  const s = rb(32);
  addMask(y, s, 1);
  assert.notDeepEqual(y, x);
  addMask(y, s, -1);
  assert.deepEqual(y, x);
});

test('PRG words look uniform: mean ~ 2^31 and the 16 top-nibble buckets are even', () => {
  const m = expandSeed(rb(32), 64000);
  let mean = 0;
  const buckets = new Array(16).fill(0);
  for (const w of m) {
    mean += w / m.length;
    buckets[w >>> 28]++;
  }
  assert.ok(Math.abs(mean / 2 ** 31 - 1) < 0.01);
  const e = m.length / 16;
  const chi2 = buckets.reduce((a, b) => a + ((b - e) * (b - e)) / e, 0);
  assert.ok(chi2 < 37.7, `chi2 ${chi2}`); // 99.9% quantile of chi2 with 15 degrees of freedom
});

test('share encryption round trips only for the right key, direction and session', () => {
  const u = generateKeyPair(rb);
  const v = generateKeyPair(rb);
  const kuv = agreeKey(u.secretKey, v.publicKey, 'share-encryption', 's');
  const kvu = agreeKey(v.secretKey, u.publicKey, 'share-encryption', 's');
  const msg = rb(104);
  const ct = encryptShares(kuv, 1, 2, 's', msg);
  assert.equal(ct.length, 120);
  assert.deepEqual(decryptShares(kvu, 1, 2, 's', ct), msg);
  assert.notDeepEqual(encryptShares(kuv, 2, 1, 's', msg), ct); // other direction: other nonce
  assert.throws(() => decryptShares(kvu, 2, 1, 's', ct), /shares from client 2 to client 1 do not authenticate/);
  assert.throws(() => decryptShares(kvu, 1, 2, 'other', ct), /do not authenticate/);
  const bad = ct.slice();
  bad[5] ^= 1;
  assert.throws(() => decryptShares(kvu, 1, 2, 's', bad), /do not authenticate/);
});
