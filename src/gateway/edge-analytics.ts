/**
 * A gateway's answer to a plaintext analytics request from the cloud: the same request goes to each of its
 * live local nodes, and the gateway answers as one node holding all their rows, with their sketches merged.
 * The merge is exact: counts, label counts and histogram bins add as integers, min/max are taken, and the
 * moments combine by Chan et al.'s pairwise formula (exact in arithmetic; in float64 only the rounding of the
 * order differs, far below the 1e-9 relative agreement federated standardisation asks). So the cloud's pass
 * and POST /v1/analytics see the same statistics as if each local node had answered it directly.
 * Every local node must answer: a merged answer missing a node's rows would be silently partial, so one failed
 * node fails the gateway's answer, naming the node. A request with fields this gateway does not know (a secure
 * analytics round, say) is refused rather than forwarded in the clear.
 */
import type { Logger } from 'pino';
import { peekHeader } from '../core/wire.js';
import { addCounts, mergeHistograms } from '../core/analytics/histogram.js';
import { checkMoments, mergeAllMoments } from '../core/analytics/moments.js';
import {
  decodeAnalyticsRequest,
  encodeAnalyticsReply,
  encodeAnalyticsRequest,
  type AnalyticsReply,
  type AnalyticsRequest,
} from '../engine/analytics-messages.js';
import { encodeError } from '../engine/messages.js';
import { NetworkTransport } from '../coordinator/network-transport.js';
import { ANALYTICS_RUN_ID } from '../coordinator/standardize-pass.js';
import type { Registry } from '../coordinator/registry.js';
import type { Transport } from '../engine/transport.js';
import { requestAnalytics } from '../engine/analytics-round.js';

/** The header fields of a plaintext analytics request (the frame's own, then analytics-messages.ts'); no others. */
const PLAINTEXT_FIELDS = new Set([
  'v',
  'type',
  'tensors',
  'round',
  'node',
  'moments',
  'labels',
  'features',
  'histogram',
]);

export interface EdgeAnalyticsOptions {
  /** A local node's deadline to answer. */
  timeoutMs: number;
  /** Require signed replies from the local nodes (the gateway's --auth). */
  auth: boolean;
  log: Logger;
}

/** What answers the cloud's analytics frames on a gateway (an error frame says why it could not). */
export function edgeAnalytics(registry: Registry, options: EdgeAnalyticsOptions) {
  const transport = new NetworkTransport({
    registry,
    selection: { tags: {} },
    timeoutMs: options.timeoutMs,
    runId: ANALYTICS_RUN_ID,
    allowUnbound: !options.auth,
    configure: async () => {}, // analytics needs no model
  });
  return async (frame: Uint8Array): Promise<Uint8Array> => {
    let round = -1;
    let nodeId = -1;
    try {
      const header = peekHeader(frame);
      if (Number.isInteger(header.round) && Number.isInteger(header.node))
        [round, nodeId] = [header.round as number, header.node as number];
      requirePlaintext(header);
      const req = decodeAnalyticsRequest(frame);
      const reply = await mergedAnswer(transport, req);
      options.log.info({ round, nodes: transport.nodeIds().length, rows: reply.count }, 'edge analytics answered');
      return encodeAnalyticsReply(reply);
    } catch (e) {
      options.log.warn({ round, err: (e as Error).message }, 'gateway answers an analytics request with an error');
      return encodeError(round, nodeId, `gateway: ${(e as Error).message}`);
    }
  };
}

/** Throws unless the request's header has only a plaintext analytics request's fields. */
export function requirePlaintext(header: Record<string, unknown>): void {
  const unknown = Object.keys(header).filter((k) => !PLAINTEXT_FIELDS.has(k));
  if (unknown.length > 0)
    throw new Error(
      `a gateway forwards plaintext analytics only; this request also carries ${unknown.join(', ')} ` +
        '(ask the nodes behind the gateway directly for a secure analytics round)',
    );
}

/** Asks one local node; its reply, or an Error saying why not. */
async function ask(transport: Transport, req: AnalyticsRequest, local: number): Promise<AnalyticsReply> {
  const r = await requestAnalytics(transport, local, encodeAnalyticsRequest({ ...req, nodeId: local }));
  if (r.nodeId !== local || r.round !== req.round) throw new Error('reply for another node or round');
  return r;
}

/** Every local node's sketches of `req`, merged into one reply for the cloud's node id. */
export async function mergedAnswer(transport: Transport, req: AnalyticsRequest): Promise<AnalyticsReply> {
  const locals = transport.nodeIds();
  if (locals.length === 0) throw new Error('no live local node to answer the analytics request');
  const outcomes = await Promise.all(locals.map((id) => ask(transport, req, id).catch((e: Error) => e)));
  const failed = outcomes.flatMap((o, i) => (o instanceof Error ? [`local node ${locals[i]}: ${o.message}`] : []));
  if (failed.length > 0) throw new Error(`not every local node answered (${failed.join('; ')})`);
  const replies = outcomes as AnalyticsReply[];
  const first = replies[0];
  for (const [i, r] of replies.entries()) {
    const where = `local node ${locals[i]}`;
    if (r.featureCount !== first.featureCount)
      throw new Error(`${where} holds ${r.featureCount} features, local node ${locals[0]} ${first.featureCount}`);
    const names = (c?: string[]) => (c ? c.join(', ') : '(unnamed)');
    if (names(r.columns) !== names(first.columns))
      throw new Error(`${where}'s columns are ${names(r.columns)}, local node ${locals[0]}'s ${names(first.columns)}`);
    if (req.moments) {
      if (!r.moments) throw new Error(`${where}'s reply has no moments`);
      checkMoments(r.moments, req.features?.length ?? r.featureCount, where);
    }
    if (req.histogram && !r.histogram) throw new Error(`${where}'s reply has no histogram`);
    if (req.labels && !r.labels) throw new Error(`${where}'s reply has no label counts`);
  }
  return {
    round: req.round,
    nodeId: req.nodeId,
    featureCount: first.featureCount,
    ...(first.columns ? { columns: first.columns } : {}),
    count: replies.reduce((s, r) => s + r.count, 0),
    ...(req.moments ? { moments: mergeAllMoments(replies.map((r) => r.moments!)) } : {}),
    ...(req.histogram ? { histogram: replies.map((r) => r.histogram!).reduce(mergeHistograms) } : {}),
    ...(req.labels ? { labels: replies.map((r) => r.labels!).reduce(addCounts) } : {}),
  };
}
