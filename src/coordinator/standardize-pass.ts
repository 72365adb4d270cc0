/**
 * The statistics pass of a deployed run with `standardize: 'federated'`: one analytics round (count, mean,
 * variance per feature, Chan's merge in float64) over the run's eligible nodes, each summarising its own raw
 * CSV rows; for a secagg run, a secure sum of the same moments (the coordinator never sees one node's). Every node asked must answer with the coordinator's feature columns, or the pass fails naming the
 * node: a federation scaled with statistics some node's data did not enter would train on skewed inputs.
 */
import { NetworkTransport } from './network-transport.js';
import type { Registry, Selection } from './registry.js';
import { DEFAULT_SECURE_CLIP, parseAnalyticsQuery } from '../engine/analytics-query.js';
import { runAnalyticsQuery } from '../engine/analytics-secure.js';
import type { RunStandardization } from './run-standardization.js';

/** The run number analytics requests are bound to: no training run has it. */
export const ANALYTICS_RUN_ID = 0;

export interface StandardizePassOptions {
  registry: Registry;
  selection: Selection;
  timeoutMs: number;
  allowUnbound: boolean;
  /** The feature columns the run's model takes (its evaluation dataset's). */
  columns: readonly string[];
  /**
   * A secagg run: the pass is a secure sum of the nodes' count, sums and sums of squares (mean and std need
   * nothing else), values clipped to [-DEFAULT_SECURE_CLIP, DEFAULT_SECURE_CLIP]; a clipped value fails the pass.
   */
  secure?: boolean;
}

/** Asks every eligible node for its moments and merges them; throws with each failed node's reason. */
export async function federatedStatistics(options: StandardizePassOptions): Promise<RunStandardization> {
  const transport = new NetworkTransport({
    registry: options.registry,
    selection: options.selection,
    timeoutMs: options.timeoutMs,
    runId: ANALYTICS_RUN_ID,
    allowUnbound: options.allowUnbound,
    configure: async () => {}, // analytics needs no model
  });
  const fail = (why: string) =>
    new Error(`standardize 'federated': the statistics pass failed (${why}); the run is not started on them`);
  let result;
  try {
    const query = parseAnalyticsQuery(options.secure ? { query: 'moments', secagg: true } : { query: 'stats' });
    result = await runAnalyticsQuery(transport, query, { columns: options.columns });
  } catch (e) {
    throw fail((e as Error).message);
  }
  if (result.nodes.failed.length > 0)
    throw fail(result.nodes.failed.map((f) => `node ${f.nodeId}: ${f.message}`).join('; '));
  const clipped = result.secure?.clipped?.reduce((a, b) => a + b, 0) ?? 0;
  // Statistics of clipped values would scale the real ones wrongly: better no run than a skewed one.
  if (clipped > 0)
    throw fail(
      `${clipped} feature values lie outside [-${DEFAULT_SECURE_CLIP}, ${DEFAULT_SECURE_CLIP}], the secure pass's range`,
    );
  if (result.features.length !== options.columns.length)
    throw fail(`nodes hold ${result.features.length} features, the run's model takes ${options.columns.length}`);
  return {
    columns: [...options.columns],
    mean: result.stats!.mean,
    std: result.stats!.std,
    count: result.count,
    nodes: result.nodes.answered,
  };
}
