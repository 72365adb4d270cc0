/**
 * A node's answer to an analytics request: sketches of its own rows (training and held-out validation
 * rows alike, before any scaling), never the rows. BROWSER-SAFE.
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

/** Answers an analytics frame for one of the hosted nodes' data; an error frame says what was wrong. */
export function answerAnalyticsFrame(frame: Uint8Array, dataOf: (nodeId: number) => readonly Dataset[] | undefined) {
  let round = -1;
  let nodeId = -1;
  try {
    const h = peekHeader(frame);
    if (Number.isInteger(h.round) && Number.isInteger(h.node)) [round, nodeId] = [h.round as number, h.node as number];
    const req = decodeAnalyticsRequest(frame);
    const parts = dataOf(req.nodeId)?.filter((d) => d.n > 0);
    if (!parts || parts.length === 0) throw new Error(`node ${req.nodeId} holds no data here`);
    return encodeAnalyticsReply(answerAnalytics(req, parts));
  } catch (e) {
    return encodeError(round, nodeId, (e as Error).message);
  }
}
