/**
 * The cryptographic building blocks of secure aggregation (Bonawitz et al. 2017), all from @noble:
 *
 *   - key agreement: X25519. Each client has two key pairs per session: c (encrypts the Shamir shares
 *     it sends) and s (agrees the pairwise mask seeds).
 *   - KDF: HKDF-SHA256(ikm = X25519(a^SK, b^PK), salt = "EdgeFed secagg v1", info = purpose || session),
 *     so the same key pair never yields the same seed in two sessions or for two purposes.
 *   - PRG: the ChaCha20 keystream (RFC 8439, zero nonce, counter from 0) of a 32-byte seed, read as
 *     little-endian uint32 words: one word per model coordinate, uniform mod 2^32.
 *   - share transport: ChaCha20-Poly1305 under the c-key agreement, nonce = (from, to) so each direction of
 *     a pair gets its own nonce, AAD = the session id; the plaintext repeats (from, to) as in the paper.
 *
 * Pure functions, no platform APIs: the same code runs in Node and in browsers.
 */
import { x25519 } from '@noble/curves/ed25519.js';
import { chacha20, chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { drawBytes, type RandomBytes } from './random.js';

export const KEY_BYTES = 32;
export const SEED_BYTES = 32;
const KDF_SALT = new TextEncoder().encode('EdgeFed secagg v1');
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export interface KeyPair {
  secretKey: Uint8Array;
  publicKey: Uint8Array;
}

/** A fresh X25519 key pair from 32 random bytes (clamped by X25519 itself). */
export function generateKeyPair(randomBytes: RandomBytes): KeyPair {
  const secretKey = drawBytes(randomBytes, KEY_BYTES, 'generateKeyPair');
  return { secretKey, publicKey: x25519.getPublicKey(secretKey) };
}

/** The public key of an X25519 secret key. */
export function publicKeyOf(secretKey: Uint8Array): Uint8Array {
  return x25519.getPublicKey(secretKey);
}

export type KdfPurpose = 'pairwise-mask' | 'share-encryption';

/** HKDF-SHA256 of X25519(secretKey, publicKey) bound to a purpose and session. Throws on a low-order public key. */
export function agreeKey(
  secretKey: Uint8Array,
  publicKey: Uint8Array,
  purpose: KdfPurpose,
  session: string,
): Uint8Array {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== KEY_BYTES)
    throw new Error(`agreeKey: public key must be ${KEY_BYTES} bytes`);
  let shared: Uint8Array;
  try {
    shared = x25519.getSharedSecret(secretKey, publicKey);
  } catch (e) {
    throw new Error(`agreeKey: X25519 failed (${(e as Error).message}); the peer's public key is invalid`);
  }
  const info = new TextEncoder().encode(`${purpose}|${session}`);
  return hkdf(sha256, shared, KDF_SALT, info, SEED_BYTES);
}

/** Pairwise mask seed s_{u,v} = s_{v,u}: from u's s^SK and v's s^PK (or the other way round). */
export function pairwiseSeed(sSecretKey: Uint8Array, peerSPublicKey: Uint8Array, session: string): Uint8Array {
  return agreeKey(sSecretKey, peerSPublicKey, 'pairwise-mask', session);
}

const PRG_NONCE = new Uint8Array(12);
/** Words generated per ChaCha20 call: 16 KiB words = 64 KiB = 1024 blocks, so chunk i starts at counter 1024 i. */
const PRG_CHUNK_WORDS = 16384;
const PRG_CHUNK_BLOCKS = (PRG_CHUNK_WORDS * 4) / 64;
const PRG_ZEROS = new Uint8Array(PRG_CHUNK_WORDS * 4);

/**
 * Adds sign * PRG(seed) to acc, word by word mod 2^32 (the PRG output is never stored whole: it is made
 * 64 KiB at a time). PRG(seed)[j] is the j-th little-endian uint32 of the ChaCha20 keystream.
 */
export function addMask(acc: Uint32Array, seed: Uint8Array, sign: 1 | -1): Uint32Array {
  if (!(seed instanceof Uint8Array) || seed.length !== SEED_BYTES)
    throw new Error(`addMask: seed must be ${SEED_BYTES} bytes`);
  if (acc.length > 2 ** 32 * 16) throw new Error('addMask: vector too long for one ChaCha20 stream');
  const buf = new Uint8Array(PRG_CHUNK_WORDS * 4);
  const words = new Uint32Array(buf.buffer);
  const view = new DataView(buf.buffer);
  for (let start = 0, block = 0; start < acc.length; start += PRG_CHUNK_WORDS, block += PRG_CHUNK_BLOCKS) {
    const n = Math.min(PRG_CHUNK_WORDS, acc.length - start);
    const bytes = Math.ceil((n * 4) / 64) * 64;
    chacha20(seed, PRG_NONCE, PRG_ZEROS.subarray(0, bytes), buf.subarray(0, bytes), block);
    if (LITTLE_ENDIAN) {
      if (sign === 1) for (let j = 0; j < n; j++) acc[start + j] += words[j];
      else for (let j = 0; j < n; j++) acc[start + j] -= words[j];
    } else {
      for (let j = 0; j < n; j++) acc[start + j] += sign * view.getUint32(4 * j, true);
    }
  }
  return acc;
}

/** PRG(seed) expanded to `length` uint32 words (a fresh array). */
export function expandSeed(seed: Uint8Array, length: number): Uint32Array {
  if (!Number.isInteger(length) || length < 0)
    throw new Error(`expandSeed: length must be a whole number, got ${length}`);
  return addMask(new Uint32Array(length), seed, 1);
}

function directionNonce(from: number, to: number): Uint8Array {
  const nonce = new Uint8Array(12);
  const v = new DataView(nonce.buffer);
  v.setUint32(0, from, true);
  v.setUint32(4, to, true);
  return nonce;
}

function shareAad(session: string): Uint8Array {
  return new TextEncoder().encode(`secagg-shares|${session}`);
}

/**
 * Encrypts the payload u -> v under the key agreed from u's c^SK and v's c^PK. The key is the same in
 * both directions; the nonce (from, to) differs, and each direction carries one message per session.
 */
export function encryptShares(
  key: Uint8Array,
  from: number,
  to: number,
  session: string,
  payload: Uint8Array,
): Uint8Array {
  return chacha20poly1305(key, directionNonce(from, to), shareAad(session)).encrypt(payload);
}

/** Decrypts what encryptShares produced; throws a clear error if the tag does not verify. */
export function decryptShares(
  key: Uint8Array,
  from: number,
  to: number,
  session: string,
  ciphertext: Uint8Array,
): Uint8Array {
  try {
    return chacha20poly1305(key, directionNonce(from, to), shareAad(session)).decrypt(ciphertext);
  } catch {
    throw new Error(
      `decryptShares: the shares from client ${from} to client ${to} do not authenticate (wrong key, session or tampered ciphertext)`,
    );
  }
}

/** Byte equality without an early exit. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}
