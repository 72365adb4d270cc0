/**
 * Simulated time for the engines. A clock (src/sim/clock.ts implements it from device profiles)
 * turns each request into a simulated duration; the engines then order work by simulated finish time
 * instead of real arrival order, so heterogeneous runs stay deterministic by seed. Pure: no I/O.
 */
import type { NodeFailure, RoundRecord } from './round-record.js';
import type { TrainResult } from './strategy.js';

/** What one request cost a node: the real frame sizes and the samples its reply says it processed. */
export interface RequestCost {
  nodeId: number;
  downBytes: number;
  upBytes: number;
  samples: number;
}

export interface SimulatedClock {
  /** Virtual seconds since the run started. */
  now(): number;
  /** Moves the clock forward (never back). */
  advanceTo(t: number): void;
  /** The nodes of ids online now. */
  online(ids: readonly number[]): number[];
  /** The earliest time after now at which one of ids that is offline now comes online; Infinity if none will. */
  nextOnline(ids: readonly number[]): number;
  /** Simulated seconds of one request: download + work + upload. */
  duration(cost: RequestCost): number;
}

/**
 * Samples a node processed for a reply: its steps times the batch size, but no more than epochs times its
 * examples (the last batch of an epoch is short).
 */
export function samplesProcessed(steps: number, batchSize: number, epochs: number, numExamples: number): number {
  return Math.min(steps * batchSize, epochs * numExamples);
}

/** Advances the clock until at least `min` of ids are online; false if that never happens. */
export function waitUntilOnline(clock: SimulatedClock, ids: readonly number[], min: number): boolean {
  while (clock.online(ids).length < min) {
    const t = clock.nextOnline(ids);
    if (!Number.isFinite(t)) return false;
    clock.advanceTo(t);
  }
  return true;
}

export interface TimedArrival {
  nodeId: number;
  /** Simulated seconds from dispatch to the reply being in. */
  seconds: number;
}

/**
 * When a synchronous round closes in simulated time and who made it: arrivals sorted by (seconds, node id);
 * those past `deadline` are late; of the rest the first `needed` are kept (over-selection). The round ends
 * when the last kept one arrives, or at the deadline if it closed short of `needed` with nodes still out.
 */
export function closeByVirtualTime(
  arrivals: readonly TimedArrival[],
  needed: number,
  deadline?: number,
): { kept: number[]; late: TimedArrival[]; seconds: number } {
  const sorted = [...arrivals].sort((a, b) => a.seconds - b.seconds || a.nodeId - b.nodeId);
  const inTime = sorted.filter((a) => deadline === undefined || a.seconds <= deadline);
  const kept = inTime.slice(0, needed);
  const keptSet = new Set(kept);
  const late = sorted.filter((a) => !keptSet.has(a));
  const short = kept.length < needed && late.length > 0;
  const seconds = short && deadline !== undefined ? deadline : kept.length > 0 ? kept[kept.length - 1].seconds : 0;
  return { kept: kept.map((a) => a.nodeId), late, seconds };
}

/**
 * A synchronous round under the clock: every selected node's result was computed for real; this keeps
 * those that finish first in simulated time (deadline, over-selection), turns the rest into stragglers,
 * and advances the clock by the round's simulated length.
 */
export function closeRoundInVirtualTime(
  clock: SimulatedClock,
  results: TrainResult[],
  failures: NodeFailure[],
  costs: ReadonlyMap<number, RequestCost>,
  needed: number,
  deadline?: number,
): { results: TrainResult[]; failures: NodeFailure[] } {
  const arrivals = results.map((r) => ({ nodeId: r.nodeId, seconds: clock.duration(costs.get(r.nodeId)!) }));
  const { kept, late, seconds } = closeByVirtualTime(arrivals, needed, deadline);
  const stragglers = late.map((a) => ({
    nodeId: a.nodeId,
    error: `straggler: finished at ${a.seconds.toFixed(2)} simulated s, after the round closed at ${seconds.toFixed(2)} s`,
  }));
  clock.advanceTo(clock.now() + seconds);
  const keptIds = new Set(kept);
  return {
    results: results.filter((r) => keptIds.has(r.nodeId)),
    failures: [...failures, ...stragglers].sort((a, b) => a.nodeId - b.nodeId),
  };
}

/** Simulated seconds at the end of the first round whose accuracy reached target; null if none did. */
export function simTimeToTarget(records: readonly RoundRecord[], target: number | undefined): number | null {
  if (target === undefined) return null;
  const hit = records.find(
    (record) =>
      record.simTime !== undefined &&
      (Number.isFinite(record.testAccuracy) ? record.testAccuracy : record.federatedAccuracy) >= target,
  );
  return hit?.simTime ?? null;
}
