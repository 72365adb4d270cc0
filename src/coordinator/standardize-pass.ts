/**
 * The statistics pass of a deployed run with `standardize: 'federated'`: one analytics round (count, mean,
 * variance per feature, Chan's merge in float64) over the run's eligible nodes, each summarising its own raw
 * CSV rows. Every node asked must answer with the coordinator's feature columns, or the pass fails naming the
 * node: a federation scaled with statistics some node's data did not enter would train on skewed inputs.
 */
import { NetworkTransport } from './network-transport.js';
import type { Registry, Selection } from './registry.js';
import { parseAnalyticsQuery } from '../engine/analytics-query.js';
import { runAnalytics } from '../engine/analytics-round.js';
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
    result = await runAnalytics(transport, parseAnalyticsQuery({ query: 'stats' }), { columns: options.columns });
  } catch (e) {
    throw fail((e as Error).message);
  }
  if (result.nodes.failed.length > 0)
    throw fail(result.nodes.failed.map((f) => `node ${f.nodeId}: ${f.message}`).join('; '));
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
