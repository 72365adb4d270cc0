/**
 * The frames of an analytics round: the coordinator asks for sketches of selected features, a node answers
 * with them and never with rows. Moments travel as float64 numbers in the JSON header (frames have no
 * float64 tensors, and float32 would lose the precision federated standardisation needs; JSON numbers
 * round-trip float64 exactly); histogram and label counts travel as int32 tensors.
 */
import { decodeFrame, encodeFrame, FrameError, type WireTensor } from '../core/wire.js';
import type { FeatureMoments } from '../core/analytics/moments.js';
import type { FeatureHistogram } from '../core/analytics/histogram.js';
import { parseSessionConfig, type SecAggSessionConfig } from './secure-messages.js';

export const ANALYTICS_REQUEST = 'analytics';
export const ANALYTICS_REPLY = 'analytics_result';

export interface AnalyticsRequest {
  round: number;
  nodeId: number;
  /** Feature indices to summarise; absent = all. */
  features?: number[];
  moments: boolean;
  labels: boolean;
  histogram?: { bins: number; lo: number[]; hi: number[] };
  /** Layout only: the node answers with its feature count, columns and label classes, and no statistics. */
  describe?: boolean;
  /** Under secure aggregation: the node answers with its additive statistics masked (analytics-secure.ts). */
  secure?: SecureAnalyticsSpec;
}

/** What a node needs to send its additive statistics masked (the session's fixed point is wide-fixed.ts). */
export interface SecureAnalyticsSpec {
  /** The Bonawitz session settings, as a secure training round sends them. */
  session: SecAggSessionConfig;
  fractionBits: number;
  limbs: number;
  /** Most rows a node may hold (sizes the fixed point; a node with more refuses). */
  maxRows: number;
  /** Declared per-feature value ranges for moments (values outside are clipped and counted). */
  value?: { lo: number[]; hi: number[] };
  /** Label slots every node pads its counts to (0: no label counts). */
  classes: number;
  /** Distributed DP: each node's discrete Gaussian stddev (whole steps) on each released count vector. */
  noise?: { count: number; histogram: number; labels: number };
}

export interface AnalyticsReply {
  round: number;
  nodeId: number;
  /** The node's feature count (so the coordinator can check a selection and name features). */
  featureCount: number;
  /** The node's feature column names, when its data has them (CSV): a pass can check every node's layout. */
  columns?: string[];
  count: number;
  moments?: FeatureMoments;
  histogram?: FeatureHistogram;
  labels?: Float64Array;
  /** Label classes of the node's data (describe replies). */
  classes?: number;
}

export function encodeAnalyticsRequest(request: AnalyticsRequest): Uint8Array {
  return encodeFrame(ANALYTICS_REQUEST, {
    round: request.round,
    node: request.nodeId,
    moments: request.moments,
    labels: request.labels,
    ...(request.features ? { features: request.features } : {}),
    ...(request.histogram ? { histogram: request.histogram } : {}),
    ...(request.describe ? { describe: true } : {}),
    ...(request.secure ? { secure: request.secure } : {}),
  });
}

const finiteList = (v: unknown, what: string, length?: number): number[] => {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isFinite(x)))
    throw new FrameError('bad_field', `field '${what}' must be a list of finite numbers`);
  if (length !== undefined && v.length !== length)
    throw new FrameError('bad_field', `field '${what}' has ${v.length} values, expected ${length}`);
  return v as number[];
};
const whole = (v: unknown, what: string): number => {
  if (!(typeof v === 'number' && Number.isInteger(v) && v >= 0))
    throw new FrameError('bad_field', `field '${what}' must be a whole number >= 0`);
  return v;
};

export function decodeAnalyticsRequest(bytes: Uint8Array): AnalyticsRequest {
  const { header: h } = decodeFrame(bytes);
  if (h.type !== ANALYTICS_REQUEST)
    throw new FrameError('bad_type', `expected an analytics request, got '${String(h.type)}'`);
  const req: AnalyticsRequest = {
    round: whole(h.round, 'round'),
    nodeId: whole(h.node, 'node'),
    moments: h.moments === true,
    labels: h.labels === true,
  };
  if (h.features !== undefined) req.features = finiteList(h.features, 'features').map((f) => whole(f, 'features'));
  if (h.histogram !== undefined) {
    const g = h.histogram as Record<string, unknown>;
    if (typeof g !== 'object' || g === null) throw new FrameError('bad_field', "field 'histogram' must be an object");
    const lo = finiteList(g.lo, 'histogram.lo');
    req.histogram = { bins: whole(g.bins, 'histogram.bins'), lo, hi: finiteList(g.hi, 'histogram.hi', lo.length) };
  }
  if (h.describe === true) req.describe = true;
  if (h.secure !== undefined) req.secure = decodeSecureSpec(h.secure);
  return req;
}

function decodeSecureSpec(raw: unknown): SecureAnalyticsSpec {
  if (typeof raw !== 'object' || raw === null) throw new FrameError('bad_field', "field 'secure' must be an object");
  const s = raw as Record<string, unknown>;
  const spec: SecureAnalyticsSpec = {
    session: parseSessionConfig(s.session).config,
    fractionBits: whole(s.fractionBits, 'secure.fractionBits'),
    limbs: whole(s.limbs, 'secure.limbs'),
    maxRows: whole(s.maxRows, 'secure.maxRows'),
    classes: whole(s.classes, 'secure.classes'),
  };
  if (s.value !== undefined) {
    const v = s.value as Record<string, unknown>;
    const lo = finiteList(v?.lo, 'secure.value.lo');
    spec.value = { lo, hi: finiteList(v.hi, 'secure.value.hi', lo.length) };
  }
  if (s.noise !== undefined) {
    const z = s.noise as Record<string, unknown>;
    spec.noise = {
      count: whole(z?.count, 'secure.noise.count'),
      histogram: whole(z.histogram, 'secure.noise.histogram'),
      labels: whole(z.labels, 'secure.noise.labels'),
    };
  }
  return spec;
}

const int32 = (name: string, counts: Float64Array, shape: number[]): WireTensor => ({
  name,
  dtype: 'int32',
  shape,
  data: Int32Array.from(counts),
});

export function encodeAnalyticsReply(reply: AnalyticsReply): Uint8Array {
  const m = reply.moments;
  const tensors: WireTensor[] = [];
  if (reply.histogram)
    tensors.push(int32('histogram', reply.histogram.counts, [reply.histogram.lo.length, reply.histogram.bins]));
  if (reply.labels) tensors.push(int32('labels', reply.labels, [reply.labels.length]));
  return encodeFrame(
    ANALYTICS_REPLY,
    {
      round: reply.round,
      node: reply.nodeId,
      featureCount: reply.featureCount,
      ...(reply.columns ? { columns: reply.columns } : {}),
      ...(reply.classes !== undefined ? { classes: reply.classes } : {}),
      count: reply.count,
      ...(m ? { moments: { mean: [...m.mean], m2: [...m.m2], min: [...m.min], max: [...m.max] } } : {}),
      ...(reply.histogram
        ? { histogram: { bins: reply.histogram.bins, lo: [...reply.histogram.lo], hi: [...reply.histogram.hi] } }
        : {}),
    },
    tensors,
  );
}

/** Decodes a node's reply, checking shapes; the values are checked against the request by the caller. */
export function decodeAnalyticsReply(bytes: Uint8Array): AnalyticsReply {
  const { header: h, tensors } = decodeFrame(bytes);
  if (h.type !== ANALYTICS_REPLY)
    throw new FrameError('bad_type', `expected an analytics result, got '${String(h.type)}'`);
  const count = whole(h.count, 'count');
  const reply: AnalyticsReply = {
    round: whole(h.round, 'round'),
    nodeId: whole(h.node, 'node'),
    featureCount: whole(h.featureCount, 'featureCount'),
    count,
  };
  if (h.columns !== undefined) {
    const names = h.columns;
    if (!Array.isArray(names) || names.length !== reply.featureCount || names.some((c) => typeof c !== 'string'))
      throw new FrameError('bad_field', `field 'columns' must be ${reply.featureCount} column names`);
    reply.columns = names as string[];
  }
  if (h.classes !== undefined) reply.classes = whole(h.classes, 'classes');
  const byName = new Map(tensors.map((t) => [t.name, t]));
  if (h.moments !== undefined) {
    const m = h.moments as Record<string, unknown>;
    const mean = finiteList(m?.mean, 'moments.mean');
    const field = (k: string) => Float64Array.from(finiteList(m[k], `moments.${k}`, mean.length));
    reply.moments = { count, mean: Float64Array.from(mean), m2: field('m2'), min: field('min'), max: field('max') };
  }
  if (h.histogram !== undefined) {
    const g = h.histogram as Record<string, unknown>;
    const lo = finiteList(g?.lo, 'histogram.lo');
    const bins = whole(g.bins, 'histogram.bins');
    const tensor = byName.get('histogram');
    if (!tensor || tensor.dtype !== 'int32' || tensor.data.length !== lo.length * bins)
      throw new FrameError('bad_tensors', `histogram counts must be int32 [${lo.length}, ${bins}]`);
    const hi = Float64Array.from(finiteList(g.hi, 'histogram.hi', lo.length));
    reply.histogram = { bins, lo: Float64Array.from(lo), hi, counts: Float64Array.from(tensor.data) };
  }
  const labels = byName.get('labels');
  if (labels) {
    if (labels.dtype !== 'int32') throw new FrameError('bad_tensors', 'label counts must be int32');
    reply.labels = Float64Array.from(labels.data);
  }
  const negative = [reply.histogram?.counts, reply.labels].some((c) => c?.some((v) => v < 0));
  if (negative) throw new FrameError('bad_tensors', 'counts must be >= 0');
  return reply;
}
