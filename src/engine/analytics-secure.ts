/**
 * An analytics query under secure aggregation: the coordinator learns only the federation's SUM of each node's
 * additive statistics (row count, per-feature sums and sums of squares about a declared centre, histogram bin
 * counts, label counts), never one node's. Two analytics rounds over any Transport:
 *
 *   1. describe (plaintext, layout only): each node's feature count, column names and label classes, so every
 *      node pads its statistics to one vector of agreed length; no figure about the rows is sent;
 *   2. the secure sum: the analytics request opens a Bonawitz session (the protocol driver shared with secure
 *      training rounds, secure-protocol.ts), each node's private input is its additive vector in wide fixed point
 *      (core/secagg/wide-fixed.ts), and dropouts after key sharing are recovered by the protocol.
 *
 * Fixed point: 40 fraction bits, and enough 16-bit limbs that the sum of the worst case (maxRows rows per node,
 * every value at the edge of its declared range) cannot overflow. Values outside the declared range (the
 * query's ranges, else [-clip, clip]) are clipped before the moments are taken, and the count clipped per
 * feature is reported (it is itself a sum). The sums are exact integers; only each node's rounding to 2^-40
 * errs, which gives the stated bound on each mean and variance (additiveErrorBound).
 *
 * DP composes as DISTRIBUTED noise: each node adds its share of discrete Gaussian noise to its counts BEFORE
 * masking, sized so the at-least-`threshold` nodes in any sum together carry the stddev asked for. Noise added
 * by the coordinator after unmasking would protect nothing against the coordinator, which is the party a
 * secagg user distrusts. Epsilon is the Gaussian mechanism's for that summed stddev (a sum of discrete
 * Gaussians of stddev >= 2 is within 1e-14 of a discrete Gaussian; Kairouz et al. 2021).
 */
import { additiveErrorBound, additiveLayout, additiveSummary, type AdditiveSpec } from '../core/analytics/additive.js';
import type { FeatureHistogram } from '../core/analytics/histogram.js';
import { decodeWideSum, MAX_WIDE_CLIENTS, wideLimbsFor } from '../core/secagg/wide-fixed.js';
import { encodeAnalyticsRequest, type SecureAnalyticsSpec } from './analytics-messages.js';
import { needsHistogram, type AnalyticsQuery } from './analytics-query.js';
import { countNoise, histogramRelease, type CountRelease } from './analytics-release.js';
import {
  layoutCheck,
  requestAnalytics,
  runAnalytics,
  type AnalyticsResult,
  type AnalyticsRunOptions,
  type SecureAnalyticsReport,
} from './analytics-round.js';
import { clientIdOf } from './secure-messages.js';
import { runSecureProtocol, secureThreshold } from './secure-protocol.js';
import type { Transport } from './transport.js';

/** Fraction bits of the wide fixed point: each node's sums are rounded to 2^-40. */
export const SECURE_FRACTION_BITS = 40;
/** Most rows one node may hold in a secure pass (sizes the fixed point). */
export const SECURE_MAX_ROWS = 2 ** 31;
/**
 * Where a secure pass numbers its rounds unless told: a random even number at or above 2^30, far from any
 * training round (a node holding a training and an analytics session at once routes each frame by round), and
 * fresh per pass, since a node takes part in one secure session per round number for the life of its process.
 */
export const SECURE_ANALYTICS_FIRST_ROUND = 2 ** 30;
const freshFirstRound = () =>
  SECURE_ANALYTICS_FIRST_ROUND + 2 * (globalThis.crypto.getRandomValues(new Uint32Array(1))[0] % 2 ** 28);
/** Each node's DP noise stddev is at least this many steps (keeps the sum close to a discrete Gaussian). */
const MIN_NODE_SIGMA = 2;

/** Runs a query plainly or, with `query.secagg`, under secure aggregation. */
export function runAnalyticsQuery(
  transport: Transport,
  query: AnalyticsQuery,
  options: AnalyticsRunOptions = {},
): Promise<AnalyticsResult> {
  return query.secagg ? runSecureAnalytics(transport, query, options) : runAnalytics(transport, query, options);
}

/** A fresh, unguessable session id (bound into every key and mask). */
const newSession = () => `analytics-${globalThis.crypto.randomUUID()}`;

export async function runSecureAnalytics(
  transport: Transport,
  query: AnalyticsQuery,
  options: AnalyticsRunOptions = {},
): Promise<AnalyticsResult> {
  if (!query.secagg) throw new Error('analytics: runSecureAnalytics needs a secagg query');
  const asked = [...(options.nodeIds ?? transport.nodeIds())].sort((a, b) => a - b);
  if (asked.length < 2)
    throw new Error(`analytics: secure aggregation needs at least 2 nodes, ${asked.length} connected`);
  if (asked.length > MAX_WIDE_CLIENTS)
    throw new Error(`analytics: secure aggregation takes at most ${MAX_WIDE_CLIENTS} nodes, ${asked.length} asked`);
  const before = transport.traffic();
  const firstRound = options.firstRound ?? freshFirstRound();
  const failed: { nodeId: number; message: string }[] = [];
  const wantsLabels = query.kinds.includes('labels');
  const wantsMoments = query.kinds.includes('moments');

  // Round 1: the layout every node's vector follows.
  const layout = layoutCheck(options.columns);
  let classes = 0;
  const described: number[] = [];
  await Promise.all(
    asked.map(async (nodeId) => {
      try {
        const reply = await requestAnalytics(
          transport,
          nodeId,
          encodeAnalyticsRequest({ ...plain(firstRound, nodeId), describe: true }),
        );
        if (reply.nodeId !== nodeId || reply.round !== firstRound) throw new Error('reply for another node or round');
        layout.check(reply);
        if (wantsLabels) classes = Math.max(classes, reply.classes ?? 0);
        described.push(nodeId);
      } catch (e) {
        failed.push({ nodeId, message: (e as Error).message });
      }
    }),
  );
  described.sort((a, b) => a - b);
  if (described.length < 2) {
    const reasons = failed.map((f) => `node ${f.nodeId}: ${f.message}`).join('; ');
    throw new Error(`analytics: fewer than 2 nodes can take part in secure aggregation (${reasons})`);
  }
  if (wantsLabels && classes === 0) throw new Error('analytics: labels: no node holds class labels');
  const featureCount = layout.featureCount();
  const selected = query.features ?? Array.from({ length: featureCount }, (_, j) => j);
  const outOfRange = selected.filter((j) => j >= featureCount);
  if (outOfRange.length > 0)
    throw new Error(
      `analytics: feature index ${outOfRange.join(', ')} is out of range: the nodes' data has ${featureCount} features`,
    );
  const width = selected.length;
  const pick = (i: number) => query.ranges![query.ranges!.length === 1 ? 0 : i];
  const declared = query.ranges
    ? { lo: selected.map((_, i) => pick(i)[0]), hi: selected.map((_, i) => pick(i)[1]) }
    : { lo: selected.map(() => -query.secagg!.clip), hi: selected.map(() => query.secagg!.clip) };
  const histogram = needsHistogram(query) ? { bins: query.bins, ...declared } : undefined;
  const spec: AdditiveSpec = {
    features: width,
    ...(wantsMoments ? { moments: declared } : {}),
    ...(histogram ? { histogram } : {}),
    classes,
  };

  // Round 2: the secure sum.
  const round = firstRound + 1;
  const k = described.length;
  const threshold = secureThreshold(k);
  const dp = query.dp && distributedNoise(query, threshold, width);
  const halfWidth = Math.max(...declared.lo.map((lo, j) => (declared.hi[j] - lo) / 2));
  const noiseHeadroom = dp ? 64 * Math.max(...Object.values(dp.perNode)) : 0;
  const maxAbs = SECURE_MAX_ROWS * Math.max(1, halfWidth, halfWidth * halfWidth) + noiseHeadroom;
  const limbs = wideLimbsFor(maxAbs, k, SECURE_FRACTION_BITS);
  const session = newSession();
  const secureSpec = (nodeId: number): SecureAnalyticsSpec => ({
    // The 32-bit fixed-point fields of a training session are unused here (the input is wide fixed point).
    session: { session, clientId: clientIdOf(nodeId), threshold, scaleBits: 0, clip: 1, maxWeight: 1, maxClients: k },
    fractionBits: SECURE_FRACTION_BITS,
    limbs,
    maxRows: SECURE_MAX_ROWS,
    ...(wantsMoments ? { value: declared } : {}),
    classes,
    ...(dp
      ? { noise: { count: dp.perNode.count, histogram: dp.perNode.histogram ?? 1, labels: dp.perNode.labels ?? 1 } }
      : {}),
  });
  const run = await runSecureProtocol({
    round,
    selected: described,
    transport,
    session,
    threshold,
    vectorLength: additiveLayout(spec).length * limbs,
    openRequest: (nodeId) =>
      encodeAnalyticsRequest({
        ...plain(round, nodeId),
        ...(query.features ? { features: query.features } : {}),
        ...(histogram ? { histogram } : {}),
        secure: secureSpec(nodeId),
      }),
  });
  for (const [nodeId, message] of [...run.failures].sort((a, b) => a[0] - b[0])) failed.push({ nodeId, message });
  if (!run.sum) {
    const reasons = [...run.failures].map(([n, m]) => `node ${n}: ${m}`).join('; ');
    throw new Error(`analytics: the secure sum failed (${reasons})`);
  }
  const cfg = { fractionBits: SECURE_FRACTION_BITS, limbs };
  const summary = additiveSummary(decodeWideSum(run.sum, cfg), SECURE_FRACTION_BITS, spec);
  const included = [...run.included].sort((a, b) => a - b);
  const after = transport.traffic();
  const columnNames = options.columns ?? layout.columns();
  // Post-processing of noisy counts: below zero is reported as zero.
  const counts = (v: number[]) => (dp ? v.map((c) => Math.max(0, c)) : v);
  const secure: SecureAnalyticsReport = { nodes: included, threshold, fractionBits: SECURE_FRACTION_BITS, limbs };
  const result: AnalyticsResult = {
    nodes: { asked, answered: included, failed: failed.sort((a, b) => a.nodeId - b.nodeId) },
    features: selected,
    ...(columnNames ? { columns: selected.map((j) => columnNames[j] ?? `feature ${j}`) } : {}),
    count: counts([summary.count])[0],
    rounds: 2,
    bytes: { sent: after.sent - before.sent, received: after.received - before.received },
    secure,
  };
  if (summary.mean && summary.variance) {
    result.stats = { mean: summary.mean, variance: summary.variance, std: summary.variance.map(Math.sqrt) };
    secure.valueRange = declared;
    secure.clipped = summary.clipped;
    secure.errorBound = additiveErrorBound(summary, spec, SECURE_FRACTION_BITS, included.length);
  }
  if (summary.histogram && histogram) {
    const merged: FeatureHistogram = {
      bins: query.bins,
      lo: Float64Array.from(histogram.lo),
      hi: Float64Array.from(histogram.hi),
      counts: Float64Array.from(counts(summary.histogram)),
    };
    Object.assign(result, histogramRelease(merged, query, width));
  }
  if (summary.labels) result.labels = counts(summary.labels);
  if (dp) result.dp = dp;
  return result;
}

const plain = (round: number, nodeId: number) => ({ round, nodeId, moments: false, labels: false });

/**
 * Each node's discrete Gaussian stddev per released count vector, so that the sum over at least `minNodes`
 * nodes has stddev >= noise x sensitivity (sensitivities as the plaintext pass: count 1, labels 1, histogram
 * sqrt(F)), and the epsilon of those releases composed (Gaussian mechanisms, no sampling).
 */
function distributedNoise(query: AnalyticsQuery, minNodes: number, features: number) {
  const releases: CountRelease[] = [{ name: 'count', sensitivity: 1 }];
  if (query.kinds.includes('labels')) releases.push({ name: 'labels', sensitivity: 1 });
  if (needsHistogram(query)) releases.push({ name: 'histogram', sensitivity: Math.sqrt(features) });
  const { perNode, sigma, epsilon } = countNoise(releases, query.dp!, minNodes, MIN_NODE_SIGMA);
  return { noise: query.dp!.noise, delta: query.dp!.delta, epsilon, sigma, perNode, minNodes };
}
