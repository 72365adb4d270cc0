/**
 * Secure aggregation (Bonawitz et al. 2017, "Practical Secure Aggregation for Privacy-Preserving Machine
 * Learning"), as two transport-agnostic state machines, in two variants: honest-but-curious server (the
 * rounds below) and malicious server (section 4: signed key advertisements and a ConsistencyCheck round,
 * switched on by giving each client an identity and the server `consistencyCheck`). Every message is a plain object with Uint8Array/Uint32Array fields;
 * a simulation hands them over directly, a network transport serializes them (see codec.ts).
 *
 *   Round 0 AdvertiseKeys      client -> server  AdvertiseKeys {c^PK, s^PK}
 *                              server -> all     KeyRoster (U1 = clients that advertised)
 *   Round 1 ShareKeys          client -> server  ShareKeys: for each v in U1 \ {u}, Enc_{c-key(u,v)}(u, v, [s_u^SK]_v, [b_u]_v)
 *                              server -> each v  ForwardedShares: the ciphertexts addressed to v (U2 = clients that shared)
 *   Round 2 MaskedInput        client -> server  MaskedInput y_u = x_u + PRG(b_u) + sum_{v in U2, v>u} PRG(s_{u,v})
 *                                                                   - sum_{v in U2, v<u} PRG(s_{u,v})   (mod 2^32)
 *                              server -> all     UnmaskRequest (U3 = clients whose y_u arrived)
 *   (malicious variant: AdvertiseKeys also carries the client's Ed25519 identity key and its signature over
 *   (session, id, c^PK, s^PK), checked by every client against the key it trusts for that id (PeerTrust);
 *   before UnmaskRequest, a ConsistencyCheck round: server -> U3 ConsistencyRequest(U3), client -> server
 *   sig_u(session, U3); the UnmaskRequest then carries the signatures, and a client reveals its shares only
 *   if at least t of them are valid over the very U3 it signed: a server showing different U3 to different
 *   clients cannot collect t signatures for both views, because t > |U1| / 2.)
 *   Round 3 Unmasking          client -> server  UnmaskShares: [b_u]_v for u in U3, [s_u^SK]_v for u in U2 \ U3
 *                              server            z = sum_{u in U3} y_u - sum_{u in U3} PRG(b_u) + pairwise masks of U2 \ U3
 *
 * The server sees public keys, ciphertexts it cannot open, masked vectors (uniform mod 2^32 individually)
 * and, at the end, shares of b_u for clients whose input is in the sum and of s_u^SK for clients whose input
 * is not: never both for one client (each client checks that itself before answering), so no x_u is ever
 * revealed alone. Clients that drop after sending y_u (U3 \ U4) are still summed: their b_u comes from others.
 * Every round needs at least `threshold` clients; below that the state machine throws SecAggError('too_few_clients').
 *
 * Threshold: clients and server refuse t <= |U1| / 2 (and t < 2): with a smaller t a server could split
 * the clients into two groups that each reach t, and learn b_u from one and s_u^SK from the other. In the
 * honest-but-curious model the server together with fewer than t clients learns nothing beyond the sum;
 * against an active server that also controls clients, corrupted clients can sign both views of a split, and
 * the paper's analysis uses a larger t (as we read section 6, t > 2n/3 with fewer than n/3 corrupted clients).
 */
import { shown } from '../shown.js';
import {
  addMask,
  agreeKey,
  bytesEqual,
  decryptShares,
  encryptShares,
  generateKeyPair,
  KEY_BYTES,
  pairwiseSeed,
  publicKeyOf,
  SEED_BYTES,
  type KeyPair,
} from './masks.js';
import { drawBytes, type RandomBytes } from './random.js';
import { reconstructBytes, shareByteLength, shareBytes, type ByteShare } from './shamir.js';
import {
  advertMessage,
  consistencyMessage,
  identityPublicKey,
  IDENTITY_KEY_BYTES,
  sign,
  SIGNATURE_BYTES,
  verifySignature,
  type PeerTrust,
} from './signing.js';

/** A client's id in one aggregation: an integer in [1, 2^32 - 1], also its Shamir x-coordinate. */
export type ClientId = number;

/** Length of one Shamir share of a 32-byte secret. */
export const SHARE_BYTES = shareByteLength(SEED_BYTES);
/** Plaintext of one encrypted share bundle: from (u32 LE) | to (u32 LE) | [s^SK] | [b]. */
const BUNDLE_BYTES = 8 + 2 * SHARE_BYTES;
/** One encrypted share bundle: the bundle plus the 16-byte Poly1305 tag. */
export const CIPHERTEXT_BYTES = BUNDLE_BYTES + 16;

// ---------------------------------------------------------------- messages

export interface ClientKeys {
  id: ClientId;
  /** Public key for share encryption. */
  cPublicKey: Uint8Array;
  /** Public key for pairwise mask agreement. */
  sPublicKey: Uint8Array;
  /** Malicious-server variant: the client's Ed25519 identity key... */
  identityKey?: Uint8Array;
  /** ...and its signature over (session, id, cPublicKey, sPublicKey). */
  signature?: Uint8Array;
}

/** Round 0, client -> server. */
export interface AdvertiseKeys extends ClientKeys {
  type: 'secagg.advertise-keys';
  session: string;
}

/** Round 0, server -> every client in U1: everyone's public keys, sorted by id. */
export interface KeyRoster {
  type: 'secagg.key-roster';
  session: string;
  clients: ClientKeys[];
}

/** Round 1, client -> server: one ciphertext per other client of U1. */
export interface ShareKeys {
  type: 'secagg.share-keys';
  session: string;
  from: ClientId;
  shares: { to: ClientId; ciphertext: Uint8Array }[];
}

/** Round 1, server -> client `to` in U2: the ciphertexts other clients of U2 addressed to it. */
export interface ForwardedShares {
  type: 'secagg.forwarded-shares';
  session: string;
  to: ClientId;
  shares: { from: ClientId; ciphertext: Uint8Array }[];
}

/** Round 2, client -> server: the masked, fixed-point-encoded input. */
export interface MaskedInput {
  type: 'secagg.masked-input';
  session: string;
  from: ClientId;
  masked: Uint32Array;
}

/** Malicious-server variant, round 3, server -> every client in U3: who sent a masked input. */
export interface ConsistencyRequest {
  type: 'secagg.consistency-request';
  session: string;
  survivors: ClientId[];
}

/** Malicious-server variant, round 3, client -> server: its signature over (session, U3). */
export interface ConsistencySignature {
  type: 'secagg.consistency-signature';
  session: string;
  from: ClientId;
  signature: Uint8Array;
}

/** Server -> every client in U3: who sent a masked input (malicious variant: with the U3 signatures). */
export interface UnmaskRequest {
  type: 'secagg.unmask-request';
  session: string;
  survivors: ClientId[];
  signatures?: { from: ClientId; signature: Uint8Array }[];
}

/** Round 3, client -> server: shares of b_u for u in U3 and of s_u^SK for u in U2 \ U3. */
export interface UnmaskShares {
  type: 'secagg.unmask-shares';
  session: string;
  from: ClientId;
  selfMaskShares: { of: ClientId; share: Uint8Array }[];
  keyShares: { of: ClientId; share: Uint8Array }[];
}

export type ServerInbound = AdvertiseKeys | ShareKeys | MaskedInput | ConsistencySignature | UnmaskShares;
export type ServerOutbound = KeyRoster | ForwardedShares | ConsistencyRequest | UnmaskRequest;

export interface SecAggResult {
  /** sum_{u in included} x_u mod 2^32: decode with decodeFixedSum / decodeWeightedAverage. */
  sum: Uint32Array;
  /** U3, ascending: the clients whose inputs are in the sum. */
  included: ClientId[];
  /** U1 \ U3, ascending: clients that advertised keys but whose inputs are not in the sum. */
  dropped: ClientId[];
  /** U4, ascending: the clients whose shares unmasked the sum. */
  responders: ClientId[];
}

export type SecAggErrorCode =
  | 'too_few_clients'
  | 'wrong_phase'
  | 'wrong_session'
  | 'unknown_client'
  | 'duplicate'
  | 'bad_message'
  | 'inconsistent'
  /** t <= |U1| / 2: two disjoint groups could each reach t. */
  | 'weak_threshold'
  /** A key advertisement lacks a signature or its signature does not verify under the advertised identity key. */
  | 'bad_signature'
  /** A signed advertisement under an identity key the client does not trust for that peer (a substituted key). */
  | 'untrusted_key'
  /** Fewer than t valid signatures over the U3 this client signed: the server may be splitting the clients' views. */
  | 'split_view';

export class SecAggError extends Error {
  constructor(
    readonly code: SecAggErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SecAggError';
  }
}

// ---------------------------------------------------------------- shared validation

export interface SecAggParams {
  /** Unique id of this aggregation; bound into every derived key, nonce AAD and message. */
  session: string;
  /** Shamir threshold t (>= 2): every round needs at least t clients, and t shares rebuild a secret. */
  threshold: number;
  /** Length of the Uint32Array inputs (for weighted FedAvg: parameters + 1). */
  vectorLength: number;
}

function checkParams(who: string, p: SecAggParams): void {
  if (typeof p.session !== 'string' || p.session.length === 0 || p.session.length > 256) {
    throw new Error(`${who}: session must be a non-empty string of at most 256 characters`);
  }
  if (!Number.isInteger(p.threshold) || p.threshold < 2)
    throw new Error(`${who}: threshold must be an integer >= 2, got ${p.threshold}`);
  if (!Number.isInteger(p.vectorLength) || p.vectorLength < 1)
    throw new Error(`${who}: vectorLength must be an integer >= 1, got ${p.vectorLength}`);
}

function isClientId(id: unknown): id is ClientId {
  return typeof id === 'number' && Number.isInteger(id) && id >= 1 && id <= 0xffffffff;
}

function checkId(who: string, id: unknown, what: string): ClientId {
  if (!isClientId(id))
    throw new SecAggError('bad_message', `${who}: ${what} must be an integer in [1, 2^32 - 1], got ${String(id)}`);
  return id;
}

function checkBytes(who: string, b: unknown, length: number, what: string): Uint8Array {
  if (!(b instanceof Uint8Array) || b.length !== length) {
    throw new SecAggError(
      'bad_message',
      `${who}: ${what} must be ${length} bytes, got ${b instanceof Uint8Array ? b.length : typeof b}`,
    );
  }
  return b;
}

function checkSession(who: string, expected: string, msg: { session?: unknown; type?: unknown }, type: string): void {
  if (typeof msg !== 'object' || msg === null || msg.type !== type)
    throw new SecAggError('bad_message', `${who}: expected a ${type} message, got ${shown(msg?.type)}`);
  if (msg.session !== expected)
    throw new SecAggError('wrong_session', `${who}: ${type} is for session '${shown(msg.session)}', not '${expected}'`);
}

/** Ascending ids, checked to be valid and distinct. */
function distinctIds(who: string, ids: readonly unknown[], what: string): ClientId[] {
  const out = ids.map((id) => checkId(who, id, what));
  if (new Set(out).size !== out.length) throw new SecAggError('duplicate', `${who}: ${what} lists a client twice`);
  return out.sort((a, b) => a - b);
}

function needMajorityThreshold(who: string, threshold: number, rosterSize: number): void {
  if (2 * threshold <= rosterSize) {
    throw new SecAggError(
      'weak_threshold',
      `${who}: threshold ${threshold} is at most half of the ${rosterSize} clients in the roster; ` +
        "two disjoint groups could each reach it and together unmask one client's input. Use a threshold above half the roster",
    );
  }
}

function needThreshold(who: string, count: number, threshold: number, stage: string): void {
  if (count < threshold) {
    throw new SecAggError(
      'too_few_clients',
      `${who}: only ${count} clients ${stage}, fewer than the threshold ${threshold}; the aggregation is aborted`,
    );
  }
}

function encodeBundle(from: ClientId, to: ClientId, sShare: Uint8Array, bShare: Uint8Array): Uint8Array {
  const out = new Uint8Array(BUNDLE_BYTES);
  const v = new DataView(out.buffer);
  v.setUint32(0, from, true);
  v.setUint32(4, to, true);
  out.set(sShare, 8);
  out.set(bShare, 8 + SHARE_BYTES);
  return out;
}

// ---------------------------------------------------------------- client

export type ClientPhase = 'new' | 'advertised' | 'shared' | 'masked' | 'checked' | 'done' | 'aborted';

/** What makes a client run the malicious-server variant: its identity key and how it trusts its peers'. */
export interface ClientIdentity {
  /** The client's Ed25519 identity secret key (the one it enrolled with). */
  secretKey: Uint8Array;
  trust: PeerTrust;
}

export interface SecAggClientOptions extends SecAggParams {
  id: ClientId;
  /** Source of the client's keys, self-mask seed and Shamir coefficients: a CSPRNG in production. */
  randomBytes: RandomBytes;
  /** Present: the malicious-server variant (signed advertisements, ConsistencyCheck before unmasking). */
  identity?: ClientIdentity;
}

interface HeldShares {
  sShare: Uint8Array;
  bShare: Uint8Array;
}

/**
 * One client of one aggregation. Call advertiseKeys, shareKeys, maskInput, unmask in that order, each
 * with the server's previous message; any error aborts the client for good (it then reveals nothing more).
 */
export class SecAggClient {
  readonly id: ClientId;
  private readonly params: SecAggParams;
  private readonly randomBytes: RandomBytes;
  private phaseValue: ClientPhase = 'new';
  private c: KeyPair | null = null;
  private s: KeyPair | null = null;
  private selfMaskSeed: Uint8Array | null = null;
  /** U1's public keys by id. */
  private roster = new Map<ClientId, ClientKeys>();
  /** Share-encryption keys with each other client of U1. */
  private encKeys = new Map<ClientId, Uint8Array>();
  /** Shares this client holds of every U2 member's secrets (its own included). */
  private held = new Map<ClientId, HeldShares>();
  /** U2, ascending. */
  private u2: ClientId[] = [];
  private readonly identity: (ClientIdentity & { publicKey: Uint8Array }) | null;
  /** Malicious variant: the U3 this client signed, the only one it will unmask for. */
  private signedSurvivors: ClientId[] | null = null;

  constructor(opts: SecAggClientOptions) {
    checkParams('SecAggClient', opts);
    if (!isClientId(opts.id)) throw new Error(`SecAggClient: id must be an integer in [1, 2^32 - 1], got ${opts.id}`);
    if (typeof opts.randomBytes !== 'function') throw new Error('SecAggClient: randomBytes must be a function');
    this.id = opts.id;
    this.params = { session: opts.session, threshold: opts.threshold, vectorLength: opts.vectorLength };
    this.randomBytes = opts.randomBytes;
    const identity = opts.identity;
    if (
      identity !== undefined &&
      (!(identity.secretKey instanceof Uint8Array) ||
        identity.secretKey.length !== 32 ||
        typeof identity.trust?.check !== 'function')
    ) {
      throw new Error('SecAggClient: identity needs a 32-byte Ed25519 secretKey and a PeerTrust');
    }
    this.identity = identity ? { ...identity, publicKey: identityPublicKey(identity.secretKey) } : null;
  }

  get phase(): ClientPhase {
    return this.phaseValue;
  }

  private step<T>(from: ClientPhase, to: ClientPhase, name: string, body: () => T): T {
    if (this.phaseValue !== from) {
      throw new SecAggError(
        'wrong_phase',
        `SecAggClient ${this.id}: ${name} needs phase '${from}' but the client is '${this.phaseValue}'`,
      );
    }
    try {
      const out = body();
      this.phaseValue = to;
      return out;
    } catch (e) {
      this.abort();
      throw e;
    }
  }

  /** Forgets every secret and refuses all further steps. */
  abort(): void {
    this.phaseValue = 'aborted';
    for (const k of [this.c?.secretKey, this.s?.secretKey, this.selfMaskSeed]) k?.fill(0);
    this.c = this.s = this.selfMaskSeed = null;
    this.encKeys.clear();
    this.held.clear();
  }

  /** Round 0: fresh key pairs for this session. */
  advertiseKeys(): AdvertiseKeys {
    return this.step('new', 'advertised', 'advertiseKeys', () => {
      this.c = generateKeyPair(this.randomBytes);
      this.s = generateKeyPair(this.randomBytes);
      const { session } = this.params;
      const msg: AdvertiseKeys = {
        type: 'secagg.advertise-keys',
        session,
        id: this.id,
        cPublicKey: this.c.publicKey,
        sPublicKey: this.s.publicKey,
      };
      if (!this.identity) return msg;
      const signature = sign(advertMessage(session, this.id, msg.cPublicKey, msg.sPublicKey), this.identity.secretKey);
      return { ...msg, identityKey: this.identity.publicKey, signature };
    });
  }

  /** Round 1: checks the roster, draws b_u, and sends encrypted shares of s_u^SK and b_u to every other client. */
  shareKeys(roster: KeyRoster): ShareKeys {
    return this.step('advertised', 'shared', 'shareKeys', () => {
      const who = `SecAggClient ${this.id}`;
      const { session, threshold } = this.params;
      checkSession(who, session, roster, 'secagg.key-roster');
      if (!Array.isArray(roster.clients)) throw new SecAggError('bad_message', `${who}: roster.clients is not a list`);
      const ids = distinctIds(
        who,
        roster.clients.map((k) => k?.id),
        'the roster',
      );
      needThreshold(who, ids.length, threshold, 'are in the key roster');
      needMajorityThreshold(who, threshold, ids.length);
      const keys: Uint8Array[] = [];
      for (const k of roster.clients) {
        keys.push(
          checkBytes(who, k.cPublicKey, KEY_BYTES, `c public key of ${k.id}`),
          checkBytes(who, k.sPublicKey, KEY_BYTES, `s public key of ${k.id}`),
        );
        this.roster.set(k.id, { id: k.id, cPublicKey: k.cPublicKey, sPublicKey: k.sPublicKey });
      }
      if (this.identity) this.checkSignedRoster(roster.clients);
      // The paper's check that all advertised keys differ (a replayed key would make two clients share seeds).
      for (let i = 0; i < keys.length; i++) {
        for (let j = i + 1; j < keys.length; j++) {
          if (bytesEqual(keys[i], keys[j]))
            throw new SecAggError('inconsistent', `${who}: two public keys in the roster are equal`);
        }
      }
      const mine = this.roster.get(this.id);
      const ownIdentity =
        !this.identity || (mine?.identityKey !== undefined && bytesEqual(mine.identityKey, this.identity.publicKey));
      if (
        !mine ||
        !bytesEqual(mine.cPublicKey, this.c!.publicKey) ||
        !bytesEqual(mine.sPublicKey, this.s!.publicKey) ||
        !ownIdentity
      ) {
        throw new SecAggError('inconsistent', `${who}: the roster does not carry this client's own keys`);
      }
      this.selfMaskSeed = drawBytes(this.randomBytes, SEED_BYTES, 'shareKeys');
      const sShares = shareBytes(this.s!.secretKey, threshold, ids, this.randomBytes);
      const bShares = shareBytes(this.selfMaskSeed, threshold, ids, this.randomBytes);
      const shares: ShareKeys['shares'] = [];
      for (let i = 0; i < ids.length; i++) {
        const v = ids[i];
        if (v === this.id) {
          this.held.set(v, { sShare: sShares[i].y, bShare: bShares[i].y });
          continue;
        }
        const key = agreeKey(this.c!.secretKey, this.roster.get(v)!.cPublicKey, 'share-encryption', session);
        this.encKeys.set(v, key);
        shares.push({
          to: v,
          ciphertext: encryptShares(key, this.id, v, session, encodeBundle(this.id, v, sShares[i].y, bShares[i].y)),
        });
      }
      return { type: 'secagg.share-keys', session, from: this.id, shares };
    });
  }

  /**
   * Malicious variant: every advertisement must be signed by an identity key this client trusts for that id
   * (else the server could swap in keys it holds and read the shares), and no identity key may appear twice.
   */
  private checkSignedRoster(clients: readonly ClientKeys[]): void {
    const who = `SecAggClient ${this.id}`;
    const seen = new Map<string, ClientId>();
    for (const k of clients) {
      if (
        !(k.identityKey instanceof Uint8Array) ||
        k.identityKey.length !== IDENTITY_KEY_BYTES ||
        !(k.signature instanceof Uint8Array) ||
        k.signature.length !== SIGNATURE_BYTES
      ) {
        throw new SecAggError(
          'bad_signature',
          `${who}: the key advertisement of client ${k.id} is not signed with an identity key`,
        );
      }
      if (
        !verifySignature(
          k.signature,
          advertMessage(this.params.session, k.id, k.cPublicKey, k.sPublicKey),
          k.identityKey,
        )
      ) {
        throw new SecAggError(
          'bad_signature',
          `${who}: the signature on client ${k.id}'s key advertisement does not verify: its keys were altered`,
        );
      }
      const distrust = this.identity!.trust.check(k.id, k.identityKey);
      if (distrust !== null)
        throw new SecAggError('untrusted_key', `${who}: ${distrust} (a substituted key advertisement)`);
      const keyHex = Array.from(k.identityKey, (x) => x.toString(16).padStart(2, '0')).join('');
      if (seen.has(keyHex))
        throw new SecAggError(
          'untrusted_key',
          `${who}: clients ${seen.get(keyHex)} and ${k.id} advertise the same identity key`,
        );
      seen.set(keyHex, k.id);
      this.roster.get(k.id)!.identityKey = k.identityKey;
    }
  }

  /**
   * Round 2: decrypts the shares addressed to this client (their senders are U2), then masks the input:
   * y = input + PRG(b_u) + sum_{v in U2, v > u} PRG(s_{u,v}) - sum_{v in U2, v < u} PRG(s_{u,v}) mod 2^32.
   * `input` is the fixed-point encoding (fixed-point.ts) and is not modified.
   */
  maskInput(forwarded: ForwardedShares, input: Uint32Array): MaskedInput {
    return this.step('shared', 'masked', 'maskInput', () => {
      const who = `SecAggClient ${this.id}`;
      const { session, threshold, vectorLength } = this.params;
      checkSession(who, session, forwarded, 'secagg.forwarded-shares');
      if (forwarded.to !== this.id)
        throw new SecAggError('bad_message', `${who}: the forwarded shares are addressed to ${forwarded.to}`);
      if (!(input instanceof Uint32Array) || input.length !== vectorLength) {
        throw new Error(
          `${who}: input must be a Uint32Array of length ${vectorLength}, got ${input instanceof Uint32Array ? `length ${input.length}` : typeof input}`,
        );
      }
      if (!Array.isArray(forwarded.shares))
        throw new SecAggError('bad_message', `${who}: forwarded.shares is not a list`);
      const senders = distinctIds(
        who,
        forwarded.shares.map((e) => e?.from),
        'the forwarded shares',
      );
      for (const e of forwarded.shares) {
        if (e.from === this.id || !this.roster.has(e.from))
          throw new SecAggError(
            'unknown_client',
            `${who}: got shares from ${e.from}, who is not another client of the roster`,
          );
        const plain = decryptShares(
          this.encKeys.get(e.from)!,
          e.from,
          this.id,
          session,
          checkBytes(who, e.ciphertext, CIPHERTEXT_BYTES, `ciphertext from ${e.from}`),
        );
        const v = new DataView(plain.buffer, plain.byteOffset, plain.byteLength);
        if (plain.length !== BUNDLE_BYTES || v.getUint32(0, true) !== e.from || v.getUint32(4, true) !== this.id) {
          throw new SecAggError(
            'inconsistent',
            `${who}: the share bundle from ${e.from} names the wrong sender or recipient`,
          );
        }
        this.held.set(e.from, {
          sShare: plain.slice(8, 8 + SHARE_BYTES),
          bShare: plain.slice(8 + SHARE_BYTES, BUNDLE_BYTES),
        });
      }
      this.u2 = [...senders, this.id].sort((a, b) => a - b);
      needThreshold(who, this.u2.length, threshold, 'shared their keys');
      const masked = input.slice();
      addMask(masked, this.selfMaskSeed!, 1);
      for (const v of this.u2) {
        if (v === this.id) continue;
        addMask(masked, pairwiseSeed(this.s!.secretKey, this.roster.get(v)!.sPublicKey, session), v > this.id ? 1 : -1);
      }
      return { type: 'secagg.masked-input', session, from: this.id, masked };
    });
  }

  /** U3 from the server, checked: a subset of U2 (as this client saw it) containing this client, at least t long. */
  private checkSurvivors(who: string, survivors: unknown, what: string): ClientId[] {
    if (!Array.isArray(survivors)) throw new SecAggError('bad_message', `${who}: survivors is not a list`);
    const u3 = distinctIds(who, survivors, 'survivors');
    const inU2 = new Set(this.u2);
    for (const u of u3)
      if (!inU2.has(u))
        throw new SecAggError('inconsistent', `${who}: survivor ${u} never shared keys with this client`);
    if (!u3.includes(this.id))
      throw new SecAggError(
        'inconsistent',
        `${who}: this client is missing from the survivors it was asked to ${what}`,
      );
    needThreshold(who, u3.length, this.params.threshold, 'sent masked inputs');
    return u3;
  }

  /** Malicious variant, round 3: signs (session, U3) after checking U3; this client will unmask for that U3 only. */
  consistencyCheck(request: ConsistencyRequest): ConsistencySignature {
    return this.step('masked', 'checked', 'consistencyCheck', () => {
      const who = `SecAggClient ${this.id}`;
      if (!this.identity)
        throw new SecAggError(
          'wrong_phase',
          `${who}: runs the honest-but-curious variant, which has no consistency check`,
        );
      const { session } = this.params;
      checkSession(who, session, request, 'secagg.consistency-request');
      const u3 = this.checkSurvivors(who, request.survivors, 'sign');
      this.signedSurvivors = u3;
      return {
        type: 'secagg.consistency-signature',
        session,
        from: this.id,
        signature: sign(consistencyMessage(session, u3), this.identity.secretKey),
      };
    });
  }

  /**
   * Round 3 (malicious variant: 4): given U3, reveals its shares of b_u for every u in U3 and of s_u^SK for
   * every u in U2 \ U3 (U2 as this client saw it, not as the server claims). Refuses if U3 is not a subset of
   * U2 containing this client, or smaller than the threshold; in the malicious variant also unless U3 is the
   * set it signed and at least t members of U3 signed that same set.
   */
  unmask(request: UnmaskRequest): UnmaskShares {
    return this.step(this.identity ? 'checked' : 'masked', 'done', 'unmask', () => {
      const who = `SecAggClient ${this.id}`;
      const { session } = this.params;
      checkSession(who, session, request, 'secagg.unmask-request');
      const u3 = this.checkSurvivors(who, request.survivors, 'unmask');
      if (this.identity) this.checkConsistency(who, u3, request.signatures);
      const inU3 = new Set(u3);
      const selfMaskShares = u3.map((u) => ({ of: u, share: this.held.get(u)!.bShare }));
      const keyShares = this.u2.filter((u) => !inU3.has(u)).map((u) => ({ of: u, share: this.held.get(u)!.sShare }));
      const out: UnmaskShares = { type: 'secagg.unmask-shares', session, from: this.id, selfMaskShares, keyShares };
      // Nothing else will be revealed: drop the secrets.
      this.encKeys.clear();
      this.held.clear();
      return out;
    });
  }

  /** At least t distinct members of U3 must have signed exactly the U3 this client signed. */
  private checkConsistency(who: string, u3: ClientId[], signatures: UnmaskRequest['signatures']): void {
    const signed = this.signedSurvivors!;
    if (u3.length !== signed.length || u3.some((u, i) => u !== signed[i])) {
      throw new SecAggError(
        'split_view',
        `${who}: asked to unmask for survivors [${u3.join(', ')}] after signing [${signed.join(', ')}]`,
      );
    }
    if (!Array.isArray(signatures))
      throw new SecAggError('split_view', `${who}: the unmask request carries no consistency signatures`);
    const message = consistencyMessage(this.params.session, u3);
    const inU3 = new Set(u3);
    const valid = new Set<ClientId>();
    for (const e of signatures) {
      if (typeof e !== 'object' || e === null || !inU3.has(e.from)) continue;
      const key = this.roster.get(e.from)?.identityKey;
      if (key && e.signature instanceof Uint8Array && verifySignature(e.signature, message, key)) valid.add(e.from);
    }
    if (valid.size < this.params.threshold) {
      throw new SecAggError(
        'split_view',
        `${who}: only ${valid.size} of ${signatures.length} consistency signatures are valid over the ` +
          `${u3.length} survivors this client signed, fewer than the threshold ${this.params.threshold}: the server may be showing ` +
          'different survivor sets to different clients; nothing is revealed',
      );
    }
  }
}

// ---------------------------------------------------------------- server

export type ServerPhase = 'advertise' | 'share-keys' | 'masked-input' | 'consistency' | 'unmask' | 'done' | 'failed';

export interface SecAggServerParams extends SecAggParams {
  /**
   * The malicious-server variant: advertisements must be signed, and a ConsistencyCheck round runs between
   * masked inputs and unmasking. An honest server runs it so that its clients can check it is honest.
   */
  consistencyCheck?: boolean;
}

/**
 * The aggregator of one session. For each round: feed it the clients' messages (receive*), then close the
 * round (finish*) when everyone answered or a deadline passed; the finish result is what to send back.
 * receive* throws SecAggError on a malformed, duplicate, late or foreign message and leaves the state
 * unchanged (the caller may log and ignore it); finish* throws 'too_few_clients' and fails the session
 * when fewer than `threshold` clients took part.
 */
export class SecAggServer {
  private readonly params: SecAggParams;
  private readonly consistencyCheck: boolean;
  private readonly signatures = new Map<ClientId, Uint8Array>();
  private phaseValue: ServerPhase = 'advertise';
  private readonly keys = new Map<ClientId, ClientKeys>();
  private u1: ClientId[] = [];
  private readonly shareKeysFrom = new Map<ClientId, ShareKeys['shares']>();
  private u2: ClientId[] = [];
  private readonly maskedFrom = new Set<ClientId>();
  private sum: Uint32Array;
  private u3: ClientId[] = [];
  private readonly unmaskFrom = new Map<ClientId, UnmaskShares>();

  constructor(params: SecAggServerParams) {
    checkParams('SecAggServer', params);
    this.params = { session: params.session, threshold: params.threshold, vectorLength: params.vectorLength };
    this.consistencyCheck = params.consistencyCheck === true;
    this.sum = new Uint32Array(params.vectorLength);
  }

  get phase(): ServerPhase {
    return this.phaseValue;
  }

  private expect(phase: ServerPhase, what: string): void {
    if (this.phaseValue !== phase)
      throw new SecAggError(
        'wrong_phase',
        `SecAggServer: ${what} arrived in phase '${this.phaseValue}', expected '${phase}'`,
      );
  }

  private finish<T>(phase: ServerPhase, next: ServerPhase, what: string, body: () => T): T {
    this.expect(phase, what);
    try {
      const out = body();
      this.phaseValue = next;
      return out;
    } catch (e) {
      this.phaseValue = 'failed';
      throw e;
    }
  }

  receiveAdvertiseKeys(msg: AdvertiseKeys): void {
    const who = 'SecAggServer';
    this.expect('advertise', 'AdvertiseKeys');
    checkSession(who, this.params.session, msg, 'secagg.advertise-keys');
    const id = checkId(who, msg.id, 'id');
    if (this.keys.has(id)) throw new SecAggError('duplicate', `${who}: client ${id} advertised keys twice`);
    checkBytes(who, msg.cPublicKey, KEY_BYTES, `c public key of ${id}`);
    checkBytes(who, msg.sPublicKey, KEY_BYTES, `s public key of ${id}`);
    const keys: ClientKeys = { id, cPublicKey: msg.cPublicKey, sPublicKey: msg.sPublicKey };
    if (this.consistencyCheck) {
      // Which identity key to trust is each client's call; the server only drops what cannot verify at all.
      const identityKey = checkBytes(who, msg.identityKey, IDENTITY_KEY_BYTES, `identity key of ${id}`);
      const signature = checkBytes(who, msg.signature, SIGNATURE_BYTES, `advertisement signature of ${id}`);
      if (
        !verifySignature(signature, advertMessage(this.params.session, id, msg.cPublicKey, msg.sPublicKey), identityKey)
      ) {
        throw new SecAggError(
          'bad_signature',
          `${who}: the key advertisement of client ${id} does not verify under its identity key`,
        );
      }
      Object.assign(keys, { identityKey, signature });
    }
    this.keys.set(id, keys);
  }

  /** Closes round 0: U1 = the clients that advertised; returns the roster to broadcast to them. */
  finishAdvertiseKeys(): KeyRoster {
    return this.finish('advertise', 'share-keys', 'finishAdvertiseKeys', () => {
      this.u1 = [...this.keys.keys()].sort((a, b) => a - b);
      needThreshold('SecAggServer', this.u1.length, this.params.threshold, 'advertised keys');
      needMajorityThreshold('SecAggServer', this.params.threshold, this.u1.length);
      return {
        type: 'secagg.key-roster',
        session: this.params.session,
        clients: this.u1.map((id) => this.keys.get(id)!),
      };
    });
  }

  receiveShareKeys(msg: ShareKeys): void {
    const who = 'SecAggServer';
    this.expect('share-keys', 'ShareKeys');
    checkSession(who, this.params.session, msg, 'secagg.share-keys');
    const from = checkId(who, msg.from, 'from');
    if (!this.keys.has(from))
      throw new SecAggError('unknown_client', `${who}: ShareKeys from ${from}, who is not in the roster`);
    if (this.shareKeysFrom.has(from)) throw new SecAggError('duplicate', `${who}: client ${from} shared keys twice`);
    if (!Array.isArray(msg.shares))
      throw new SecAggError('bad_message', `${who}: ShareKeys.shares from ${from} is not a list`);
    const to = distinctIds(
      who,
      msg.shares.map((e) => e?.to),
      `ShareKeys recipients of ${from}`,
    );
    const expected = this.u1.filter((v) => v !== from);
    if (to.length !== expected.length || to.some((v, i) => v !== expected[i])) {
      throw new SecAggError(
        'bad_message',
        `${who}: client ${from} must send one ciphertext to each other client of the roster`,
      );
    }
    for (const e of msg.shares) checkBytes(who, e.ciphertext, CIPHERTEXT_BYTES, `ciphertext ${from} -> ${e.to}`);
    this.shareKeysFrom.set(from, msg.shares);
  }

  /** Closes round 1: U2 = the clients that shared; returns one ForwardedShares per member of U2. */
  finishShareKeys(): ForwardedShares[] {
    return this.finish('share-keys', 'masked-input', 'finishShareKeys', () => {
      this.u2 = [...this.shareKeysFrom.keys()].sort((a, b) => a - b);
      needThreshold('SecAggServer', this.u2.length, this.params.threshold, 'shared their keys');
      const inbox = new Map<ClientId, ForwardedShares['shares']>(this.u2.map((v) => [v, []]));
      for (const u of this.u2) {
        for (const e of this.shareKeysFrom.get(u)!) inbox.get(e.to)?.push({ from: u, ciphertext: e.ciphertext });
      }
      this.shareKeysFrom.clear();
      return this.u2.map((v) => ({
        type: 'secagg.forwarded-shares',
        session: this.params.session,
        to: v,
        shares: inbox.get(v)!,
      }));
    });
  }

  /** Adds a masked input to the running sum (the server keeps only the sum, never the vectors). */
  receiveMaskedInput(msg: MaskedInput): void {
    const who = 'SecAggServer';
    this.expect('masked-input', 'MaskedInput');
    checkSession(who, this.params.session, msg, 'secagg.masked-input');
    const from = checkId(who, msg.from, 'from');
    if (!this.u2.includes(from))
      throw new SecAggError('unknown_client', `${who}: MaskedInput from ${from}, who did not share keys`);
    if (this.maskedFrom.has(from)) throw new SecAggError('duplicate', `${who}: client ${from} sent two masked inputs`);
    if (!(msg.masked instanceof Uint32Array) || msg.masked.length !== this.params.vectorLength) {
      throw new SecAggError(
        'bad_message',
        `${who}: the masked input of ${from} must be a Uint32Array of length ${this.params.vectorLength}`,
      );
    }
    this.maskedFrom.add(from);
    const sum = this.sum;
    const y = msg.masked;
    for (let j = 0; j < sum.length; j++) sum[j] += y[j];
  }

  /** Closes round 2 (honest-but-curious variant): U3 = the clients whose masked input arrived; returns the UnmaskRequest. */
  finishMaskedInput(): UnmaskRequest {
    if (this.consistencyCheck)
      throw new SecAggError(
        'wrong_phase',
        'SecAggServer: the malicious-server variant closes round 2 with finishMaskedInputForConsistency',
      );
    return this.finish('masked-input', 'unmask', 'finishMaskedInput', () => ({
      type: 'secagg.unmask-request',
      session: this.params.session,
      survivors: this.closeU3(),
    }));
  }

  /** Closes round 2 (malicious-server variant): U3 as in finishMaskedInput, sent to be signed. */
  finishMaskedInputForConsistency(): ConsistencyRequest {
    if (!this.consistencyCheck)
      throw new SecAggError('wrong_phase', 'SecAggServer: the honest-but-curious variant has no consistency round');
    return this.finish('masked-input', 'consistency', 'finishMaskedInputForConsistency', () => ({
      type: 'secagg.consistency-request',
      session: this.params.session,
      survivors: this.closeU3(),
    }));
  }

  private closeU3(): ClientId[] {
    this.u3 = [...this.maskedFrom].sort((a, b) => a - b);
    needThreshold('SecAggServer', this.u3.length, this.params.threshold, 'sent masked inputs');
    return this.u3.slice();
  }

  /** Collects a signature over (session, U3); the clients, not the server, judge whether it is valid. */
  receiveConsistencySignature(msg: ConsistencySignature): void {
    const who = 'SecAggServer';
    this.expect('consistency', 'ConsistencySignature');
    checkSession(who, this.params.session, msg, 'secagg.consistency-signature');
    const from = checkId(who, msg.from, 'from');
    if (!this.maskedFrom.has(from))
      throw new SecAggError('unknown_client', `${who}: ConsistencySignature from ${from}, who is not a survivor`);
    if (this.signatures.has(from)) throw new SecAggError('duplicate', `${who}: client ${from} signed twice`);
    this.signatures.set(from, checkBytes(who, msg.signature, SIGNATURE_BYTES, `consistency signature of ${from}`));
  }

  /** Closes the ConsistencyCheck round: the UnmaskRequest carries every signature received. */
  finishConsistency(): UnmaskRequest {
    return this.finish('consistency', 'unmask', 'finishConsistency', () => {
      needThreshold('SecAggServer', this.signatures.size, this.params.threshold, 'signed the survivor set');
      const signatures = [...this.signatures]
        .sort((a, b) => a[0] - b[0])
        .map(([from, signature]) => ({ from, signature }));
      return { type: 'secagg.unmask-request', session: this.params.session, survivors: this.u3.slice(), signatures };
    });
  }

  receiveUnmaskShares(msg: UnmaskShares): void {
    const who = 'SecAggServer';
    this.expect('unmask', 'UnmaskShares');
    checkSession(who, this.params.session, msg, 'secagg.unmask-shares');
    const from = checkId(who, msg.from, 'from');
    if (!this.maskedFrom.has(from))
      throw new SecAggError('unknown_client', `${who}: UnmaskShares from ${from}, who is not a survivor`);
    if (this.unmaskFrom.has(from))
      throw new SecAggError('duplicate', `${who}: client ${from} sent unmask shares twice`);
    if (!Array.isArray(msg.selfMaskShares) || !Array.isArray(msg.keyShares))
      throw new SecAggError('bad_message', `${who}: UnmaskShares from ${from} lacks share lists`);
    const dropped = this.u2.filter((u) => !this.maskedFrom.has(u));
    const sameIds = (got: ClientId[], want: ClientId[]) =>
      got.length === want.length && got.every((v, i) => v === want[i]);
    if (
      !sameIds(
        distinctIds(
          who,
          msg.selfMaskShares.map((e) => e?.of),
          'selfMaskShares',
        ),
        this.u3,
      )
    ) {
      throw new SecAggError(
        'bad_message',
        `${who}: client ${from} must send a self-mask share for exactly the survivors`,
      );
    }
    if (
      !sameIds(
        distinctIds(
          who,
          msg.keyShares.map((e) => e?.of),
          'keyShares',
        ),
        dropped,
      )
    ) {
      throw new SecAggError(
        'bad_message',
        `${who}: client ${from} must send a key share for exactly the dropped clients`,
      );
    }
    for (const e of [...msg.selfMaskShares, ...msg.keyShares])
      checkBytes(who, e.share, SHARE_BYTES, `share of ${e.of} from ${from}`);
    this.unmaskFrom.set(from, msg);
  }

  /**
   * Closes round 3 and unmasks: rebuilds b_u for every u in U3 and s_u^SK for every u in U2 \ U3 from
   * the shares of U4 (the responders), removes PRG(b_u) and the pairwise masks survivors shared with
   * dropped clients, and returns sum_{u in U3} x_u.
   */
  finishUnmask(): SecAggResult {
    return this.finish('unmask', 'done', 'finishUnmask', () => {
      const who = 'SecAggServer';
      const { threshold, session } = this.params;
      const u4 = [...this.unmaskFrom.keys()].sort((a, b) => a - b);
      needThreshold(who, u4.length, threshold, 'sent unmask shares');
      const responses = u4.map((v) => this.unmaskFrom.get(v)!);
      const sharesOf = (u: ClientId, list: 'selfMaskShares' | 'keyShares'): ByteShare[] =>
        responses.map((r) => ({ x: r.from, y: r[list].find((e) => e.of === u)!.share }));
      const z = this.sum;
      for (const u of this.u3) addMask(z, reconstructBytes(sharesOf(u, 'selfMaskShares'), threshold, SEED_BYTES), -1);
      const inU3 = new Set(this.u3);
      for (const u of this.u2) {
        if (inU3.has(u)) continue;
        const sk = reconstructBytes(sharesOf(u, 'keyShares'), threshold, KEY_BYTES);
        if (!bytesEqual(publicKeyOf(sk), this.keys.get(u)!.sPublicKey)) {
          throw new SecAggError(
            'inconsistent',
            `${who}: the key rebuilt for dropped client ${u} does not match its public key`,
          );
        }
        // Survivor v added +PRG(s_{v,u}) if u > v and -PRG(s_{v,u}) if u < v: take it back out.
        for (const v of this.u3) addMask(z, pairwiseSeed(sk, this.keys.get(v)!.sPublicKey, session), u > v ? -1 : 1);
        sk.fill(0);
      }
      this.unmaskFrom.clear();
      return { sum: z, included: this.u3.slice(), dropped: this.u1.filter((u) => !inU3.has(u)), responders: u4 };
    });
  }
}
