/**
 * The node side of a secure-aggregation round (Bonawitz et al. 2017). After local training the node keeps
 * its update here, never in a reply: it answers the train request with its public keys only, then
 * shares keys, sends its update masked (fixed point, weighted by numExamples, plus the weight itself)
 * and finally the shares that unmask the sum. One host may hold sessions for several virtual nodes.
 *
 * Against a malicious coordinator the node signs its advertisement with its identity key, checks its peers'
 * against the PeerTrust it was given, signs the survivor set in the consistency round, and takes part in at
 * most one session per round: two sessions over the same update with different survivors would let the
 * coordinator subtract one sum from the other. The rounds it shared keys for are remembered in memory for
 * the life of this object (one run on an agent), not across a process restart.
 */
import { SecAggClient, SecAggError, type ClientIdentity } from '../core/secagg/protocol.js';
import { encodeWeightedUpdate, type FixedPointConfig } from '../core/secagg/fixed-point.js';
import type { RandomBytes } from '../core/secagg/random.js';
import type { Metrics } from '../model/trainer.js';
import {
  decodeSecAggFrame,
  encodeSecAggFrame,
  nodeIdOf,
  parseSessionConfig,
  type SecAggSessionConfig,
} from '../engine/secure-messages.js';

export interface SecureNodeOptions {
  /** Fault injection: true if this node should vanish after sharing its keys this round (roster = node ids). */
  dropAfterShareKeys?: (round: number, nodeId: number, roster: readonly number[]) => boolean;
  /** Called when a node drops by fault injection (a deployed agent disconnects here). */
  onDrop?: (round: number, nodeId: number) => void;
  /** The node's identity key and how it trusts its peers' (undefined: the node cannot take part). */
  identity?: (nodeId: number) => ClientIdentity | undefined;
}

interface OpenSession {
  round: number;
  client: SecAggClient;
  /** The private, encoded input (a training update [n * clip(delta), n], or analytics statistics). */
  input: Uint32Array;
}

/** A CSPRNG (Web Crypto, in Node and browsers): masks and keys must be unpredictable. */
const cryptoRandomBytes: RandomBytes = (n) => globalThis.crypto.getRandomValues(new Uint8Array(n));

export class SecureNodeSessions {
  private readonly sessions = new Map<number, OpenSession>();
  /** The rounds each node has shared its keys in (the point after which a second session leaks). */
  private readonly sharedRounds = new Map<number, Set<number>>();

  constructor(private readonly o: SecureNodeOptions = {}) {}

  /**
   * Round 0 after training: encodes the node's update (trained - global) privately and answers with its
   * public keys (and its training metrics, which are not protected).
   */
  start(
    round: number,
    nodeId: number,
    rawConfig: unknown,
    global: Float32Array,
    trained: Float32Array,
    numExamples: number,
    metrics: Metrics,
  ): Uint8Array {
    return this.open(
      round,
      nodeId,
      rawConfig,
      (config, fixedPoint) => {
        if (numExamples > config.maxWeight)
          throw new Error(
            `secure aggregation: this node has ${numExamples} examples, more than the session's maxWeight ${config.maxWeight}`,
          );
        const delta = new Float64Array(trained.length);
        for (let i = 0; i < delta.length; i++) delta[i] = trained[i] - global[i];
        return encodeWeightedUpdate(delta, numExamples, fixedPoint);
      },
      { metrics },
    );
  }

  /**
   * Opens a session whose private input `encode` computes (a training update, analytics statistics) and
   * answers with the node's public keys plus `extra` header fields (which are not protected).
   */
  open(
    round: number,
    nodeId: number,
    rawConfig: unknown,
    encode: (config: SecAggSessionConfig, fixedPoint: FixedPointConfig) => Uint32Array,
    extra: Record<string, unknown> = {},
  ): Uint8Array {
    this.close(nodeId);
    const { config, fixedPoint } = parseSessionConfig(rawConfig);
    if (nodeIdOf(config.clientId) !== nodeId)
      throw new Error(`secagg client id ${config.clientId} is not node ${nodeId}'s`);
    if (this.sharedRounds.get(nodeId)?.has(round)) {
      throw new Error(
        `secure aggregation refused (second_session): node ${nodeId} already shared its keys for round ${round} ` +
          'in another session; a second session over the same input could reveal it by differencing the two sums',
      );
    }
    const identity = this.o.identity?.(nodeId);
    if (!identity)
      throw new Error(
        `secure aggregation refused (no_identity): node ${nodeId} has no identity key to sign its key advertisement`,
      );
    const input = encode(config, fixedPoint);
    const client = new SecAggClient({
      id: config.clientId,
      session: config.session,
      threshold: config.threshold,
      vectorLength: input.length,
      randomBytes: cryptoRandomBytes,
      identity,
    });
    const advertise = client.advertiseKeys();
    this.sessions.set(nodeId, { round, client, input });
    return encodeSecAggFrame(advertise, round, nodeId, extra);
  }

  /** Whether this object holds node's session for `round` (a host with several kinds of session routes by it). */
  holds(nodeId: number, round: number): boolean {
    return this.sessions.get(nodeId)?.round === round;
  }

  /** Rounds 1-3: the coordinator's roster, forwarded shares or unmask request in, this node's answer out. */
  handle(frame: Uint8Array): Uint8Array {
    const { round, nodeId, msg } = decodeSecAggFrame(frame);
    const s = this.sessions.get(nodeId);
    if (!s || s.round !== round)
      throw new Error(`node ${nodeId} has no open secure-aggregation session for round ${round}`);
    try {
      switch (msg.type) {
        case 'secagg.key-roster': {
          const shared = encodeSecAggFrame(s.client.shareKeys(msg), round, nodeId);
          this.sharedRounds.set(nodeId, (this.sharedRounds.get(nodeId) ?? new Set()).add(round));
          return shared;
        }
        case 'secagg.consistency-request':
          return encodeSecAggFrame(s.client.consistencyCheck(msg), round, nodeId);
        case 'secagg.forwarded-shares': {
          const roster = msg.shares.map((e) => nodeIdOf(e.from)).concat(nodeId);
          if (this.o.dropAfterShareKeys?.(round, nodeId, roster)) {
            this.close(nodeId);
            this.o.onDrop?.(round, nodeId);
            throw new Error('dropped out after sharing keys (fault injection)');
          }
          const masked = s.client.maskInput(msg, s.input);
          s.input.fill(0);
          return encodeSecAggFrame(masked, round, nodeId);
        }
        case 'secagg.unmask-request': {
          const reply = encodeSecAggFrame(s.client.unmask(msg), round, nodeId);
          this.close(nodeId);
          return reply;
        }
        default:
          throw new Error(`a node does not accept '${msg.type}' messages`);
      }
    } catch (e) {
      // The client aborted (it reveals nothing more); the session is over for this node.
      this.close(nodeId);
      if (e instanceof SecAggError) throw new Error(`secure aggregation refused (${e.code}): ${e.message}`);
      throw e;
    }
  }

  private close(nodeId: number): void {
    this.sessions.get(nodeId)?.client.abort();
    this.sessions.delete(nodeId);
  }
}
