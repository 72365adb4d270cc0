/**
 * Runs an analytics query over nodes through any Transport (worker threads, in-process hosts, the network):
 * one analytics round for moments and label counts, and a second for histograms when their ranges come from
 * the first round's min/max. Nodes that fail are reported beside the result, as in training rounds.
 */
import type { Transport } from './transport.js';
import { decodeMessage } from './messages.js';
import {
  ANALYTICS_REPLY,
  decodeAnalyticsReply,
  encodeAnalyticsRequest,
  type AnalyticsReply,
} from './analytics-messages.js';
import { needsHistogram, type AnalyticsQuery } from './analytics-query.js';
import { checkMoments, mergeAllMoments, momentsStd, momentsVariance } from '../core/analytics/moments.js';
import { addCounts, mergeHistograms, type FeatureHistogram } from '../core/analytics/histogram.js';
import { discreteGaussianVector, type RandomWords } from '../core/discrete-gaussian.js';
import { countNoise, histogramRelease, type CountRelease } from './analytics-release.js';
import { peekHeader } from '../core/wire.js';

export interface AnalyticsResult {
  /** Nodes asked, and those that answered every round. */
  nodes: { asked: number[]; answered: number[]; failed: { nodeId: number; message: string }[] };
  /** Feature indices summarised, and their names when known. */
  features: number[];
  columns?: string[];
  count: number;
  /** min and max with the 'stats' query only ('moments' and secure passes have none: they are not additive). */
  stats?: { mean: number[]; variance: number[]; std: number[]; min?: number[]; max?: number[] };
  histogram?: { bins: number; lo: number[]; hi: number[]; counts: number[][] };
  /** Estimates within `maxError` (one bin width) of the exact order statistic of the pooled rows. */
  quantiles?: { q: number[]; values: number[][]; maxError: number[] };
  labels?: number[];
  /**
   * With DP noise: the Gaussian noise stddev per released count vector and the (epsilon, delta) spent. Under
   * secagg the noise is distributed: each node adds `perNode` stddev, and at least `minNodes` nodes' noise is in
   * every released sum (sigma = perNode x sqrt(minNodes) is what epsilon is computed for).
   */
  dp?: {
    noise: number;
    delta: number;
    epsilon: number;
    sigma: Record<string, number>;
    perNode?: Record<string, number>;
    minNodes?: number;
  };
  /** Under secure aggregation: how the sum was taken and how far it may be from exact arithmetic. */
  secure?: SecureAnalyticsReport;
  rounds: number;
  bytes: { sent: number; received: number };
}

export interface SecureAnalyticsReport {
  /** Nodes whose statistics are in the sum (the coordinator never saw any one of them). */
  nodes: number[];
  threshold: number;
  fractionBits: number;
  limbs: number;
  /** The declared value range per feature that moments were clipped to, and how many values were clipped. */
  valueRange?: { lo: number[]; hi: number[] };
  clipped?: number[];
  /** Worst-case error of each mean and variance from fixed-point rounding (exact arithmetic otherwise). */
  errorBound?: { mean: number[]; variance: number[] };
}

export interface AnalyticsRunOptions {
  /** Nodes to ask (default: transport.nodeIds()). */
  nodeIds?: number[];
  /** Round number of the first analytics round (a deployment numbers them apart from training rounds). */
  firstRound?: number;
  /** Feature names, by index, when the caller knows them: a node whose data names other columns fails. */
  columns?: readonly string[];
  /** Noise words for DP (a CSPRNG in deployment, a seeded stream in simulation). */
  dpWords?: () => RandomWords;
}

type Outcome = { nodeId: number; reply?: AnalyticsReply; message?: string };

/** Sends one analytics request; the node's reply, or an Error with its error reply's message. */
export async function requestAnalytics(
  transport: Transport,
  nodeId: number,
  frame: Uint8Array,
): Promise<AnalyticsReply> {
  const bytes = await transport.request(nodeId, frame);
  if (peekHeader(bytes).type !== ANALYTICS_REPLY) {
    const m = decodeMessage([], bytes);
    throw new Error(m.type === 'error' ? m.message : `unexpected '${m.type}' reply`);
  }
  return decodeAnalyticsReply(bytes);
}

async function ask(transport: Transport, nodeId: number, frame: Uint8Array): Promise<Outcome> {
  try {
    return { nodeId, reply: await requestAnalytics(transport, nodeId, frame) };
  } catch (e) {
    return { nodeId, message: (e as Error).message };
  }
}

/**
 * Checks that every node's reply has the same data layout: the caller's columns when given, else the first
 * node's. `check` throws naming the difference.
 */
export function layoutCheck(expected?: readonly string[]) {
  let featureCount = expected?.length ?? -1;
  let layout: { owner: string; columns: readonly string[] } | undefined = expected && {
    owner: 'the expected',
    columns: expected,
  };
  return {
    featureCount: () => featureCount,
    columns: () => layout?.columns,
    check(r: AnalyticsReply): void {
      if (featureCount < 0) featureCount = r.featureCount;
      if (r.featureCount !== featureCount)
        throw new Error(
          `holds ${r.featureCount} features, ${expected ? 'the expected' : 'other nodes'} ${featureCount}: ` +
            'not the same data layout',
        );
      if (!r.columns) return;
      layout ??= { owner: `node ${r.nodeId}'s`, columns: r.columns };
      const reference = layout.columns;
      if (r.columns.length !== reference.length)
        throw new Error(
          `holds ${r.columns.length} feature columns (${r.columns.join(', ')}), ${layout.owner} ${reference.length}`,
        );
      const differ = r.columns.findIndex((name, j) => name !== reference[j]);
      if (differ >= 0)
        throw new Error(
          `feature column ${differ} is '${r.columns[differ]}', ${layout.owner} is '${layout.columns[differ]}': ` +
            `not the same data layout (this node's columns: ${r.columns.join(', ')})`,
        );
    },
  };
}

/** Runs `query` over the nodes; throws when no node answered (with every node's reason). */
export async function runAnalytics(
  transport: Transport,
  query: AnalyticsQuery,
  options: AnalyticsRunOptions = {},
): Promise<AnalyticsResult> {
  const asked = [...(options.nodeIds ?? transport.nodeIds())].sort((a, b) => a - b);
  if (asked.length === 0) throw new Error('analytics: no node is connected to answer the query');
  const failed: { nodeId: number; message: string }[] = [];
  const before = transport.traffic();
  let round = options.firstRound ?? 0;
  const features = query.features;
  // Histogram bins need ranges and a width: given ranges over selected features go in the first round.
  const histogramFirst = needsHistogram(query) && query.ranges !== undefined && features !== undefined;
  const secondRound = needsHistogram(query) && !histogramFirst;
  // Moments only when released or when their min/max set the histogram ranges (label counts need neither).
  const wantsMoments = query.kinds.includes('stats') || query.kinds.includes('moments');
  const needMoments = wantsMoments || (secondRound && !query.ranges);
  const roundTrip = async (
    ids: number[],
    build: (nodeId: number) => Uint8Array,
    checkReply: (r: AnalyticsReply) => void,
  ) => {
    const outcomes = await Promise.all(ids.map((id) => ask(transport, id, build(id))));
    const good: AnalyticsReply[] = [];
    for (const o of outcomes) {
      try {
        if (!o.reply) throw new Error(o.message);
        if (o.reply.nodeId !== o.nodeId || o.reply.round !== round) throw new Error('reply for another node or round');
        checkReply(o.reply);
        good.push(o.reply);
      } catch (e) {
        failed.push({ nodeId: o.nodeId, message: (e as Error).message });
      }
    }
    if (good.length === 0) {
      const reasons = failed.map((f) => `node ${f.nodeId}: ${f.message}`).join('; ');
      throw new Error(`analytics: no node answered (${reasons})`);
    }
    round++;
    return good;
  };
  const width = (r: AnalyticsReply) => features?.length ?? r.featureCount;
  const givenRanges = (w: number) => {
    const pick = (i: number) => query.ranges![query.ranges!.length === 1 ? 0 : i];
    return { lo: Array.from({ length: w }, (_, i) => pick(i)[0]), hi: Array.from({ length: w }, (_, i) => pick(i)[1]) };
  };
  const layout = layoutCheck(options.columns);
  const first = await roundTrip(
    asked,
    (nodeId) =>
      encodeAnalyticsRequest({
        round,
        nodeId,
        moments: needMoments,
        labels: query.kinds.includes('labels'),
        ...(features ? { features } : {}),
        ...(histogramFirst ? { histogram: { bins: query.bins, ...givenRanges(features!.length) } } : {}),
      }),
    (r) => {
      layout.check(r);
      if (needMoments && !r.moments) throw new Error('reply has no moments');
      if (r.moments) checkMoments(r.moments, width(r), `node ${r.nodeId}`);
    },
  );
  const moments = needMoments ? mergeAllMoments(first.map((r) => r.moments!)) : undefined;
  const selected = features ?? Array.from({ length: layout.featureCount() }, (_, j) => j);
  let histograms: FeatureHistogram | undefined = first.every((r) => r.histogram)
    ? first.map((r) => r.histogram!).reduce(mergeHistograms)
    : undefined;
  let answered = first;
  if (secondRound) {
    const { lo, hi } = query.ranges ? givenRanges(selected.length) : { lo: [...moments!.min], hi: [...moments!.max] };
    answered = await roundTrip(
      first.map((r) => r.nodeId),
      (nodeId) =>
        encodeAnalyticsRequest({
          round,
          nodeId,
          moments: false,
          labels: false,
          ...(features ? { features } : {}),
          histogram: { bins: query.bins, lo, hi },
        }),
      (r) => {
        if (!r.histogram || r.histogram.counts.length !== selected.length * query.bins)
          throw new Error('reply has no histogram of the requested shape');
      },
    );
    histograms = answered.map((r) => r.histogram!).reduce(mergeHistograms);
  }
  const answeredIds = new Set(answered.map((r) => r.nodeId));
  // A node that answered the first round but not the second is left out of every released figure.
  const kept = first.filter((r) => answeredIds.has(r.nodeId));
  const pooled = moments && (kept.length === first.length ? moments : mergeAllMoments(kept.map((r) => r.moments!)));
  let count = kept.reduce((sum, r) => sum + r.count, 0);
  let labels = query.kinds.includes('labels')
    ? kept.map((r) => r.labels ?? new Float64Array(0)).reduce((a, b) => (a.length === b.length ? addCounts(a, b) : a))
    : undefined;
  let dp: AnalyticsResult['dp'];
  if (query.dp) {
    if (!options.dpWords) throw new Error('analytics: DP noise needs a noise source');
    ({ count, labels, histograms, dp } = addNoise(
      query,
      options.dpWords(),
      count,
      labels,
      histograms,
      selected.length,
    ));
  }
  const after = transport.traffic();
  // Names the caller gives win; otherwise the nodes' own (checked equal above).
  const columnNames = options.columns ?? layout.columns();
  const result: AnalyticsResult = {
    nodes: { asked, answered: [...answeredIds].sort((a, b) => a - b), failed },
    features: selected,
    ...(columnNames ? { columns: selected.map((j) => columnNames[j] ?? `feature ${j}`) } : {}),
    count,
    rounds: round - (options.firstRound ?? 0),
    bytes: { sent: after.sent - before.sent, received: after.received - before.received },
  };
  if (pooled && wantsMoments) {
    result.stats = {
      mean: [...pooled.mean],
      variance: [...momentsVariance(pooled)],
      std: [...momentsStd(pooled)],
      ...(query.kinds.includes('stats') ? { min: [...pooled.min], max: [...pooled.max] } : {}),
    };
  }
  if (histograms) Object.assign(result, histogramRelease(histograms, query, selected.length));
  if (labels) result.labels = [...labels];
  if (dp) result.dp = dp;
  return result;
}

/**
 * Discrete Gaussian noise on each released count vector, stddev = ceil(noise x L2 sensitivity) (adding or
 * removing one row changes the count by 1, one label count by 1, and one bin of each of F features: sqrt(F)).
 * The releases compose as Gaussian mechanisms without sampling; epsilon from the RDP accountant.
 */
function addNoise(
  query: AnalyticsQuery,
  words: RandomWords,
  count: number,
  labels: Float64Array | undefined,
  histograms: FeatureHistogram | undefined,
  features: number,
) {
  const { noise, delta } = query.dp!;
  const releases: (CountRelease & { values: Float64Array })[] = [
    { name: 'count', sensitivity: 1, values: new Float64Array([count]) },
  ];
  if (labels) releases.push({ name: 'labels', sensitivity: 1, values: labels });
  if (histograms) releases.push({ name: 'histogram', sensitivity: Math.sqrt(features), values: histograms.counts });
  const { sigma, epsilon } = countNoise(releases, query.dp!);
  const noisy = releases.map((r) => {
    const n = discreteGaussianVector(words, sigma[r.name], r.values.length);
    // Post-processing: a count below zero is reported as zero.
    return r.values.map((v, i) => Math.max(0, v + n[i]));
  });
  const at = (name: string) => noisy[releases.findIndex((r) => r.name === name)];
  return {
    count: at('count')[0],
    labels: labels ? at('labels') : undefined,
    histograms: histograms ? { ...histograms, counts: at('histogram') } : undefined,
    dp: { noise, delta, epsilon, sigma },
  };
}
