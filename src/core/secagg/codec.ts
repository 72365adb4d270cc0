/**
 * Secure-aggregation messages in EdgeFed's binary frame (wire.ts): the small byte fields (public keys,
 * ciphertexts, shares) travel as hex in the JSON header, the masked vector as a raw int32 tensor named
 * 'masked' (the same bits as the Uint32Array). The frame type is the message's `type`.
 *
 * decodeSecAggMessage trusts nothing: it checks every field's type, id range and byte length and throws
 * FrameError('bad_secagg', ...) otherwise; the state machines then check the protocol-level rules.
 * Header size: a ShareKeys or KeyRoster message grows by about 260 header bytes per client, so the
 * 1 MiB header limit of wire.ts allows a few thousand clients per session.
 */
import { decodeFrame, encodeFrame, FrameError, type Frame } from '../wire.js';
import { KEY_BYTES } from './masks.js';
import {
  CIPHERTEXT_BYTES,
  SHARE_BYTES,
  type ClientId,
  type ClientKeys,
  type ServerInbound,
  type ServerOutbound,
} from './protocol.js';
import { IDENTITY_KEY_BYTES, SIGNATURE_BYTES } from './signing.js';

export type SecAggMessage = ServerInbound | ServerOutbound;

const MAX_LIST = 1 << 16;

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

function bad(msg: string): never {
  throw new FrameError('bad_secagg', msg);
}

function unhex(s: unknown, bytes: number, what: string): Uint8Array {
  if (typeof s !== 'string' || s.length !== bytes * 2 || !/^[0-9a-f]*$/i.test(s))
    bad(`${what} must be ${bytes * 2} hex digits`);
  const out = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function id(v: unknown, what: string): ClientId {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 0xffffffff)
    bad(`${what} must be an integer in [1, 2^32 - 1]`);
  return v;
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 256) bad(`${what} must be a string of 1 to 256 characters`);
  return v;
}

function list(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v) || v.length > MAX_LIST) bad(`${what} must be a list of at most ${MAX_LIST} entries`);
  return v;
}

function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(`${what} must be an object`);
  return v as Record<string, unknown>;
}

/** A client's advertised keys as header fields; the identity key and signature only when signed. */
function keysFields(k: ClientKeys): Record<string, unknown> {
  const signed = k.identityKey && k.signature ? { identity: hex(k.identityKey), sig: hex(k.signature) } : {};
  return { id: k.id, c: hex(k.cPublicKey), s: hex(k.sPublicKey), ...signed };
}

function readKeys(k: Record<string, unknown>, what: string): ClientKeys {
  const keys: ClientKeys = {
    id: id(k.id, `${what}id`),
    cPublicKey: unhex(k.c, KEY_BYTES, `${what}c`),
    sPublicKey: unhex(k.s, KEY_BYTES, `${what}s`),
  };
  if (k.identity === undefined && k.sig === undefined) return keys;
  return {
    ...keys,
    identityKey: unhex(k.identity, IDENTITY_KEY_BYTES, `${what}identity`),
    signature: unhex(k.sig, SIGNATURE_BYTES, `${what}sig`),
  };
}

export function encodeSecAggMessage(msg: SecAggMessage): Uint8Array {
  switch (msg.type) {
    case 'secagg.advertise-keys':
      return encodeFrame(msg.type, { session: msg.session, ...keysFields(msg) });
    case 'secagg.key-roster':
      return encodeFrame(msg.type, { session: msg.session, clients: msg.clients.map(keysFields) });
    case 'secagg.share-keys':
      return encodeFrame(msg.type, {
        session: msg.session,
        from: msg.from,
        shares: msg.shares.map((e) => ({ to: e.to, ct: hex(e.ciphertext) })),
      });
    case 'secagg.forwarded-shares':
      return encodeFrame(msg.type, {
        session: msg.session,
        to: msg.to,
        shares: msg.shares.map((e) => ({ from: e.from, ct: hex(e.ciphertext) })),
      });
    case 'secagg.masked-input': {
      const m = msg.masked;
      const data = new Int32Array(m.buffer, m.byteOffset, m.length);
      return encodeFrame(msg.type, { session: msg.session, from: msg.from }, [
        { name: 'masked', dtype: 'int32', shape: [m.length], data },
      ]);
    }
    case 'secagg.consistency-request':
      return encodeFrame(msg.type, { session: msg.session, survivors: msg.survivors });
    case 'secagg.consistency-signature':
      return encodeFrame(msg.type, { session: msg.session, from: msg.from, sig: hex(msg.signature) });
    case 'secagg.unmask-request': {
      const signatures = msg.signatures
        ? { signatures: msg.signatures.map((e) => ({ from: e.from, sig: hex(e.signature) })) }
        : {};
      return encodeFrame(msg.type, { session: msg.session, survivors: msg.survivors, ...signatures });
    }
    case 'secagg.unmask-shares': {
      const shares = (l: { of: ClientId; share: Uint8Array }[]) => l.map((e) => ({ of: e.of, share: hex(e.share) }));
      return encodeFrame(msg.type, {
        session: msg.session,
        from: msg.from,
        selfMaskShares: shares(msg.selfMaskShares),
        keyShares: shares(msg.keyShares),
      });
    }
    default:
      throw new Error(`encodeSecAggMessage: unknown message type ${String((msg as { type?: unknown }).type)}`);
  }
}

/** True for frame types this codec handles (for routing). */
export function isSecAggFrameType(type: string): boolean {
  return type.startsWith('secagg.');
}

export function decodeSecAggMessage(bytes: Uint8Array, maxBytes?: number): SecAggMessage {
  return fromFrame(decodeFrame(bytes, maxBytes));
}

/** Converts an already decoded frame (see wire.ts) into a message. */
export function fromFrame(frame: Frame): SecAggMessage {
  const h = frame.header;
  const session = str(h.session, 'session');
  const noTensors = () => {
    if (frame.tensors.length !== 0) bad(`${h.type} carries no tensors`);
  };
  switch (h.type) {
    case 'secagg.advertise-keys':
      noTensors();
      return { type: h.type, session, ...readKeys(h, '') };
    case 'secagg.key-roster':
      noTensors();
      return {
        type: h.type,
        session,
        clients: list(h.clients, 'clients').map((raw, i) => readKeys(obj(raw, `clients[${i}]`), `clients[${i}].`)),
      };
    case 'secagg.share-keys':
      noTensors();
      return {
        type: h.type,
        session,
        from: id(h.from, 'from'),
        shares: list(h.shares, 'shares').map((raw, i) => {
          const e = obj(raw, `shares[${i}]`);
          return { to: id(e.to, `shares[${i}].to`), ciphertext: unhex(e.ct, CIPHERTEXT_BYTES, `shares[${i}].ct`) };
        }),
      };
    case 'secagg.forwarded-shares':
      noTensors();
      return {
        type: h.type,
        session,
        to: id(h.to, 'to'),
        shares: list(h.shares, 'shares').map((raw, i) => {
          const e = obj(raw, `shares[${i}]`);
          return {
            from: id(e.from, `shares[${i}].from`),
            ciphertext: unhex(e.ct, CIPHERTEXT_BYTES, `shares[${i}].ct`),
          };
        }),
      };
    case 'secagg.masked-input': {
      const t = frame.tensors;
      if (t.length !== 1 || t[0].name !== 'masked' || t[0].dtype !== 'int32' || t[0].shape.length !== 1)
        bad('secagg.masked-input needs exactly one int32 vector named masked');
      const d = t[0].data;
      return {
        type: h.type,
        session,
        from: id(h.from, 'from'),
        masked: new Uint32Array(d.buffer, d.byteOffset, d.length),
      };
    }
    case 'secagg.consistency-request':
    case 'secagg.unmask-request': {
      noTensors();
      const survivors = list(h.survivors, 'survivors').map((v, i) => id(v, `survivors[${i}]`));
      if (h.type === 'secagg.consistency-request' || h.signatures === undefined)
        return { type: h.type, session, survivors };
      const signatures = list(h.signatures, 'signatures').map((raw, i) => {
        const e = obj(raw, `signatures[${i}]`);
        return {
          from: id(e.from, `signatures[${i}].from`),
          signature: unhex(e.sig, SIGNATURE_BYTES, `signatures[${i}].sig`),
        };
      });
      return { type: h.type, session, survivors, signatures };
    }
    case 'secagg.consistency-signature':
      noTensors();
      return { type: h.type, session, from: id(h.from, 'from'), signature: unhex(h.sig, SIGNATURE_BYTES, 'sig') };
    case 'secagg.unmask-shares': {
      noTensors();
      const shares = (v: unknown, what: string) =>
        list(v, what).map((raw, i) => {
          const e = obj(raw, `${what}[${i}]`);
          return { of: id(e.of, `${what}[${i}].of`), share: unhex(e.share, SHARE_BYTES, `${what}[${i}].share`) };
        });
      return {
        type: h.type,
        session,
        from: id(h.from, 'from'),
        selfMaskShares: shares(h.selfMaskShares, 'selfMaskShares'),
        keyShares: shares(h.keyShares, 'keyShares'),
      };
    }
    default:
      return bad(`unknown secure-aggregation message type ${String(h.type)}`);
  }
}
