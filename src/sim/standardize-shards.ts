/**
 * `--standardize` in simulation: which statistics scale a CSV run's features.
 * - central: the pooled training rows' statistics (what a simulation did before; no deployment can do it);
 * - node: each node scales its own rows with its own statistics (what a deployed CSV node does by default);
 * - federated: one analytics round computes the federation's statistics and every node scales with those (a
 *   secure pass when the run uses secure aggregation, as deployed).
 * The test set is scaled with the pooled statistics under central and node (the coordinator's test set is a
 * simulation artefact with no node of its own), with the federated ones under federated; the saved model
 * carries the same statistics, so predict applies them to raw input.
 */
import { applyStandardize, standardizeStats, type StandardizeStats } from '../data/split.js';
import { featureSize, subset, type Dataset } from '../data/types.js';
import type { LoadedData } from '../data/load.js';
import { federatedStandardization } from './analytics.js';

export { STANDARDIZE_MODES, type StandardizeMode } from '../engine/run-spec.js';
import type { StandardizeMode } from '../engine/run-spec.js';

export interface ScaledData {
  train: Dataset;
  test: Dataset;
  /** The statistics the saved model carries. */
  stats: StandardizeStats;
  /** Under federated: the statistics pass's traffic and the nodes that answered. */
  pass?: { rounds: number; bytesReceived: number; nodes: number };
}

/** Scales raw train/test rows as `mode` says; `parts` are the nodes' rows of train. */
export async function scaleForRun(
  mode: StandardizeMode,
  data: LoadedData,
  train: Dataset,
  test: Dataset,
  parts: readonly Int32Array[],
  secure = false,
): Promise<ScaledData> {
  if (!train.columns || data.standardization) {
    throw new Error(
      `--standardize ${mode}: applies to CSV datasets of rows (csv:FILE without window=); ${data.description.split(':')[0]} is not one`,
    );
  }
  const pooled = standardizeStats(train);
  if (mode === 'central')
    return { train: applyStandardize(train, pooled), test: applyStandardize(test, pooled), stats: pooled };
  if (mode === 'federated') {
    const { stats, result } = await federatedStandardization(train, parts, secure);
    return {
      train: applyStandardize(train, stats),
      test: applyStandardize(test, stats),
      stats,
      pass: { rounds: result.rounds, bytesReceived: result.bytes.received, nodes: result.nodes.answered.length },
    };
  }
  const f = featureSize(train);
  const x = Float32Array.from(train.x);
  for (const rows of parts) {
    if (rows.length === 0) continue;
    const own = applyStandardize(subset(train, rows), standardizeStats(subset(train, rows)));
    rows.forEach((r, k) => x.set(own.x.subarray(k * f, (k + 1) * f), r * f));
  }
  return { train: { ...train, x }, test: applyStandardize(test, pooled), stats: pooled };
}
