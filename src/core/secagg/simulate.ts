/**
 * An in-memory run of the whole protocol, for simulations and tests: clients 1..n, messages handed over
 * directly, with scripted dropouts at each stage. A network transport drives the same two classes.
 */
import {
  SecAggClient,
  SecAggServer,
  type ClientId,
  type ClientIdentity,
  type SecAggResult,
  type ServerInbound,
  type ServerOutbound,
} from './protocol.js';
import type { RandomBytes } from './random.js';

export type DropStage =
  /** never advertises keys (not in U1) */
  | 'before-advertise'
  /** advertises keys, then vanishes (in U1, not in U2) */
  | 'before-share-keys'
  /** shares keys, then vanishes before sending its masked input (in U2, not in U3: input excluded) */
  | 'before-masked-input'
  /** sends its masked input, then vanishes before unmasking (in U3, not in U4: input included) */
  | 'before-unmask';

export interface SimulateOptions {
  session?: string;
  threshold: number;
  /** Fixed-point-encoded inputs; client i + 1 holds inputs[i]. */
  inputs: readonly Uint32Array[];
  /** Randomness for client `id` (a seeded source in simulation, a CSPRNG otherwise). */
  randomBytesFor: (id: ClientId) => RandomBytes;
  /** Present: the malicious-server variant, each client with this identity (signing key and peer trust). */
  identityFor?: (id: ClientId) => ClientIdentity;
  /** Clients that drop out, and when. */
  drops?: ReadonlyMap<ClientId, DropStage> | Readonly<Record<number, DropStage>>;
  /** Sees every message the server receives, in order (for audits of what the server learns). */
  onServerReceive?: (msg: ServerInbound) => void;
  /** Sees every message the server sends. */
  onServerSend?: (msg: ServerOutbound) => void;
  /**
   * Carries every message in both directions (default: hand the object over). Pass e.g.
   * `(m) => decodeSecAggMessage(encodeSecAggMessage(m))` to push everything through the wire format.
   */
  carry?: (msg: ServerInbound | ServerOutbound) => ServerInbound | ServerOutbound;
}

export function simulateSecAgg(opts: SimulateOptions): SecAggResult {
  const n = opts.inputs.length;
  if (n === 0) throw new Error('simulateSecAgg: no inputs');
  const vectorLength = opts.inputs[0].length;
  const session = opts.session ?? 'simulated-session';
  const drops =
    opts.drops instanceof Map
      ? opts.drops
      : new Map(Object.entries(opts.drops ?? {}).map(([k, v]) => [Number(k), v as DropStage]));
  const drop = (id: ClientId, stage: DropStage) => drops.get(id) === stage;
  const carry = <T extends ServerInbound | ServerOutbound>(m: T): T => {
    if (!opts.carry) return m;
    const out = opts.carry(m);
    if (out.type !== m.type) throw new Error(`simulateSecAgg: carry turned a ${m.type} into a ${out.type}`);
    return out as T;
  };
  /** Client -> server: observed as the server receives it. */
  const seen = <T extends ServerInbound>(m: T): T => {
    const out = carry(m);
    opts.onServerReceive?.(out);
    return out;
  };
  /** Server -> client. */
  const sent = <T extends ServerOutbound>(m: T): T => {
    opts.onServerSend?.(m);
    return carry(m);
  };

  const identityFor = opts.identityFor;
  const server = new SecAggServer({
    session,
    threshold: opts.threshold,
    vectorLength,
    consistencyCheck: identityFor !== undefined,
  });
  const clients = opts.inputs.map(
    (_, i) =>
      new SecAggClient({
        id: i + 1,
        session,
        threshold: opts.threshold,
        vectorLength,
        randomBytes: opts.randomBytesFor(i + 1),
        ...(identityFor ? { identity: identityFor(i + 1) } : {}),
      }),
  );

  let alive = clients.filter((c) => !drop(c.id, 'before-advertise'));
  for (const c of alive) {
    server.receiveAdvertiseKeys(seen(c.advertiseKeys()));
  }
  const roster = sent(server.finishAdvertiseKeys());

  alive = alive.filter((c) => !drop(c.id, 'before-share-keys'));
  for (const c of alive) {
    server.receiveShareKeys(seen(c.shareKeys(roster)));
  }
  const forwarded = new Map(server.finishShareKeys().map((f) => [f.to, sent(f)]));

  alive = alive.filter((c) => !drop(c.id, 'before-masked-input'));
  for (const c of alive) {
    server.receiveMaskedInput(seen(c.maskInput(forwarded.get(c.id)!, opts.inputs[c.id - 1])));
  }
  let request;
  if (identityFor) {
    const check = sent(server.finishMaskedInputForConsistency());
    for (const c of alive) server.receiveConsistencySignature(seen(c.consistencyCheck(check)));
    request = sent(server.finishConsistency());
  } else {
    request = sent(server.finishMaskedInput());
  }

  alive = alive.filter((c) => !drop(c.id, 'before-unmask'));
  for (const c of alive) {
    server.receiveUnmaskShares(seen(c.unmask(request)));
  }
  return server.finishUnmask();
}
