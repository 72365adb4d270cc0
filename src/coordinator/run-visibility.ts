/**
 * What readers other than the admin may see of differentially private runs. Epsilon covers the released
 * models, not the run's records: who was sampled and who contributed (public participation removes the
 * amplification by subsampling), how many examples each node has, and each node's unnoised metrics. So for
 * a dpfedavg run those leave the coordinator only to the admin; everyone else gets the records with them
 * removed (and `redacted` saying so). Runs without DP are shown in full. Pure functions over plain records,
 * applied wherever run records leave the coordinator (REST routes and the live feed).
 */
import { capabilitiesOf, parseStrategy } from '../engine/strategies/registry.js';
import type { EventView, NodeView } from './live-protocol.js';

/** Whoever reads: the admin sees everything. */
export type Reader = 'admin' | 'public';

export const REDACTED_NOTE =
  'differentially private run: participation, per-node counts and unnoised metrics are shown to the admin only';

/** A run's config names a DP strategy (a config that does not parse is treated as DP: hide rather than leak). */
export function isDpConfig(config: unknown): boolean {
  const strategy = (config as { strategy?: unknown } | null)?.strategy;
  if (strategy === undefined) return false;
  try {
    // Any DP-wrapped strategy (strategies/dp.ts), not only dpfedavg: they all sample by Poisson sampling.
    return capabilitiesOf(parseStrategy(String(strategy))).poissonSampling === true;
  } catch {
    return true;
  }
}

type RoundLike = Record<string, unknown>;

/**
 * One round record as `reader` may see it. Hidden for DP runs: selected and contributed node ids, per-node
 * examples, failures (they name selected nodes), staleness, and the train and federated loss and accuracy
 * (unnoised aggregates of the participants' own data). Kept: test metrics (the coordinator's data), epsilon,
 * delta, sampling rate, noise source, clip norm, bytes and seconds.
 */
export function visibleRound<T extends RoundLike>(record: T, dp: boolean, reader: Reader): T {
  if (!dp || reader === 'admin') return record;
  return {
    ...record,
    selected: [],
    contributed: [],
    examples: [],
    failures: [],
    trainLoss: null,
    trainAccuracy: null,
    federatedLoss: null,
    federatedAccuracy: null,
    ...('staleness' in record ? { staleness: [] } : {}),
    redacted: REDACTED_NOTE,
  };
}

/** GET /v1/runs/:id: the run and its rounds. */
export function visibleRun<
  T extends { config: unknown; rounds: RoundLike[]; standardization?: { nodes: unknown[]; joinedLater: unknown[] } },
>(run: T, reader: Reader): T {
  if (!isDpConfig(run.config) || reader === 'admin') return run;
  return {
    ...run,
    rounds: run.rounds.map((r) => visibleRound(r, true, reader)),
    // Which nodes the statistics pass covered, and which joined later, is participation too.
    ...(run.standardization ? { standardization: { ...run.standardization, nodes: [], joinedLater: [] } } : {}),
  };
}

/** Events that exist only because a node was selected in a round. */
const PARTICIPATION_EVENTS = new Set(['node_failure', 'late_update', 'standardization_late_nodes']);

/**
 * Events as `reader` may see them: for DP runs, participation events are dropped and node ids and names are
 * taken out of the rest. `isDpRun(runId)` says which runs are DP.
 */
export function visibleEvents<E extends Pick<EventView, 'runId' | 'kind' | 'data'>>(
  events: E[],
  isDpRun: (runId: number) => boolean,
  reader: Reader,
): E[] {
  if (reader === 'admin') return events;
  const out: E[] = [];
  for (const e of events) {
    if (e.runId === null || !isDpRun(e.runId)) out.push(e);
    else if (!PARTICIPATION_EVENTS.has(e.kind)) {
      const { nodeId: _nodeId, name: _name, ...data } = e.data;
      out.push({ ...e, data: { ...data, redacted: REDACTED_NOTE } });
    }
  }
  return out;
}

/** A node as a public reader sees it while a DP run exists: participation and data counts removed. */
export type PublicNodeView = Omit<NodeView, 'roundsContributed' | 'bytesSent' | 'bytesReceived'> & Partial<NodeView>;

/**
 * The node table as `reader` may see it. While any DP run exists, rounds contributed and bytes moved (they
 * count participations) and the node-reported example and label counts are hidden from public readers.
 */
export function visibleNodes(nodes: NodeView[], anyDpRun: boolean, reader: Reader): PublicNodeView[] {
  if (!anyDpRun || reader === 'admin') return nodes;
  return nodes.map(({ roundsContributed: _r, bytesSent: _s, bytesReceived: _b, resources, ...rest }) => {
    const { examples: _e, labelCounts: _l, ...kept } = resources;
    return { ...rest, resources: kept };
  });
}

/** The reader behind a request's actor (route-policy.ts actorOf): the admin token, or anyone else. */
export function readerOf(actor: { kind: string }): Reader {
  return actor.kind === 'admin' ? 'admin' : 'public';
}

/** Whether any run the store holds is differentially private (node tables then hide participation). */
export function anyDpRun(store: { listRuns(): { config: unknown }[] }): boolean {
  return store.listRuns().some((r) => isDpConfig(r.config));
}
