/**
 * What a federated-standardised run's statistics cover. The pass runs once, before round 1, over the nodes
 * eligible then; a node that joins later trains with the committed statistics although its rows are not in
 * them (the statistics stay fixed: every model version is scaled one way). An operator sees it in the run's
 * view (`standardization`: the rows and nodes the statistics summarise, and each node that trained without
 * being in them, from which round, on how many examples) and in a `standardization_late_nodes` event the
 * round such a node first contributes. Pure: computed from the committed statistics and round records.
 */
import type { RunStandardization } from './run-standardization.js';

/** The part of a committed round record this reads. */
export interface ContributionRecord {
  round: number;
  contributed: readonly number[];
  /** Examples each contributed node trained on, in the order of `contributed`. */
  examples?: readonly number[];
}

/** A node that trained in the run although its rows are not in the statistics. */
export interface LateNode {
  nodeId: number;
  /** The first round it contributed to. */
  firstRound: number;
  /** Examples it trained on in that round. */
  examples: number | null;
}

export interface StandardizationCoverage {
  /** Rows summarised by the pass, and the nodes that answered it (a gateway counts as one node). */
  rows: number;
  nodes: number[];
  columns: string[];
  /** Nodes that contributed to some round but were not in the pass, in the order they first contributed. */
  joinedLater: LateNode[];
}

/** Nodes of `record` not in the statistics and not already in `known` (which it adds them to). */
export function newLateNodes(stats: RunStandardization, record: ContributionRecord, known: Set<number>): LateNode[] {
  return lateNodesOf(new Set(stats.nodes), record, known);
}

function lateNodesOf(covered: ReadonlySet<number>, record: ContributionRecord, known: Set<number>): LateNode[] {
  const late: LateNode[] = [];
  record.contributed.forEach((nodeId, i) => {
    if (covered.has(nodeId) || known.has(nodeId)) return;
    known.add(nodeId);
    late.push({ nodeId, firstRound: record.round, examples: record.examples?.[i] ?? null });
  });
  return late;
}

/** The coverage of `stats` over the run's committed rounds (oldest first). */
export function standardizationCoverage(
  stats: RunStandardization,
  rounds: readonly ContributionRecord[],
): StandardizationCoverage {
  // One set of covered nodes for every round (newLateNodes builds it per call: it serves one round at a time).
  const covered = new Set(stats.nodes);
  const known = new Set<number>();
  return {
    rows: stats.count,
    nodes: [...stats.nodes],
    columns: [...stats.columns],
    joinedLater: rounds.flatMap((r) => lateNodesOf(covered, r, known)),
  };
}
