/**
 * The Bonawitz et al. (2017) protocol driven over the ordinary Transport, shared by every secure round (training
 * updates, analytics statistics): each phase is one request/reply per live node, so it runs unchanged on the
 * worker pool and over the network.
 *
 *   open request (carries the session settings) -> node computes its private input, answers AdvertiseKeys
 *   KeyRoster -> ShareKeys;  ForwardedShares -> MaskedInput;  ConsistencyRequest -> ConsistencySignature;
 *   UnmaskRequest (with the signatures) -> UnmaskShares
 *
 * Always the malicious-server variant: nodes sign their key advertisements with their identity keys, check
 * each other's, and unmask only for a survivor set that at least t nodes signed; a node that refuses
 * (substituted key, weak threshold, split view, a second session for one round) answers with an error that
 * names the reason, and the failures carry it. A node that fails in a phase drops out of the protocol; nodes
 * that drop after sharing keys are handled by the protocol (their masks are rebuilt from Shamir shares).
 */
import type { TensorSlot } from '../core/params.js';
import { SecAggServer, type ServerInbound, type ServerOutbound } from '../core/secagg/protocol.js';
import { decodeMessage } from './messages.js';
import { decodeSecAggFrame, encodeSecAggFrame, nodeIdOf } from './secure-messages.js';
import type { Transport } from './transport.js';

export interface SecureProtocolInput {
  round: number;
  selected: readonly number[];
  transport: Transport;
  /** A fresh, unguessable session id (bound into every key and mask). */
  session: string;
  threshold: number;
  /** Words in each node's private input. */
  vectorLength: number;
  /** The request that opens a node's session: it carries the session settings and asks for the private input. */
  openRequest: (nodeId: number) => Uint8Array;
  /** Tensor layout to read error replies with (training rounds); none for analytics. */
  layout?: readonly TensorSlot[];
}

export interface SecureProtocolOutcome {
  /** The sum mod 2^32 of the included nodes' inputs, or null when the protocol aborted. */
  sum: Uint32Array | null;
  /** Nodes whose input is in the sum, in the order the protocol lists them. */
  included: number[];
  /** Why each other node is not in the sum (every selected node, on abort). */
  failures: Map<number, string>;
  /** The header of each node's AdvertiseKeys reply (unprotected extras such as training metrics). */
  advertised: Map<number, Record<string, unknown>>;
}

type Failures = Map<number, string>;
type Reply = { msg: ServerInbound; header: Record<string, unknown> };

/** Sends one request per node, in parallel; returns the decoded replies of the expected type, recording failures. */
async function exchange(
  input: SecureProtocolInput,
  nodes: readonly number[],
  failures: Failures,
  expected: ServerInbound['type'],
  frameFor: (nodeId: number) => Uint8Array,
): Promise<Map<number, Reply>> {
  const out = new Map<number, Reply>();
  await Promise.all(
    nodes.map(async (nodeId) => {
      try {
        const reply = await input.transport.request(nodeId, frameFor(nodeId));
        const peek = decodeTypeOrError(input.layout ?? [], reply);
        if (peek) throw new Error(peek);
        const frame = decodeSecAggFrame(reply);
        if (frame.round !== input.round || frame.nodeId !== nodeId)
          throw new Error(`reply is for node ${frame.nodeId} round ${frame.round}`);
        if (frame.msg.type !== expected) throw new Error(`expected ${expected}, got ${frame.msg.type}`);
        out.set(nodeId, { msg: frame.msg as ServerInbound, header: frame.header });
      } catch (e) {
        failures.set(nodeId, (e as Error).message);
      }
    }),
  );
  return out;
}

/** The message of an error reply, or null for any other frame. */
function decodeTypeOrError(layout: readonly TensorSlot[], reply: Uint8Array): string | null {
  try {
    const decoded = decodeMessage(layout, reply);
    return decoded.type === 'error' ? decoded.message : `unexpected '${decoded.type}' reply`;
  } catch {
    return null;
  }
}

/** Feeds replies to the server; a reply the protocol rejects fails its node. Returns the nodes accepted. */
function feed(replies: Map<number, Reply>, failures: Failures, receive: (message: ServerInbound) => void): number[] {
  const ok: number[] = [];
  for (const [nodeId, { msg }] of [...replies].sort((a, b) => a[0] - b[0])) {
    try {
      receive(msg);
      ok.push(nodeId);
    } catch (e) {
      failures.set(nodeId, `secure aggregation: ${(e as Error).message}`);
    }
  }
  return ok;
}

/** "; nodes refused: 3 split_view, 1 bad_signature" from the nodes' refusal reasons, or "". */
function refusalSummary(failures: Failures): string {
  const counts = new Map<string, number>();
  for (const error of failures.values()) {
    const code = /secure aggregation refused \((\w+)\)/.exec(error)?.[1];
    if (code) counts.set(code, (counts.get(code) ?? 0) + 1);
  }
  return counts.size === 0 ? '' : `; nodes refused: ${[...counts].map(([c, k]) => `${k} ${c}`).join(', ')}`;
}

/** Runs one secure aggregation over `selected`; never throws for a node's failure or an abort (see the outcome). */
export async function runSecureProtocol(input: SecureProtocolInput): Promise<SecureProtocolOutcome> {
  const failures: Failures = new Map();
  const advertisedHeaders = new Map<number, Record<string, unknown>>();
  const server = new SecAggServer({
    session: input.session,
    threshold: input.threshold,
    vectorLength: input.vectorLength,
    consistencyCheck: true,
  });
  const send = (msg: ServerOutbound, nodeId: number) => encodeSecAggFrame(msg, input.round, nodeId);
  // Each node's session state lives in the host that opened it: keep its requests there until the end.
  for (const nodeId of input.selected) input.transport.pin?.(nodeId);
  try {
    const advertised = await exchange(input, input.selected, failures, 'secagg.advertise-keys', input.openRequest);
    for (const [nodeId, { header }] of advertised) advertisedHeaders.set(nodeId, header);
    let live = feed(advertised, failures, (m) => server.receiveAdvertiseKeys(m as never));
    const roster = server.finishAdvertiseKeys();
    live = feed(
      await exchange(input, live, failures, 'secagg.share-keys', (n) => send(roster, n)),
      failures,
      (message) => server.receiveShareKeys(message as never),
    );
    const forwarded = new Map(server.finishShareKeys().map((f) => [nodeIdOf(f.to), f]));
    live = feed(
      await exchange(
        input,
        live.filter((n) => forwarded.has(n)),
        failures,
        'secagg.masked-input',
        (n) => send(forwarded.get(n)!, n),
      ),
      failures,
      (m) => server.receiveMaskedInput(m as never),
    );
    const check = server.finishMaskedInputForConsistency();
    live = feed(
      await exchange(input, live, failures, 'secagg.consistency-signature', (n) => send(check, n)),
      failures,
      (m) => server.receiveConsistencySignature(m as never),
    );
    const request = server.finishConsistency();
    feed(await exchange(input, live, failures, 'secagg.unmask-shares', (n) => send(request, n)), failures, (message) =>
      server.receiveUnmaskShares(message as never),
    );
    const result = server.finishUnmask();
    const included = result.included.map(nodeIdOf);
    // A node whose masked input is in the sum but which missed unmasking still contributed.
    for (const n of included) failures.delete(n);
    return { sum: result.sum, included, failures, advertised: advertisedHeaders };
  } catch (e) {
    // The protocol aborted (too few nodes at some phase): no node's input is in any result.
    const reason = `secure aggregation aborted: ${(e as Error).message}${refusalSummary(failures)}`;
    for (const nodeId of input.selected) if (!failures.has(nodeId)) failures.set(nodeId, reason);
    return { sum: null, included: [], failures, advertised: advertisedHeaders };
  } finally {
    for (const nodeId of input.selected) input.transport.unpin?.(nodeId);
  }
}

/** The Bonawitz threshold a round of k nodes uses: a strict majority, at least 2. */
export const secureThreshold = (k: number): number => Math.max(2, Math.floor(k / 2) + 1);
