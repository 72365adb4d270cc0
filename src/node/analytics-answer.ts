/**
 * A node's answer to an analytics request: sketches of its own rows (training and held-out validation
 * rows alike, before any scaling), never the rows; under secure aggregation, its additive statistics
 * masked, so the coordinator only ever learns the federation's sum. BROWSER-SAFE.
 */
import { featureHistogram, labelCounts, mergeHistograms } from '../core/analytics/histogram.js';
import { featureMoments, mergeMoments } from '../core/analytics/moments.js';
import { featureSize, type Dataset } from '../data/types.js';
import {
  decodeAnalyticsRequest,
  encodeAnalyticsReply,
  type AnalyticsReply,
  type AnalyticsRequest,
} from '../engine/analytics-messages.js';
import { encodeError } from '../engine/messages.js';
import { peekHeader } from '../core/wire.js';
import { isSecAggFrameType } from '../core/secagg/codec.js';
import { encodeWide } from '../core/secagg/wide-fixed.js';
import { additiveLayout, additiveStatistics, type AdditiveSpec } from '../core/analytics/additive.js';
import { discreteGaussianVector, type RandomWords } from '../core/discrete-gaussian.js';
import { SecureNodeSessions, type SecureNodeOptions } from './secure-session.js';
import { cryptoWords } from '../core/random-words.js';

/** The selected columns of d's rows, row-major. */
function selectColumns(d: Dataset, features: readonly number[] | undefined): Float32Array {
  if (!features) return d.x;
  const f = featureSize(d);
  const out = new Float32Array(d.n * features.length);
  for (let r = 0; r < d.n; r++) features.forEach((j, k) => (out[r * features.length + k] = d.x[r * f + j]));
  return out;
}

/** Sketches of `parts` (a node's raw data, possibly in several pieces) for one request; throws on a bad request. */
export function answerAnalytics(req: AnalyticsRequest, parts: readonly Dataset[]): AnalyticsReply {
  const featureCount = featureSize(parts[0]);
  const bad = (req.features ?? []).filter((j) => j >= featureCount);
  if (bad.length > 0)
    throw new Error(
      `feature index ${bad.join(', ')} is out of range: this node's data has ${featureCount} features (0..${featureCount - 1})`,
    );
  const width = req.features?.length ?? featureCount;
  const reply: AnalyticsReply = {
    round: req.round,
    nodeId: req.nodeId,
    featureCount,
    ...(parts[0].columns?.length === featureCount ? { columns: [...parts[0].columns] } : {}),
    count: parts.reduce((s, d) => s + d.n, 0),
  };
  // The layout alone (for a secure pass to size its vector): no figure about the rows.
  if (req.describe) return { ...reply, count: 0, classes: Math.max(0, parts[0].numClasses) };
  const columns = parts.map((d) => selectColumns(d, req.features));
  if (req.moments) reply.moments = columns.map((x) => featureMoments(x, width)).reduce(mergeMoments);
  if (req.histogram) {
    const { bins, lo, hi } = req.histogram;
    if (lo.length !== width)
      throw new Error(`histogram ranges cover ${lo.length} features, the request selects ${width}`);
    reply.histogram = columns.map((x) => featureHistogram(x, lo, hi, bins)).reduce(mergeHistograms);
  }
  if (req.labels) {
    const d = parts[0];
    if (d.numClasses < 1 || !(d.y instanceof Int32Array))
      throw new Error('labels: this node holds regression targets, not class labels');
    const counts = new Float64Array(d.numClasses);
    for (const p of parts) labelCounts(p.y, d.numClasses).forEach((c, i) => (counts[i] += c));
    reply.labels = counts;
  }
  return reply;
}

/** What a node needs to answer analytics under secure aggregation. */
export interface SecureAnalyticsNode {
  sessions: SecureNodeSessions;
  /** Words for its share of distributed DP noise (a CSPRNG deployed; a seeded stream per node in simulation). */
  noiseWords: (nodeId: number, round: number) => RandomWords;
}

/**
 * A deployed agent's secure analytics: sessions with its identity (made on first use), CSPRNG noise, and
 * `holds` to route a secure-aggregation frame here rather than to a training run's host.
 */
export function secureAnalyticsSessions(options: () => SecureNodeOptions) {
  let sessions: SecureNodeSessions | undefined;
  const node: SecureAnalyticsNode = {
    get sessions() {
      return (sessions ??= new SecureNodeSessions(options()));
    },
    noiseWords: () => cryptoWords(),
  };
  return {
    node,
    holds(frame: Uint8Array): boolean {
      // No session yet (no secure analytics round asked): every training frame skips the header read.
      if (sessions === undefined) return false;
      try {
        const h = peekHeader(frame);
        return (
          typeof h.type === 'string' && isSecAggFrameType(h.type) && sessions.holds(h.node as number, h.round as number)
        );
      } catch {
        return false;
      }
    },
  };
}

/**
 * The node's additive statistics (core/analytics/additive.ts) for a secure request, with its share of the DP
 * noise on the released counts, in wide fixed point: the private input of its secure-aggregation session.
 */
export function secureAnalyticsInput(
  req: AnalyticsRequest,
  parts: readonly Dataset[],
  noiseWords: () => RandomWords,
): Uint32Array {
  const secure = req.secure!;
  const featureCount = featureSize(parts[0]);
  const bad = (req.features ?? []).filter((j) => j >= featureCount);
  if (bad.length > 0)
    throw new Error(`feature index ${bad.join(', ')} is out of range: this node's data has ${featureCount} features`);
  const rows = parts.reduce((s, d) => s + d.n, 0);
  if (rows > secure.maxRows)
    throw new Error(`this node holds ${rows} rows, more than the secure pass's limit of ${secure.maxRows}`);
  if (secure.classes > 0 && (parts[0].numClasses < 1 || !(parts[0].y instanceof Int32Array)))
    throw new Error('labels: this node holds regression targets, not class labels');
  if (secure.classes > 0 && parts[0].numClasses > secure.classes)
    throw new Error(`labels: this node holds ${parts[0].numClasses} classes, the pass gives ${secure.classes} slots`);
  const spec: AdditiveSpec = {
    features: req.features?.length ?? featureCount,
    ...(secure.value ? { moments: secure.value } : {}),
    ...(req.histogram ? { histogram: req.histogram } : {}),
    classes: secure.classes,
  };
  const vector = parts
    .map((d) => additiveStatistics(selectColumns(d, req.features), secure.classes > 0 ? d.y : undefined, spec))
    .reduce((a, b) => a.map((v, i) => v + b[i]));
  if (secure.noise) {
    const at = additiveLayout(spec);
    const words = noiseWords();
    const noisy = (start: number, length: number, sigma: number) => {
      if (length === 0) return;
      const noise = discreteGaussianVector(words, sigma, length);
      for (let i = 0; i < length; i++) vector[start + i] += noise[i];
    };
    noisy(at.count, 1, secure.noise.count);
    if (spec.histogram) noisy(at.histogram, at.labels - at.histogram, secure.noise.histogram);
    noisy(at.labels, secure.classes, secure.noise.labels);
  }
  return encodeWide(vector, { fractionBits: secure.fractionBits, limbs: secure.limbs });
}

/**
 * Answers an analytics frame for one of the hosted nodes' data; an error frame says what was wrong. With
 * `secure`, it also opens secure sessions (a secure request) and answers their later steps (secagg frames).
 */
export function answerAnalyticsFrame(
  frame: Uint8Array,
  dataOf: (nodeId: number) => readonly Dataset[] | undefined,
  secure?: SecureAnalyticsNode,
) {
  let round = -1;
  let nodeId = -1;
  try {
    const h = peekHeader(frame);
    if (Number.isInteger(h.round) && Number.isInteger(h.node)) [round, nodeId] = [h.round as number, h.node as number];
    if (typeof h.type === 'string' && isSecAggFrameType(h.type)) {
      if (!secure) throw new Error('this node has no secure analytics session');
      return secure.sessions.handle(frame);
    }
    const req = decodeAnalyticsRequest(frame);
    const parts = dataOf(req.nodeId)?.filter((d) => d.n > 0);
    if (!parts || parts.length === 0) throw new Error(`node ${req.nodeId} holds no data here`);
    if (req.secure) {
      if (!secure) throw new Error('this node cannot take part in secure analytics (no secure-aggregation support)');
      const input = secureAnalyticsInput(req, parts, () => secure.noiseWords(req.nodeId, req.round));
      return secure.sessions.open(req.round, req.nodeId, req.secure.session, () => input);
    }
    return encodeAnalyticsReply(answerAnalytics(req, parts));
  } catch (e) {
    return encodeError(round, nodeId, (e as Error).message);
  }
}
