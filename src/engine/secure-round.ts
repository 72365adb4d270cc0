/**
 * A secure-aggregation round (Bonawitz et al. 2017) driven over the ordinary Transport: each phase is one
 * request/reply per live node, so it runs unchanged on the worker pool and over the network.
 *
 *   train request + session settings -> node trains, keeps its update, answers AdvertiseKeys
 *   KeyRoster -> ShareKeys;  ForwardedShares -> MaskedInput;  ConsistencyRequest -> ConsistencySignature;
 *   UnmaskRequest (with the signatures) -> UnmaskShares
 *
 * Always the malicious-server variant: nodes sign their key advertisements with their identity keys, check
 * each other's, and unmask only for a survivor set that at least t nodes signed; a node that refuses
 * (substituted key, weak threshold, split view, a second session for one round) answers with an error that
 * names the reason, and the round's failures carry it.
 *
 * Nodes send [n_i * delta_i, n_i] in fixed point (delta_i = trained - global), so the unmasked sum gives
 * exactly the FedAvg mean delta sum n_i delta_i / sum n_i up to fixed-point rounding; the coordinator
 * never holds any single update. A node that fails in a phase drops out of the protocol; nodes that
 * drop after sharing keys are handled by the protocol (their masks are rebuilt from Shamir shares).
 */
import type { TensorSlot } from '../core/params.js';
import {
  decodeWeightedAverage,
  fixedPointErrorBound,
  type FixedPointConfig,
  fixedPointConfig,
} from '../core/secagg/fixed-point.js';
import { SecAggServer, type ServerInbound, type ServerOutbound } from '../core/secagg/protocol.js';
import type { TrainConfig } from '../model/trainer.js';
import { decodeMessage, encodeTrainRequest } from './messages.js';
import {
  clientIdOf,
  decodeSecAggFrame,
  encodeSecAggFrame,
  largestScaleBits,
  nodeIdOf,
  type SecAggSessionConfig,
} from './secure-messages.js';
import type { TrainResult } from './strategy.js';
import type { NodeFailure } from './round-record.js';
import type { Transport } from './transport.js';

/** The user's settings of secure aggregation (CLI --secagg*, RunConfig.secagg). */
export interface SecureAggregationOptions {
  /** Every coordinate of a node's update (trained - global) is clipped to [-clip, clip] before encoding. */
  clip: number;
  /** Largest numExamples a node may weight its update by (bounds the fixed-point range). */
  maxWeight: number;
}

export const DEFAULT_SECAGG: SecureAggregationOptions = { clip: 4, maxWeight: 65536 };

export interface SecureRoundInput {
  round: number;
  selected: readonly number[];
  layout: readonly TensorSlot[];
  transport: Transport;
  global: Float32Array;
  configFor: (nodeId: number) => TrainConfig;
  options: SecureAggregationOptions;
  /** A fresh, unguessable session id (bound into every key and mask). */
  session: string;
}

export interface SecureRoundOutcome {
  /** One per node whose update is in the sum: metrics only (numExamples 1, empty vector: the update stays private). */
  results: TrainResult[];
  failures: NodeFailure[];
  /** sum n_i delta_i / sum n_i, or null when the protocol could not finish. */
  meanDelta: Float32Array | null;
  totalWeight: number;
  fixedPoint: FixedPointConfig | null;
  /** Worst-case absolute error of meanDelta per coordinate from fixed-point rounding (before Float32 rounding). */
  errorBound: number;
}

type Failures = Map<number, string>;

/** Sends one request per node, in parallel; returns the decoded replies of the expected type, recording failures. */
async function exchange(
  input: SecureRoundInput,
  nodes: readonly number[],
  failures: Failures,
  expected: ServerInbound['type'],
  frameFor: (nodeId: number) => Uint8Array,
): Promise<Map<number, { msg: ServerInbound; header: Record<string, unknown> }>> {
  const out = new Map<number, { msg: ServerInbound; header: Record<string, unknown> }>();
  await Promise.all(
    nodes.map(async (nodeId) => {
      try {
        const reply = await input.transport.request(nodeId, frameFor(nodeId));
        const peek = decodeTypeOrError(input.layout, reply);
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
function feed(
  replies: Map<number, { msg: ServerInbound }>,
  failures: Failures,
  receive: (message: ServerInbound) => void,
): number[] {
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

export async function secureTrainRound(input: SecureRoundInput): Promise<SecureRoundOutcome> {
  const failures: Failures = new Map();
  const k = input.selected.length;
  const dim = input.global.length;
  const outcome = (
    meanDelta: Float32Array | null,
    totalWeight: number,
    fp: FixedPointConfig | null,
    included: number[],
    metrics: Map<number, TrainResult['metrics']>,
  ): SecureRoundOutcome => ({
    results: included.map((nodeId) => ({
      nodeId,
      numExamples: 1,
      steps: 0,
      vector: new Float32Array(0),
      metrics: metrics.get(nodeId)!,
    })),
    failures: [...failures].map(([nodeId, error]) => ({ nodeId, error })).sort((a, b) => a.nodeId - b.nodeId),
    meanDelta,
    totalWeight,
    fixedPoint: fp,
    errorBound: fp && totalWeight > 0 ? fixedPointErrorBound(fp, included.length) / totalWeight : 0,
  });
  if (k < 2) {
    for (const nodeId of input.selected) failures.set(nodeId, 'secure aggregation needs at least 2 nodes in a round');
    return outcome(null, 0, null, [], new Map());
  }
  const { clip, maxWeight } = input.options;
  const threshold = Math.max(2, Math.floor(k / 2) + 1);
  const fp = fixedPointConfig({ scaleBits: largestScaleBits(k, clip, maxWeight), clip, maxWeight, maxClients: k });
  const server = new SecAggServer({ session: input.session, threshold, vectorLength: dim + 1, consistencyCheck: true });
  const send = (msg: ServerOutbound, nodeId: number) => encodeSecAggFrame(msg, input.round, nodeId);
  const metrics = new Map<number, TrainResult['metrics']>();
  // Each node's session state lives in the host that trained it: keep its requests there until the end.
  for (const nodeId of input.selected) input.transport.pin?.(nodeId);
  try {
    const settings = (nodeId: number): SecAggSessionConfig => ({
      session: input.session,
      clientId: clientIdOf(nodeId),
      threshold,
      scaleBits: fp.scaleBits,
      clip,
      maxWeight,
      maxClients: k,
    });
    const advertised = await exchange(input, input.selected, failures, 'secagg.advertise-keys', (nodeId) =>
      encodeTrainRequest(input.layout, {
        round: input.round,
        nodeId,
        mode: 'weights',
        config: input.configFor(nodeId),
        weights: input.global,
        secagg: settings(nodeId),
      }),
    );
    for (const [nodeId, { header }] of advertised) {
      const m = header.metrics as Record<string, unknown> | undefined;
      metrics.set(nodeId, {
        loss: typeof m?.loss === 'number' ? m.loss : NaN,
        accuracy: typeof m?.accuracy === 'number' ? m.accuracy : NaN,
      });
    }
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
    const { average, totalWeight } = decodeWeightedAverage(result.sum, fp);
    const included = result.included.map(nodeIdOf);
    // A node whose masked input is in the sum but which missed unmasking still contributed.
    for (const n of included) failures.delete(n);
    return outcome(average, totalWeight, fp, included, metrics);
  } catch (e) {
    // The protocol aborted (too few nodes at some phase): no node's update is in any model.
    const reason = `secure aggregation aborted: ${(e as Error).message}${refusalSummary(failures)}`;
    for (const nodeId of input.selected) if (!failures.has(nodeId)) failures.set(nodeId, reason);
    return outcome(null, 0, fp, [], metrics);
  } finally {
    for (const nodeId of input.selected) input.transport.unpin?.(nodeId);
  }
}
