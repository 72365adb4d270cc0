/**
 * The network transport for one run: request frames go to nodes over their connection, replies come back
 * through the registry. A reply that misses its deadline fails the request (the node is a straggler);
 * when it arrives later it is handed to onLate, recorded, and never fused into another round.
 */
import type { Transport } from '../engine/transport.js';
import { TrafficMeter } from '../engine/transport.js';
import { peekHeader } from '../core/wire.js';
import { shown } from '../core/shown.js';
import { bindFrame, randomNonce, type Binding } from '../core/identity.js';
import { randomBytes } from 'node:crypto';
import type { LiveNode, Registry, Selection } from './registry.js';
import { secAggReplyType } from '../engine/secure-messages.js';
import type { ModelSpec } from '../model/spec.js';
import type { FeatureStandardization } from '../net/node-protocol.js';
import { ANALYTICS_REPLY, ANALYTICS_REQUEST } from '../engine/analytics-messages.js';

const REPLY_TYPES: Record<string, string> = { [ANALYTICS_REQUEST]: ANALYTICS_REPLY };

/** CSPRNG bytes drawn 4 KB at a time: a 10,000-node round asks for 10,000 nonces, one OpenSSL call per 256. */
const randomPool = { bytes: new Uint8Array(0), at: 0 };
function pooledRandomBytes(n: number): Uint8Array {
  if (randomPool.at + n > randomPool.bytes.length) {
    randomPool.bytes = new Uint8Array(randomBytes(Math.max(4096, n)));
    randomPool.at = 0;
  }
  const out = randomPool.bytes.subarray(randomPool.at, randomPool.at + n);
  randomPool.at += n;
  return out;
}

/** Tells a node a run's model spec (and the statistics its features are scaled with) once, before its first request. */
export function configureForRun(
  runId: number,
  spec: ModelSpec,
  standardization?: () => FeatureStandardization | undefined,
): (node: LiveNode) => Promise<void> {
  return async (node) => {
    if (node.configuredRun === runId) return;
    const stats = standardization?.();
    node.connection.sendControl({ type: 'configure', runId, spec, ...(stats ? { standardization: stats } : {}) });
    node.configuredRun = runId;
  };
}

export interface NetworkTransportOptions {
  registry: Registry;
  selection: Selection;
  timeoutMs: number;
  runId: number;
  /** Accept replies without a signed binding (auth off). */
  allowUnbound: boolean;
  /** Makes sure the node holds this run's model spec before its first request. */
  configure: (node: LiveNode) => Promise<void>;
  onLate?: (nodeId: number, header: Record<string, unknown>) => void;
}

/** Longest stretch of a round's synchronous work (encoding, sending, fusing) before the event loop gets a turn. */
const PACE_SLICE_MS = 8;
/** How many paced steps (a request sent, a reply decoded) resume per turn of the loop. */
const PACE_BATCH = 32;

export class NetworkTransport implements Transport {
  private readonly meter = new TrafficMeter();
  private sliceStart = performance.now();
  /** Steps waiting for their turn (pace), in arrival order. */
  private readonly paused: (() => void)[] = [];
  private turnQueued = false;

  constructor(private readonly options: NetworkTransportOptions) {}

  nodeIds(): number[] {
    return this.options.registry.eligible(this.options.selection);
  }

  request(nodeId: number, frame: Uint8Array): Promise<Uint8Array> {
    return this.send(nodeId, frame, null);
  }

  /** The head goes out bound, then the body as it is: a round's shared body is never copied per node. */
  requestParts(nodeId: number, head: Uint8Array, body: Uint8Array): Promise<Uint8Array> {
    return this.send(nodeId, head, body);
  }

  /** Sends the frame `head` (+ `body`, when given) bound to a fresh nonce and awaits the node's reply to it. */
  private async send(nodeId: number, head: Uint8Array, body: Uint8Array | null): Promise<Uint8Array> {
    const node = this.options.registry.get(nodeId);
    if (!node) throw new Error('node is not connected');
    if (node.waiter) throw new Error('node is busy with another request');
    await this.options.configure(node);
    const sent = peekHeader(head);
    const replyType =
      secAggReplyType(sent) ??
      REPLY_TYPES[String(sent.type)] ??
      (sent.type === 'train' ? 'train_result' : 'eval_result');
    const binding: Binding = {
      run: this.options.runId,
      round: Number(sent.round),
      node: nodeId,
      nonce: randomNonce(pooledRandomBytes),
    };
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (node.waiter === waiter) node.waiter = null;
        reject(new Error(`deadline of ${this.options.timeoutMs} ms passed`));
      }, this.options.timeoutMs);
      const waiter = {
        binding,
        accept: (reply: Uint8Array, replyBinding: Binding | null): boolean => {
          // A signed reply must answer this very request: same run, round, node and nonce.
          if (
            replyBinding
              ? replyBinding.nonce !== binding.nonce || replyBinding.round !== binding.round
              : !this.options.allowUnbound
          )
            return false;
          let h: Record<string, unknown>;
          try {
            h = peekHeader(reply);
          } catch {
            return false;
          }
          // Signed for this very request (nonce matches) but claiming another round: a bad reply, refused.
          if (replyBinding && h.round !== sent.round) {
            clearTimeout(timer);
            node.waiter = null;
            reject(new Error(`reply is for round ${shown(h.round)}, the request was round ${shown(sent.round)}`));
            return true;
          }
          // An error reply or the reply of the same type for this round is ours; anything else is late.
          if (h.round !== sent.round || (h.type !== replyType && h.type !== 'error')) return false;
          clearTimeout(timer);
          node.waiter = null;
          node.seenNonces.add(binding.nonce);
          if (node.seenNonces.size > 256) node.seenNonces.delete(node.seenNonces.values().next().value!);
          this.meter.count(nodeId, 0, reply.length);
          resolve(reply);
          return true;
        },
        fail: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      node.waiter = waiter;
      const failed = (err: Error) => waiter.fail(new Error(`send failed: ${err.message}`));
      const bound = bindFrame(binding, head);
      this.meter.count(nodeId, bound.length + (body?.length ?? 0), 0);
      if (body) node.connection.sendFrameParts([bound, body], failed);
      else node.connection.sendFrame(bound, failed);
    });
  }

  /**
   * Yields to the event loop once a slice of PACE_SLICE_MS is used up: heartbeats, /healthz and replies already
   * in are served between the requests of a 10,000-node round instead of after all of them. Waiters resume at most
   * PACE_BATCH per turn of the loop, first come first served: a verify-pool batch of 2,000 replies would otherwise
   * all be decoded in one turn.
   */
  pace(): Promise<void> {
    if (this.paused.length === 0 && performance.now() - this.sliceStart < PACE_SLICE_MS) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.paused.push(resolve);
      this.nextTurn();
    });
  }

  private nextTurn(): void {
    if (this.turnQueued) return;
    this.turnQueued = true;
    // Queued from inside the check phase, setImmediate runs after the next I/O poll: one batch per loop turn.
    setImmediate(() => {
      this.turnQueued = false;
      this.sliceStart = performance.now();
      for (const resume of this.paused.splice(0, PACE_BATCH)) resume();
      if (this.paused.length > 0) this.nextTurn();
    });
  }

  /** A reply no request was waiting for (deadline passed): recorded as a late update. */
  late(nodeId: number, frame: Uint8Array): void {
    this.meter.count(nodeId, 0, frame.length);
    let header: Record<string, unknown> = {};
    try {
      header = peekHeader(frame);
    } catch {
      // an unreadable late frame is still recorded, with no header
    }
    this.options.onLate?.(nodeId, header);
  }

  traffic() {
    return this.meter.snapshot();
  }

  async close(): Promise<void> {}
}
