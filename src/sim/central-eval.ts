/**
 * The simulation's central evaluation (every round, on the whole test set) spread over the main thread and the
 * worker threads, which sit idle while the synchronous engine evaluates. The test rows are cut at multiples of the
 * trainer's evaluation batch, every thread returns the summed loss of each of its batches, and the main thread adds
 * them up in row order: the bytes of one thread's EngineTrainer.evaluate, whatever the number of workers.
 */
import type { Dataset } from '../data/types.js';
import type { EvalOutcome, LocalTrainer } from '../model/trainer.js';
import { EngineTrainer } from '../model/engine-trainer.js';

export interface EvalRangeRequest {
  evalRange: { start: number; end: number };
  weights: Float32Array;
}

export type EvalRangeReply = { losses: Float64Array; correct: number } | { error: string };

/** A worker's answer to an EvalRangeRequest (errors come back as values, so the main thread can name them). */
export function evaluateRangeReply(
  trainer: LocalTrainer,
  test: Dataset | undefined,
  msg: EvalRangeRequest,
): EvalRangeReply {
  try {
    if (!test) throw new Error('this worker was started without the test set');
    if (!(trainer instanceof EngineTrainer))
      throw new Error(`the ${trainer.kind} trainer does not evaluate row ranges`);
    return trainer.evaluateRange(msg.weights, test, msg.evalRange.start, msg.evalRange.end);
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** Rows 0..n cut into at most `parts` consecutive ranges, each starting at a multiple of `batch`, none empty. */
export function evalRanges(n: number, batch: number, parts: number): [number, number][] {
  const batches = Math.ceil(n / batch);
  const k = Math.max(1, Math.min(parts, batches));
  const out: [number, number][] = [];
  for (let i = 0, b = 0; i < k; i++) {
    const take = Math.floor(batches / k) + (i < batches % k ? 1 : 0);
    out.push([b * batch, Math.min(n, (b + take) * batch)]);
    b += take;
  }
  return out;
}

/** What the evaluation needs of the worker pool: one range to each idle worker. */
export interface RangeEvaluators {
  /** Workers with nothing to do now (a straggler of a closed round may still keep one busy). */
  idle(): number;
  evaluateRanges(weights: Float32Array, ranges: [number, number][]): Promise<EvalRangeReply[]>;
}

/** What evaluating behind training needs of the worker pool: ranges any free worker serves, after training requests. */
export interface QueuedEvaluators {
  evaluateQueued(weights: Float32Array, ranges: [number, number][]): Promise<EvalRangeReply[]>;
  /** A queued range no worker has taken yet, handed to the caller to compute (null when none is left). */
  takeQueuedEvaluation(): { range: [number, number]; weights: Float32Array; done: (r: EvalRangeReply) => void } | null;
}

/** The replies of consecutive ranges summed in row order: the outcome one thread's evaluate() gives. */
function sumInOrder(replies: EvalRangeReply[], n: number): EvalOutcome {
  let loss = 0;
  let correct = 0;
  for (const r of replies) {
    if ('error' in r) throw new Error(`central evaluation in a simulation worker failed: ${r.error}`);
    for (const l of r.losses) loss += l;
    correct += r.correct;
  }
  return { loss: loss / n, accuracy: correct / n, numExamples: n };
}

/**
 * evaluator.evaluate(w, test) as one range per evaluation batch, queued on the pool's workers behind the training
 * requests: for an engine that evaluates a round while the next trains (evaluateBehind). With `mainHelps` (a core
 * the workers leave free) the main thread takes ranges too, one at a time from the back of the queue, yielding in
 * between so the workers' replies are answered with little delay; without, it stays free to hand out and fuse work.
 */
export function queuedCentralEvaluation(
  evaluator: EngineTrainer,
  test: Dataset,
  pool: QueuedEvaluators,
  mainHelps: boolean,
): (weights: Float32Array) => Promise<EvalOutcome> {
  const batch = evaluator.evalBatchSize;
  const ranges = evalRanges(test.n, batch, Math.ceil(test.n / batch));
  const help = (): void => {
    const job = pool.takeQueuedEvaluation();
    if (!job) return;
    const request: EvalRangeRequest = { evalRange: { start: job.range[0], end: job.range[1] }, weights: job.weights };
    job.done(evaluateRangeReply(evaluator, test, request));
    setImmediate(help);
  };
  return async (w) => {
    const replies = pool.evaluateQueued(w, ranges);
    if (mainHelps) setImmediate(help);
    return sumInOrder(await replies, test.n);
  };
}

/**
 * evaluator.evaluate(w, test), computed by the main thread and the pool's workers together. Falls back to the
 * main thread alone for trainers without row ranges (tfjs) or with no worker to help.
 */
export function splitCentralEvaluation(
  evaluator: LocalTrainer,
  test: Dataset,
  pool: RangeEvaluators | null,
): (weights: Float32Array) => Promise<EvalOutcome> {
  if (!pool || !(evaluator instanceof EngineTrainer)) return (w) => evaluator.evaluate(w, test);
  return async (w) => {
    const ranges = evalRanges(test.n, evaluator.evalBatchSize, pool.idle() + 1);
    if (ranges.length === 1) return evaluator.evaluate(w, test);
    // The workers take the later ranges; the main thread evaluates the first meanwhile.
    const helping = pool.evaluateRanges(w, ranges.slice(1));
    const own = evaluator.evaluateRange(w, test, ranges[0][0], ranges[0][1]);
    return sumInOrder([own, ...(await helping)], test.n);
  };
}
