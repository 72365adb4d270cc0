/**
 * What a federated-standardised run's statistics cover. The pass runs once, before round 1, over the nodes
 * eligible then; a node that joins later trains with the committed statistics although its rows are not in
 * them (the statistics stay fixed: every model version is scaled one way). An operator sees it in the run's
 * view (`standardization`: the rows and nodes the statistics summarise, and each node that trained without
 * being in them, from which round, on how many examples) and in a `standardization_late_nodes` event the
 * round such a node first contributes. Computed from the committed statistics and round records only; the
 * run view keeps each run's coverage and folds in the rounds committed since its last read.
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
  return new CoverageTracker(stats).update(rounds).coverage();
}

/**
 * One run's coverage, kept up to date round by round: committed rounds are immutable and read oldest first, so
 * each is folded in once and a later read only looks at the rounds committed since.
 */
class CoverageTracker {
  private readonly covered: ReadonlySet<number>;
  private readonly known = new Set<number>();
  private readonly joinedLater: LateNode[] = [];
  /** How many of the run's rounds are folded in, and the last one's number (to notice another history). */
  private folded = 0;
  private lastRound: number | null = null;

  constructor(readonly stats: RunStandardization) {
    this.covered = new Set(stats.nodes);
  }

  /** Whether `rounds` continues the history folded in so far (false: it is not this run's, start again). */
  continues(rounds: readonly ContributionRecord[]): boolean {
    return rounds.length >= this.folded && (this.folded === 0 || rounds[this.folded - 1].round === this.lastRound);
  }

  update(rounds: readonly ContributionRecord[]): this {
    for (; this.folded < rounds.length; this.folded++) {
      const record = rounds[this.folded];
      this.joinedLater.push(...lateNodesOf(this.covered, record, this.known));
      this.lastRound = record.round;
    }
    return this;
  }

  coverage(): StandardizationCoverage {
    const { stats } = this;
    return {
      rows: stats.count,
      nodes: [...stats.nodes],
      columns: [...stats.columns],
      joinedLater: [...this.joinedLater],
    };
  }
}

/** Whether two reads of a run's statistics are the same statistics. */
const sameStatistics = (a: RunStandardization, b: RunStandardization) =>
  a.count === b.count &&
  a.nodes.length === b.nodes.length &&
  a.nodes.every((n, i) => n === b.nodes[i]) &&
  a.columns.length === b.columns.length &&
  a.columns.every((c, i) => c === b.columns[i]);

/**
 * The coverage a run's view shows (GET /v1/runs/:id), kept per run for the `maxRuns` runs read most recently:
 * each read folds in only the rounds committed since the last one. A run's statistics never change once
 * committed; other statistics, or rounds that do not continue the ones folded in, start that run's anew.
 */
export class StandardizationCoverageCache {
  private readonly runs = new Map<number, CoverageTracker>();

  constructor(private readonly maxRuns = 64) {}

  coverage(runId: number, stats: RunStandardization, rounds: readonly ContributionRecord[]): StandardizationCoverage {
    let tracker = this.runs.get(runId);
    this.runs.delete(runId); // re-inserted below: the Map's order is the order of last use
    if (!tracker || !sameStatistics(tracker.stats, stats) || !tracker.continues(rounds))
      tracker = new CoverageTracker(stats);
    this.runs.set(runId, tracker.update(rounds));
    if (this.runs.size > this.maxRuns) this.runs.delete(this.runs.keys().next().value!);
    return tracker.coverage();
  }
}
