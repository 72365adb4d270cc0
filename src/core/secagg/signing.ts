/**
 * Signatures for secure aggregation against a malicious server (Bonawitz et al. 2017, section 4): every client
 * signs its key advertisement and, in the consistency round, the survivor set U3 it was shown, with its
 * Ed25519 identity key. What a signature proves depends on how a client learns its peers' identity keys:
 * that is the PeerTrust a client is given (the paper assumes a PKI). Browser-safe: @noble only.
 *
 *   advert:      "edgefed-secagg-advert-v1"      | u32 len | session | u32 id | c^PK | s^PK
 *   consistency: "edgefed-secagg-consistency-v1" | u32 len | session | u32 count | u32 ids (ascending)
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes } from '../concat.js';

export const IDENTITY_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;

const enc = new TextEncoder();

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

/** Length-prefixed session, so no two (session, rest) pairs serialize alike. */
function withSession(domain: string, session: string, rest: Uint8Array[]): Uint8Array {
  const s = enc.encode(session);
  return concatBytes([enc.encode(domain), u32(s.length), s, ...rest]);
}

export function advertMessage(session: string, id: number, cPublicKey: Uint8Array, sPublicKey: Uint8Array): Uint8Array {
  return withSession('edgefed-secagg-advert-v1', session, [u32(id), cPublicKey, sPublicKey]);
}

/** The survivors must be given ascending (the protocol keeps them so). */
export function consistencyMessage(session: string, survivors: readonly number[]): Uint8Array {
  return withSession('edgefed-secagg-consistency-v1', session, [u32(survivors.length), ...survivors.map(u32)]);
}

export function sign(message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return ed25519.sign(message, secretKey);
}

/** False (never a throw) for a malformed key or signature. */
export function verifySignature(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== SIGNATURE_BYTES || publicKey.length !== IDENTITY_KEY_BYTES) return false;
  try {
    return ed25519.verify(signature, message, publicKey);
  } catch {
    return false;
  }
}

export function identityPublicKey(secretKey: Uint8Array): Uint8Array {
  return ed25519.getPublicKey(secretKey);
}

// ---------------------------------------------------------------- how a client learns its peers' keys

/**
 * Decides whether `identityKey` is the identity key of peer `id`. Returns null when it trusts it, or the
 * reason it does not (recorded as the client's abort reason).
 */
export interface PeerTrust {
  readonly kind: string;
  check(id: number, identityKey: Uint8Array): string | null;
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

/** Keys fixed in advance for each peer id (simulation: derived from the seed; tests). */
export function pinnedPeerTrust(keyOf: (id: number) => Uint8Array | undefined): PeerTrust {
  return {
    kind: 'pinned by id',
    check(id, identityKey) {
      const pinned = keyOf(id);
      if (!pinned) return `client ${id} has no pinned identity key`;
      return hex(pinned) === hex(identityKey)
        ? null
        : `the identity key advertised for client ${id} is not the one pinned for it`;
    },
  };
}

/**
 * A fixed set of trusted identity keys, whoever holds which id (deployment: the fleet's enrolled keys,
 * distributed by someone other than the coordinator). The coordinator cannot add a peer it controls.
 */
export function keySetPeerTrust(keys: readonly Uint8Array[]): PeerTrust {
  const set = new Set(keys.map(hex));
  return {
    kind: `pinned set of ${set.size} keys`,
    check(id, identityKey) {
      return set.has(hex(identityKey))
        ? null
        : `the identity key advertised for client ${id} is not in this node's pinned peer keys`;
    },
  };
}

/**
 * Trust on first use: the first key seen for a peer id is remembered and any other key later refused.
 * It catches a coordinator that substitutes keys after a node first met its peers, not one that lies from
 * the start. `remembered` lets a caller persist the pins.
 */
export function tofuPeerTrust(remembered: Map<number, string> = new Map()): PeerTrust {
  return {
    kind: 'trust on first use',
    check(id, identityKey) {
      const key = hex(identityKey);
      const known = remembered.get(id);
      if (known === undefined) {
        remembered.set(id, key);
        return null;
      }
      if (known === key) return null;
      return `client ${id} advertised identity key ${key.slice(0, 16)}..., not the ${known.slice(0, 16)}... first seen for it`;
    },
  };
}

/**
 * A virtual node's identity secret key, derived from the run seed so simulations stay reproducible. Anyone
 * who knows the seed knows every key: it protects nothing and exists so the signed protocol runs in simulation.
 */
export function simulationIdentityKey(seed: number, nodeId: number): Uint8Array {
  return sha256(enc.encode(`edgefed-sim-identity-v1|${seed}|${nodeId}`));
}
