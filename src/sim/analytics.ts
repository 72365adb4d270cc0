/**
 * Federated analytics in simulation: every virtual node answers analytics frames over its own shard of the
 * raw (unscaled) data through an in-process transport, and the coordinator side merges the sketches with
 * the same runAnalytics a deployed coordinator uses. Also the federated statistics pass of
 * `--standardize federated`.
 */
import { loadDatasetSpec } from '../data/load.js';
import { subset, type Dataset } from '../data/types.js';
import { parsePartitionSpec, partition } from '../core/partition.js';
import { Rng } from '../core/rng.js';
import { answerAnalyticsFrame, type SecureAnalyticsNode } from '../node/analytics-answer.js';
import { DirectTransport } from './direct.js';
import type { AnalyticsResult } from '../engine/analytics-round.js';
import { runAnalyticsQuery } from '../engine/analytics-secure.js';
import { SecureNodeSessions } from '../node/secure-session.js';
import { simulationIdentities } from './sim-host.js';
import { parseAnalyticsQuery, type AnalyticsQuery } from '../engine/analytics-query.js';
import { dpWords, type DpNoiseSource } from '../engine/dp-noise.js';
import { partitionInput } from './partition-input.js';
import type { StandardizeStats } from '../data/split.js';

export interface SimAnalyticsOptions {
  dataset: string;
  partition: string;
  nodes: number;
  seed: number;
  query: AnalyticsQuery;
  /** DP noise words: seeded (repeatable, the default in simulation) or a CSPRNG. */
  dpNoise?: DpNoiseSource;
}

/**
 * A transport whose nodes answer analytics over their own rows of `train` (never training requests), and take
 * part in secure analytics with the simulation's seed-derived identities and seeded (or CSPRNG) DP noise.
 */
export function shardAnalyticsTransport(
  train: Dataset,
  parts: readonly Int32Array[],
  seed = 0,
  dpNoise: DpNoiseSource = 'seeded',
): DirectTransport {
  const shards = new Map<number, Dataset>();
  const rowsOf = (id: number) => {
    if (!(id >= 0 && id < parts.length)) return undefined;
    if (!shards.has(id)) shards.set(id, subset(train, parts[id], `${train.source}#node${id}`));
    return [shards.get(id)!];
  };
  const ids = parts.map((_, i) => i);
  const secure: SecureAnalyticsNode = {
    sessions: new SecureNodeSessions({ identity: simulationIdentities(seed, parts.length) }),
    // Seeded noise depends on the seed and node only (round numbers of secure passes are random).
    noiseWords: (nodeId) => dpWords(dpNoise, seed, `analytics-node:${nodeId}`),
  };
  return new DirectTransport({ handle: async (frame) => answerAnalyticsFrame(frame, rowsOf, secure) }, ids);
}

/** The shards of a simulated federation, as `simulate` draws them for the same seed (raw features). */
export function rawShards(o: { dataset: string; partition: string; nodes: number; seed: number }) {
  const spec = parsePartitionSpec(o.partition);
  const data = loadDatasetSpec(o.dataset, { standardize: false });
  const parts = partition(spec, partitionInput(data.train, spec), o.nodes, new Rng(o.seed).fork('partition'));
  return { data, parts };
}

export async function simulateAnalytics(o: SimAnalyticsOptions): Promise<AnalyticsResult> {
  const { data, parts } = rawShards(o);
  const transport = shardAnalyticsTransport(data.train, parts, o.seed, o.dpNoise);
  return runAnalyticsQuery(transport, o.query, {
    ...(data.train.columns ? { columns: data.train.columns } : {}),
    dpWords: () => dpWords(o.dpNoise ?? 'seeded', o.seed, 'analytics'),
  });
}

/**
 * The federation's per-feature mean and population std: one analytics round of moments over the shards, or
 * (secure) a secure sum of the shards' additive moments.
 */
export async function federatedStandardization(
  train: Dataset,
  parts: readonly Int32Array[],
  secure = false,
): Promise<{ stats: StandardizeStats; result: AnalyticsResult }> {
  const query = parseAnalyticsQuery(secure ? { query: 'moments', secagg: true } : { query: 'stats' });
  const result = await runAnalyticsQuery(shardAnalyticsTransport(train, parts), query);
  if (result.nodes.failed.length > 0) {
    const why = result.nodes.failed.map((f) => `node ${f.nodeId}: ${f.message}`).join('; ');
    throw new Error(`--standardize federated: every node must answer the statistics pass (${why})`);
  }
  return { stats: { mean: result.stats!.mean, std: result.stats!.std }, result };
}
