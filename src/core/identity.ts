/**
 * Node identity and frame authentication (browser-safe). Each node holds an Ed25519 key pair; the
 * coordinator learns the public key when the node enrols with a one-time join token.
 *
 * Frames are wrapped with a binding { run, round, node, nonce }: the coordinator binds every request to a
 * fresh nonce, and a node signs its reply together with the same binding, so a reply is valid for exactly
 * one request. A replayed or re-targeted frame fails the nonce or binding check.
 *   bound (coordinator -> node):  "EFB1" | u32 LE binding length | binding JSON | frame
 *   signed (node -> coordinator): "EFS1" | u32 LE binding length | binding JSON | 64-byte signature | frame
 * The signature covers "edgefed-frame-v1" | binding JSON | sha256(frame). (The hello's signature is defined with the
 * rest of the node protocol in net/node-protocol.ts.)
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes } from './concat.js';
import { FrameError } from './wire.js';

export interface Binding {
  run: number;
  round: number;
  node: number;
  nonce: string;
}

const DOMAIN = new TextEncoder().encode('edgefed-frame-v1');
const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });
const MAX_BINDING = 1024;

export function newIdentity(): { secretKey: Uint8Array; publicKey: Uint8Array } {
  const secretKey = ed25519.utils.randomSecretKey();
  return { secretKey, publicKey: ed25519.getPublicKey(secretKey) };
}

export function publicKeyOf(secretKey: Uint8Array): Uint8Array {
  return ed25519.getPublicKey(secretKey);
}

export const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

export function fromHex(s: string, bytes: number, what: string): Uint8Array {
  if (typeof s !== 'string' || s.length !== bytes * 2 || !/^[0-9a-f]+$/i.test(s))
    throw new FrameError('bad_key', `${what} must be ${bytes * 2} hex digits`);
  return Uint8Array.from(s.match(/../g)!, (h) => parseInt(h, 16));
}

/** Compares bytes, not decoded text: a strict UTF-8 decoder would throw on arbitrary leading bytes. */
function magicIs(bytes: Uint8Array, magic: string): boolean {
  return bytes.length >= 4 && [0, 1, 2, 3].every((i) => bytes[i] === magic.charCodeAt(i));
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

function checkBinding(raw: unknown): Binding {
  const b = raw as Partial<Binding>;
  if (
    typeof b !== 'object' ||
    b === null ||
    !Number.isInteger(b.run) ||
    !Number.isInteger(b.round) ||
    !Number.isInteger(b.node) ||
    typeof b.nonce !== 'string' ||
    !/^[0-9a-f]{32}$/.test(b.nonce)
  ) {
    throw new FrameError('bad_binding', 'binding must be { run, round, node: integers, nonce: 32 hex digits }');
  }
  return { run: b.run!, round: b.round!, node: b.node!, nonce: b.nonce };
}

function readBinding(bytes: Uint8Array): { binding: Binding; json: Uint8Array; end: number } {
  if (bytes.length < 8) throw new FrameError('truncated', 'bound frame is shorter than its prefix');
  const len = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4, true);
  if (len > MAX_BINDING || 8 + len > bytes.length)
    throw new FrameError('bad_binding', `binding length ${len} does not fit`);
  const json = bytes.subarray(8, 8 + len);
  let parsed: unknown;
  try {
    parsed = JSON.parse(dec.decode(json));
  } catch {
    throw new FrameError('bad_binding', 'binding is not valid UTF-8 JSON');
  }
  return { binding: checkBinding(parsed), json, end: 8 + len };
}

export function bindFrame(binding: Binding, frame: Uint8Array): Uint8Array {
  return concatBytes([bindingPrefix(binding), frame]);
}

/** What bindFrame puts before the frame: bindingPrefix(b) followed by the frame's bytes is bindFrame(b, frame). */
export function bindingPrefix(binding: Binding): Uint8Array {
  const json = enc.encode(JSON.stringify(checkBinding(binding)));
  return concatBytes([enc.encode('EFB1'), u32(json.length), json]);
}

export function isBound(bytes: Uint8Array): boolean {
  return magicIs(bytes, 'EFB1');
}

export function unbindFrame(bytes: Uint8Array): { binding: Binding; frame: Uint8Array } {
  if (!magicIs(bytes, 'EFB1')) throw new FrameError('unbound', 'frame carries no binding');
  const { binding, end } = readBinding(bytes);
  return { binding, frame: bytes.subarray(end) };
}

/**
 * Hashing, signing and signature checks can be swapped for faster platform ones (node:crypto in Node processes:
 * the coordinator and Node agents); noble is the browser-safe default. Keys are raw 32-byte Ed25519 keys in both.
 */
export interface CryptoImpl {
  sha256(bytes: Uint8Array): Uint8Array;
  verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
  /** The 64-byte Ed25519 signature of message with a raw 32-byte secret key. */
  sign(message: Uint8Array, secretKey: Uint8Array): Uint8Array;
}

export const nobleCrypto: CryptoImpl = {
  sha256: (b) => sha256(b),
  verify: (sig, msg, pk) => ed25519.verify(sig, msg, pk),
  sign: (msg, sk) => ed25519.sign(msg, sk),
};

function signedMessage(json: Uint8Array, frame: Uint8Array, hash: (b: Uint8Array) => Uint8Array = sha256): Uint8Array {
  return concatBytes([DOMAIN, json, hash(frame)]);
}

export function signFrame(
  binding: Binding,
  frame: Uint8Array,
  secretKey: Uint8Array,
  crypto: CryptoImpl = nobleCrypto,
): Uint8Array {
  const json = enc.encode(JSON.stringify(checkBinding(binding)));
  const sig = crypto.sign(signedMessage(json, frame, crypto.sha256), secretKey);
  return concatBytes([enc.encode('EFS1'), u32(json.length), json, sig, frame]);
}

export function isSigned(bytes: Uint8Array): boolean {
  return magicIs(bytes, 'EFS1');
}

/** A signed frame's parts, unverified: binding, signature and the inner frame (bounds-checked). */
function splitSignedFrame(bytes: Uint8Array): {
  binding: Binding;
  json: Uint8Array;
  sig: Uint8Array;
  frame: Uint8Array;
} {
  if (!magicIs(bytes, 'EFS1')) throw new FrameError('unsigned', 'frame is not signed');
  const { binding, json, end } = readBinding(bytes);
  if (bytes.length < end + 64) throw new FrameError('truncated', 'signed frame has no room for its signature');
  return { binding, json, sig: bytes.subarray(end, end + 64), frame: bytes.subarray(end + 64) };
}

/** Verifies a signed frame; FrameError 'unsigned' or 'bad_signature' when it is not from the key's holder. */
export function openSignedFrame(
  bytes: Uint8Array,
  publicKey: Uint8Array,
  crypto: CryptoImpl = nobleCrypto,
): { binding: Binding; frame: Uint8Array } {
  const { binding, json, sig, frame } = splitSignedFrame(bytes);
  let ok = false;
  try {
    ok = crypto.verify(sig, signedMessage(json, frame, crypto.sha256), publicKey);
  } catch {
    ok = false;
  }
  if (!ok) throw new FrameError('bad_signature', "signature does not verify with the node's key");
  return { binding, frame };
}

/**
 * A signed frame's binding and inner frame WITHOUT checking the signature: only for a coordinator run with
 * authentication off (it trusts the network and holds no node keys), where nodes still sign by habit.
 */
export function readSignedFrameUnverified(bytes: Uint8Array): { binding: Binding; frame: Uint8Array } {
  const { binding, frame } = splitSignedFrame(bytes);
  return { binding, frame };
}

export function randomNonce(randomBytes: (n: number) => Uint8Array): string {
  return toHex(randomBytes(16));
}
