/**
 * The secure-aggregation round on the wire: the session settings a node receives with its train request,
 * and the Bonawitz messages (core/secagg/codec.ts) carried as frames that also name the round and node,
 * so the same request/reply Transport (worker pool or network) can route and match them.
 */
import { decodeFrame, encodeFrame, FrameError } from '../core/wire.js';
import { encodeSecAggMessage, fromFrame, isSecAggFrameType, type SecAggMessage } from '../core/secagg/codec.js';
import { fixedPointConfig, type FixedPointConfig } from '../core/secagg/fixed-point.js';
import { Rng } from '../core/rng.js';

/** What a node needs to take part in one aggregation (sent in the train request's header as `secagg`). */
export interface SecAggSessionConfig {
  session: string;
  /** The node's id in the protocol (its Shamir x-coordinate): nodeId + 1. */
  clientId: number;
  threshold: number;
  scaleBits: number;
  clip: number;
  maxWeight: number;
  maxClients: number;
}

/** The protocol's client id for a node: ids must be >= 1, node ids start at 0. */
export const clientIdOf = (nodeId: number): number => nodeId + 1;
export const nodeIdOf = (clientId: number): number => clientId - 1;

/** Validates a session config from a frame header; throws FrameError('bad_secagg') on anything odd. */
export function parseSessionConfig(raw: unknown): { config: SecAggSessionConfig; fixedPoint: FixedPointConfig } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new FrameError('bad_secagg', 'secagg settings must be an object');
  const r = raw as Record<string, unknown>;
  const whole = (k: string, min: number) => {
    const v = r[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min)
      throw new FrameError('bad_secagg', `secagg.${k} must be a whole number >= ${min}`);
    return v;
  };
  if (typeof r.session !== 'string' || r.session.length === 0 || r.session.length > 256)
    throw new FrameError('bad_secagg', 'secagg.session must be a string of 1 to 256 characters');
  if (typeof r.clip !== 'number' || !(r.clip > 0) || !Number.isFinite(r.clip))
    throw new FrameError('bad_secagg', 'secagg.clip must be a finite number > 0');
  const config: SecAggSessionConfig = {
    session: r.session,
    clientId: whole('clientId', 1),
    threshold: whole('threshold', 2),
    scaleBits: whole('scaleBits', 0),
    clip: r.clip,
    maxWeight: whole('maxWeight', 1),
    maxClients: whole('maxClients', 2),
  };
  try {
    return { config, fixedPoint: fixedPointConfig(config) };
  } catch (e) {
    throw new FrameError('bad_secagg', (e as Error).message);
  }
}

/** The largest fractional precision (<= 24 bits) at which maxClients full-size inputs cannot overflow int32. */
export function largestScaleBits(maxClients: number, clip: number, maxWeight: number): number {
  for (let s = 24; s >= 0; s--) {
    if (maxClients * Math.round(maxWeight * clip * 2 ** s) <= 2 ** 31 - 1) return s;
  }
  throw new Error(
    `secure aggregation: ${maxClients} nodes with up to ${maxWeight} examples and clip ${clip} overflow 32 bits; lower --secagg-max-weight or the clip`,
  );
}

/** A secure-aggregation message as a frame carrying its round and node (and any extra header fields). */
export function encodeSecAggFrame(
  msg: SecAggMessage,
  round: number,
  nodeId: number,
  extra: Record<string, unknown> = {},
): Uint8Array {
  const inner = decodeFrame(encodeSecAggMessage(msg));
  const { type, ...fields } = inner.header;
  return encodeFrame(String(type), { ...fields, ...extra, round, node: nodeId }, inner.tensors);
}

export interface SecAggFrame {
  round: number;
  nodeId: number;
  msg: SecAggMessage;
  header: Record<string, unknown>;
}

/** Decodes a frame from encodeSecAggFrame, checking every field (FrameError otherwise). */
export function decodeSecAggFrame(bytes: Uint8Array): SecAggFrame {
  const frame = decodeFrame(bytes);
  const h = frame.header;
  if (typeof h.type !== 'string' || !isSecAggFrameType(h.type))
    throw new FrameError('bad_type', `expected a secure-aggregation frame, got '${String(h.type)}'`);
  const round = h.round;
  const nodeId = h.node;
  if (
    typeof round !== 'number' ||
    !Number.isInteger(round) ||
    typeof nodeId !== 'number' ||
    !Number.isInteger(nodeId) ||
    nodeId < 0
  ) {
    throw new FrameError('bad_field', 'a secure-aggregation frame needs whole-number round and node fields');
  }
  return { round, nodeId, msg: fromFrame(frame), header: h };
}

/** The reply type a node answers each secure-round request with (for transports that match replies). */
export function secAggReplyType(request: Record<string, unknown>): string | undefined {
  if (request.type === 'train' && request.secagg !== undefined) return 'secagg.advertise-keys';
  if (request.type === 'analytics' && request.secure !== undefined) return 'secagg.advertise-keys';
  if (request.type === 'secagg.key-roster') return 'secagg.share-keys';
  if (request.type === 'secagg.forwarded-shares') return 'secagg.masked-input';
  if (request.type === 'secagg.consistency-request') return 'secagg.consistency-signature';
  if (request.type === 'secagg.unmask-request') return 'secagg.unmask-shares';
  return undefined;
}

/** How many of n nodes a dropout fraction removes: floor(fraction * n). */
export function dropoutCount(fraction: number, n: number): number {
  return Math.floor(fraction * n + 1e-9);
}

/**
 * Fault injection: the nodes of a round that vanish after sharing their keys, a seeded choice of
 * floor(fraction * |roster|) of the roster (the nodes that advertised keys), the same on every node.
 */
export function secAggDropouts(seed: number, round: number, roster: readonly number[], fraction: number): Set<number> {
  const sorted = [...roster].sort((a, b) => a - b);
  const picks = new Rng(seed).fork(`secagg-drop:${round}`).sample(sorted.length, dropoutCount(fraction, sorted.length));
  return new Set(picks.map((i) => sorted[i]));
}
