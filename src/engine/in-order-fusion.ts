/**
 * Fusing a round's updates while they arrive, without changing a bit of the result: the mean delta adds every
 * update in node-id order (as a batch fusion would), so an update is added once every node before it in the
 * selection has answered or failed. Most of the work is done by the time the last reply comes in, and no
 * single long pass blocks the coordinator's event loop when the round closes.
 */
import { MeanDeltaAccumulator } from '../core/aggregate.js';
import type { TrainResult } from './strategy.js';

/** An update already added: its vector is released (the round keeps only its metadata). */
const FUSED = new Float32Array(0);

export class InOrderFusion {
  private readonly acc: MeanDeltaAccumulator;
  /** Answers that came in ahead of an earlier node's: a result, or null for a failure. */
  private readonly waiting = new Map<number, TrainResult | null>();
  private next = 0;

  /** selected: the round's nodes in ascending id order; sums: a buffer to add up in (MeanDeltaAccumulator). */
  constructor(
    private readonly selected: readonly number[],
    global: Float32Array,
    sums?: Float64Array,
  ) {
    this.acc = new MeanDeltaAccumulator(global, sums);
  }

  /** A node's answer (null: it failed): added now if every earlier node is settled, else kept until then. */
  settle(nodeId: number, result: TrainResult | null): void {
    this.waiting.set(nodeId, result);
    while (this.next < this.selected.length && this.waiting.has(this.selected[this.next])) {
      this.take(this.selected[this.next]);
      this.next++;
    }
  }

  /**
   * The round closed: adds the results still waiting, in order (nodes that never answered are stragglers and
   * add nothing), yielding through pace between chunks, and returns the mean delta (averageDelta's errors).
   */
  async finish(pace?: () => Promise<void>): Promise<Float32Array> {
    for (; this.next < this.selected.length; this.next++) {
      if (this.waiting.has(this.selected[this.next])) this.take(this.selected[this.next]);
      if (pace && this.next % 64 === 63) await pace();
    }
    return this.acc.finish();
  }

  private take(nodeId: number): void {
    const result = this.waiting.get(nodeId);
    this.waiting.delete(nodeId);
    if (!result) return;
    this.acc.add(result.vector, result.numExamples);
    result.vector = FUSED;
  }
}
