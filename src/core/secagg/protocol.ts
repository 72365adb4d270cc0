/**
 * Secure aggregation (Bonawitz et al. 2017, "Practical Secure Aggregation for Privacy-Preserving Machine
 * Learning"), the honest-but-curious-server variant (no ConsistencyCheck round, no signatures), as two
 * transport-agnostic state machines. Every message is a plain object with Uint8Array/Uint32Array fields;
 * a simulation hands them over directly, a network transport serializes them (see codec.ts).
 *
 *   Round 0 AdvertiseKeys      client -> server  AdvertiseKeys {c^PK, s^PK}
 *                              server -> all     KeyRoster (U1 = clients that advertised)
 *   Round 1 ShareKeys          client -> server  ShareKeys: for each v in U1 \ {u}, Enc_{c-key(u,v)}(u, v, [s_u^SK]_v, [b_u]_v)
 *                              server -> each v  ForwardedShares: the ciphertexts addressed to v (U2 = clients that shared)
 *   Round 2 MaskedInput        client -> server  MaskedInput y_u = x_u + PRG(b_u) + sum_{v in U2, v>u} PRG(s_{u,v})
 *                                                                   - sum_{v in U2, v<u} PRG(s_{u,v})   (mod 2^32)
 *                              server -> all     UnmaskRequest (U3 = clients whose y_u arrived)
 *   Round 3 Unmasking          client -> server  UnmaskShares: [b_u]_v for u in U3, [s_u^SK]_v for u in U2 \ U3
 *                              server            z = sum_{u in U3} y_u - sum_{u in U3} PRG(b_u) + pairwise masks of U2 \ U3
 *
 * The server sees public keys, ciphertexts it cannot open, masked vectors (uniform mod 2^32 individually)
 * and, at the end, shares of b_u for clients whose input is in the sum and of s_u^SK for clients whose input
 * is not: never both for one client (each client checks that itself before answering), so no x_u is ever
 * revealed alone. Clients that drop after sending y_u (U3 \ U4) are still summed: their b_u comes from others.
 * Every round needs at least `threshold` clients; below that the state machine throws SecAggError('too_few_clients').
 *
 * Threshold: t >= 2 is enforced. In the honest-but-curious model the server together with fewer than t
 * clients learns nothing beyond the sum, so choose t above any coalition you want to tolerate; t > n/2 is
 * the usual choice (two disjoint groups of clients can then never both reach t). A server that lies about
 * who dropped is outside this model: the paper's active variant adds a ConsistencyCheck round, signatures
 * and t > 2n/3, none of which is implemented here.
 */
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

/** Round 2, server -> every client in U3: who sent a masked input. */
export interface UnmaskRequest {
  type: 'secagg.unmask-request';
  session: string;
  survivors: ClientId[];
}

/** Round 3, client -> server: shares of b_u for u in U3 and of s_u^SK for u in U2 \ U3. */
export interface UnmaskShares {
  type: 'secagg.unmask-shares';
  session: string;
  from: ClientId;
  selfMaskShares: { of: ClientId; share: Uint8Array }[];
  keyShares: { of: ClientId; share: Uint8Array }[];
}

export type ServerInbound = AdvertiseKeys | ShareKeys | MaskedInput | UnmaskShares;
export type ServerOutbound = KeyRoster | ForwardedShares | UnmaskRequest;

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

export type SecAggErrorCode = 'too_few_clients' | 'wrong_phase' | 'wrong_session' | 'unknown_client' | 'duplicate' | 'bad_message' | 'inconsistent';

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
  if (!Number.isInteger(p.threshold) || p.threshold < 2) throw new Error(`${who}: threshold must be an integer >= 2, got ${p.threshold}`);
  if (!Number.isInteger(p.vectorLength) || p.vectorLength < 1) throw new Error(`${who}: vectorLength must be an integer >= 1, got ${p.vectorLength}`);
}

function isClientId(id: unknown): id is ClientId {
  return typeof id === 'number' && Number.isInteger(id) && id >= 1 && id <= 0xffffffff;
}

function checkId(who: string, id: unknown, what: string): ClientId {
  if (!isClientId(id)) throw new SecAggError('bad_message', `${who}: ${what} must be an integer in [1, 2^32 - 1], got ${String(id)}`);
  return id;
}

function checkBytes(who: string, b: unknown, length: number, what: string): Uint8Array {
  if (!(b instanceof Uint8Array) || b.length !== length) {
    throw new SecAggError('bad_message', `${who}: ${what} must be ${length} bytes, got ${b instanceof Uint8Array ? b.length : typeof b}`);
  }
  return b;
}

function checkSession(who: string, expected: string, msg: { session?: unknown; type?: unknown }, type: string): void {
  if (typeof msg !== 'object' || msg === null || msg.type !== type) throw new SecAggError('bad_message', `${who}: expected a ${type} message, got ${String(msg?.type)}`);
  if (msg.session !== expected) throw new SecAggError('wrong_session', `${who}: ${type} is for session '${String(msg.session)}', not '${expected}'`);
}

/** Ascending ids, checked to be valid and distinct. */
function distinctIds(who: string, ids: readonly unknown[], what: string): ClientId[] {
  const out = ids.map((id) => checkId(who, id, what));
  if (new Set(out).size !== out.length) throw new SecAggError('duplicate', `${who}: ${what} lists a client twice`);
  return out.sort((a, b) => a - b);
}

function needThreshold(who: string, count: number, threshold: number, stage: string): void {
  if (count < threshold) {
    throw new SecAggError('too_few_clients', `${who}: only ${count} clients ${stage}, fewer than the threshold ${threshold}; the aggregation is aborted`);
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

export type ClientPhase = 'new' | 'advertised' | 'shared' | 'masked' | 'done' | 'aborted';

export interface SecAggClientOptions extends SecAggParams {
  id: ClientId;
  /** Source of the client's keys, self-mask seed and Shamir coefficients: a CSPRNG in production. */
  randomBytes: RandomBytes;
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

  constructor(opts: SecAggClientOptions) {
    checkParams('SecAggClient', opts);
    if (!isClientId(opts.id)) throw new Error(`SecAggClient: id must be an integer in [1, 2^32 - 1], got ${opts.id}`);
    if (typeof opts.randomBytes !== 'function') throw new Error('SecAggClient: randomBytes must be a function');
    this.id = opts.id;
    this.params = { session: opts.session, threshold: opts.threshold, vectorLength: opts.vectorLength };
    this.randomBytes = opts.randomBytes;
  }

  get phase(): ClientPhase {
    return this.phaseValue;
  }

  private step<T>(from: ClientPhase, to: ClientPhase, name: string, body: () => T): T {
    if (this.phaseValue !== from) {
      throw new SecAggError('wrong_phase', `SecAggClient ${this.id}: ${name} needs phase '${from}' but the client is '${this.phaseValue}'`);
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
      return { type: 'secagg.advertise-keys', session: this.params.session, id: this.id, cPublicKey: this.c.publicKey, sPublicKey: this.s.publicKey };
    });
  }

  /** Round 1: checks the roster, draws b_u, and sends encrypted shares of s_u^SK and b_u to every other client. */
  shareKeys(roster: KeyRoster): ShareKeys {
    return this.step('advertised', 'shared', 'shareKeys', () => {
      const who = `SecAggClient ${this.id}`;
      const { session, threshold } = this.params;
      checkSession(who, session, roster, 'secagg.key-roster');
      if (!Array.isArray(roster.clients)) throw new SecAggError('bad_message', `${who}: roster.clients is not a list`);
      const ids = distinctIds(who, roster.clients.map((k) => k?.id), 'the roster');
      needThreshold(who, ids.length, threshold, 'are in the key roster');
      const keys: Uint8Array[] = [];
      for (const k of roster.clients) {
        keys.push(checkBytes(who, k.cPublicKey, KEY_BYTES, `c public key of ${k.id}`), checkBytes(who, k.sPublicKey, KEY_BYTES, `s public key of ${k.id}`));
        this.roster.set(k.id, { id: k.id, cPublicKey: k.cPublicKey, sPublicKey: k.sPublicKey });
      }
      // The paper's check that all advertised keys differ (a replayed key would make two clients share seeds).
      for (let i = 0; i < keys.length; i++) {
        for (let j = i + 1; j < keys.length; j++) {
          if (bytesEqual(keys[i], keys[j])) throw new SecAggError('inconsistent', `${who}: two public keys in the roster are equal`);
        }
      }
      const mine = this.roster.get(this.id);
      if (!mine || !bytesEqual(mine.cPublicKey, this.c!.publicKey) || !bytesEqual(mine.sPublicKey, this.s!.publicKey)) {
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
        shares.push({ to: v, ciphertext: encryptShares(key, this.id, v, session, encodeBundle(this.id, v, sShares[i].y, bShares[i].y)) });
      }
      return { type: 'secagg.share-keys', session, from: this.id, shares };
    });
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
      if (forwarded.to !== this.id) throw new SecAggError('bad_message', `${who}: the forwarded shares are addressed to ${forwarded.to}`);
      if (!(input instanceof Uint32Array) || input.length !== vectorLength) {
        throw new Error(`${who}: input must be a Uint32Array of length ${vectorLength}, got ${input instanceof Uint32Array ? `length ${input.length}` : typeof input}`);
      }
      if (!Array.isArray(forwarded.shares)) throw new SecAggError('bad_message', `${who}: forwarded.shares is not a list`);
      const senders = distinctIds(who, forwarded.shares.map((e) => e?.from), 'the forwarded shares');
      for (const e of forwarded.shares) {
        if (e.from === this.id || !this.roster.has(e.from)) throw new SecAggError('unknown_client', `${who}: got shares from ${e.from}, who is not another client of the roster`);
        const plain = decryptShares(this.encKeys.get(e.from)!, e.from, this.id, session, checkBytes(who, e.ciphertext, CIPHERTEXT_BYTES, `ciphertext from ${e.from}`));
        const v = new DataView(plain.buffer, plain.byteOffset, plain.byteLength);
        if (plain.length !== BUNDLE_BYTES || v.getUint32(0, true) !== e.from || v.getUint32(4, true) !== this.id) {
          throw new SecAggError('inconsistent', `${who}: the share bundle from ${e.from} names the wrong sender or recipient`);
        }
        this.held.set(e.from, { sShare: plain.slice(8, 8 + SHARE_BYTES), bShare: plain.slice(8 + SHARE_BYTES, BUNDLE_BYTES) });
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

  /**
   * Round 3: given U3, reveals its shares of b_u for every u in U3 and of s_u^SK for every u in U2 \ U3
   * (U2 as this client saw it, not as the server claims). Refuses if U3 is not a subset of U2 containing
   * this client, or smaller than the threshold.
   */
  unmask(request: UnmaskRequest): UnmaskShares {
    return this.step('masked', 'done', 'unmask', () => {
      const who = `SecAggClient ${this.id}`;
      const { session, threshold } = this.params;
      checkSession(who, session, request, 'secagg.unmask-request');
      if (!Array.isArray(request.survivors)) throw new SecAggError('bad_message', `${who}: survivors is not a list`);
      const u3 = distinctIds(who, request.survivors, 'survivors');
      const inU2 = new Set(this.u2);
      for (const u of u3) if (!inU2.has(u)) throw new SecAggError('inconsistent', `${who}: survivor ${u} never shared keys with this client`);
      if (!u3.includes(this.id)) throw new SecAggError('inconsistent', `${who}: this client is missing from the survivors it was asked to unmask`);
      needThreshold(who, u3.length, threshold, 'sent masked inputs');
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
}

// ---------------------------------------------------------------- server

export type ServerPhase = 'advertise' | 'share-keys' | 'masked-input' | 'unmask' | 'done' | 'failed';

/**
 * The aggregator of one session. For each round: feed it the clients' messages (receive*), then close the
 * round (finish*) when everyone answered or a deadline passed; the finish result is what to send back.
 * receive* throws SecAggError on a malformed, duplicate, late or foreign message and leaves the state
 * unchanged (the caller may log and ignore it); finish* throws 'too_few_clients' and fails the session
 * when fewer than `threshold` clients took part.
 */
export class SecAggServer {
  private readonly params: SecAggParams;
  private phaseValue: ServerPhase = 'advertise';
  private readonly keys = new Map<ClientId, ClientKeys>();
  private u1: ClientId[] = [];
  private readonly shareKeysFrom = new Map<ClientId, ShareKeys['shares']>();
  private u2: ClientId[] = [];
  private readonly maskedFrom = new Set<ClientId>();
  private sum: Uint32Array;
  private u3: ClientId[] = [];
  private readonly unmaskFrom = new Map<ClientId, UnmaskShares>();

  constructor(params: SecAggParams) {
    checkParams('SecAggServer', params);
    this.params = { session: params.session, threshold: params.threshold, vectorLength: params.vectorLength };
    this.sum = new Uint32Array(params.vectorLength);
  }

  get phase(): ServerPhase {
    return this.phaseValue;
  }

  private expect(phase: ServerPhase, what: string): void {
    if (this.phaseValue !== phase) throw new SecAggError('wrong_phase', `SecAggServer: ${what} arrived in phase '${this.phaseValue}', expected '${phase}'`);
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
    this.keys.set(id, { id, cPublicKey: msg.cPublicKey, sPublicKey: msg.sPublicKey });
  }

  /** Closes round 0: U1 = the clients that advertised; returns the roster to broadcast to them. */
  finishAdvertiseKeys(): KeyRoster {
    return this.finish('advertise', 'share-keys', 'finishAdvertiseKeys', () => {
      this.u1 = [...this.keys.keys()].sort((a, b) => a - b);
      needThreshold('SecAggServer', this.u1.length, this.params.threshold, 'advertised keys');
      return { type: 'secagg.key-roster', session: this.params.session, clients: this.u1.map((id) => this.keys.get(id)!) };
    });
  }

  receiveShareKeys(msg: ShareKeys): void {
    const who = 'SecAggServer';
    this.expect('share-keys', 'ShareKeys');
    checkSession(who, this.params.session, msg, 'secagg.share-keys');
    const from = checkId(who, msg.from, 'from');
    if (!this.keys.has(from)) throw new SecAggError('unknown_client', `${who}: ShareKeys from ${from}, who is not in the roster`);
    if (this.shareKeysFrom.has(from)) throw new SecAggError('duplicate', `${who}: client ${from} shared keys twice`);
    if (!Array.isArray(msg.shares)) throw new SecAggError('bad_message', `${who}: ShareKeys.shares from ${from} is not a list`);
    const to = distinctIds(who, msg.shares.map((e) => e?.to), `ShareKeys recipients of ${from}`);
    const expected = this.u1.filter((v) => v !== from);
    if (to.length !== expected.length || to.some((v, i) => v !== expected[i])) {
      throw new SecAggError('bad_message', `${who}: client ${from} must send one ciphertext to each other client of the roster`);
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
      return this.u2.map((v) => ({ type: 'secagg.forwarded-shares', session: this.params.session, to: v, shares: inbox.get(v)! }));
    });
  }

  /** Adds a masked input to the running sum (the server keeps only the sum, never the vectors). */
  receiveMaskedInput(msg: MaskedInput): void {
    const who = 'SecAggServer';
    this.expect('masked-input', 'MaskedInput');
    checkSession(who, this.params.session, msg, 'secagg.masked-input');
    const from = checkId(who, msg.from, 'from');
    if (!this.u2.includes(from)) throw new SecAggError('unknown_client', `${who}: MaskedInput from ${from}, who did not share keys`);
    if (this.maskedFrom.has(from)) throw new SecAggError('duplicate', `${who}: client ${from} sent two masked inputs`);
    if (!(msg.masked instanceof Uint32Array) || msg.masked.length !== this.params.vectorLength) {
      throw new SecAggError('bad_message', `${who}: the masked input of ${from} must be a Uint32Array of length ${this.params.vectorLength}`);
    }
    this.maskedFrom.add(from);
    const sum = this.sum;
    const y = msg.masked;
    for (let j = 0; j < sum.length; j++) sum[j] += y[j];
  }

  /** Closes round 2: U3 = the clients whose masked input arrived; returns the request to broadcast to them. */
  finishMaskedInput(): UnmaskRequest {
    return this.finish('masked-input', 'unmask', 'finishMaskedInput', () => {
      this.u3 = [...this.maskedFrom].sort((a, b) => a - b);
      needThreshold('SecAggServer', this.u3.length, this.params.threshold, 'sent masked inputs');
      return { type: 'secagg.unmask-request', session: this.params.session, survivors: this.u3.slice() };
    });
  }

  receiveUnmaskShares(msg: UnmaskShares): void {
    const who = 'SecAggServer';
    this.expect('unmask', 'UnmaskShares');
    checkSession(who, this.params.session, msg, 'secagg.unmask-shares');
    const from = checkId(who, msg.from, 'from');
    if (!this.maskedFrom.has(from)) throw new SecAggError('unknown_client', `${who}: UnmaskShares from ${from}, who is not a survivor`);
    if (this.unmaskFrom.has(from)) throw new SecAggError('duplicate', `${who}: client ${from} sent unmask shares twice`);
    if (!Array.isArray(msg.selfMaskShares) || !Array.isArray(msg.keyShares)) throw new SecAggError('bad_message', `${who}: UnmaskShares from ${from} lacks share lists`);
    const dropped = this.u2.filter((u) => !this.maskedFrom.has(u));
    const sameIds = (got: ClientId[], want: ClientId[]) => got.length === want.length && got.every((v, i) => v === want[i]);
    if (!sameIds(distinctIds(who, msg.selfMaskShares.map((e) => e?.of), 'selfMaskShares'), this.u3)) {
      throw new SecAggError('bad_message', `${who}: client ${from} must send a self-mask share for exactly the survivors`);
    }
    if (!sameIds(distinctIds(who, msg.keyShares.map((e) => e?.of), 'keyShares'), dropped)) {
      throw new SecAggError('bad_message', `${who}: client ${from} must send a key share for exactly the dropped clients`);
    }
    for (const e of [...msg.selfMaskShares, ...msg.keyShares]) checkBytes(who, e.share, SHARE_BYTES, `share of ${e.of} from ${from}`);
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
          throw new SecAggError('inconsistent', `${who}: the key rebuilt for dropped client ${u} does not match its public key`);
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
