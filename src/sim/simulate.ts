/**
 * A simulated federated run: load data, partition it, start virtual nodes in worker threads, and drive
 * the same RoundEngine a deployed coordinator uses. Returns the metrics and the final model.
 */
import { availableParallelism } from 'node:os';
import { weightsSha256 } from '../model/hash.js';
import type { LoadedData } from '../data/load.js';
import type { PartitionReport } from '../core/partition.js';
import type { TensorSlot } from '../core/params.js';
import type { ModelSpec } from '../model/spec.js';
import { makeTrainer } from '../model/make-trainer.js';
import { Strategy } from '../engine/strategy.js';
import type { RoundRecord } from '../engine/round-engine.js';
import { engineFor, engineSpecOf } from '../engine/engine-for.js';
import { WorkerPoolTransport } from './pool.js';
import { parseCompression } from '../core/compress-update.js';
import { shareDataset, sharePartitioned } from './shared-data.js';
import { queuedCentralEvaluation, splitCentralEvaluation } from './central-eval.js';
import { EngineTrainer } from '../model/engine-trainer.js';
import { makeClock } from './heterogeneity.js';
import { simRoundSize } from './heterogeneity-options.js';
import { resolveOptions, type ResolvedOptions, type SimulationOptions } from './options.js';
import { prepareRun, type AttackSummary } from './setup.js';
import { localDpHost } from './sim-host.js';

export type { AttackSummary } from './setup.js';

/** Whether a run may evaluate behind training (see runSimulation); tests turn it off to compare runs in step. */
export const evaluation = { behind: true };

export interface SimulationResult {
  options: ResolvedOptions;
  spec: ModelSpec;
  layout: TensorSlot[];
  weights: Float32Array;
  rounds: RoundRecord[];
  reachedTarget: boolean;
  partition: PartitionReport;
  seconds: number;
  bytesSent: number;
  bytesReceived: number;
  modelSha256: string;
  trainer: string;
  data: LoadedData;
  /** The simulated attack, when there was one: its kind, strength and the Byzantine node ids. */
  attack?: AttackSummary;
  /** With --queue: the worker processes (hostname:pid) that served the run's nodes. */
  queueWorkers?: string[];
}

export async function runSimulation(
  input: SimulationOptions,
  onRound?: (record: RoundRecord) => void,
): Promise<SimulationResult> {
  const options = resolveOptions(input);
  const compression = parseCompression(options.compression);
  const clock = makeClock(options); // device profiles first: a bad --profile file fails before the data loads
  const { strategyConfig, minNodes, data, train, test, spec, layout, parts, report, initial, attack, nodeAttack } =
    await prepareRun(options);
  const workers = options.workers ?? Math.max(1, Math.min(availableParallelism(), options.nodes));
  const started = performance.now();
  // BullMQ (and its Redis client) load only for runs that use a queue.
  const queued = options.queue ? await (await import('./queue.js')).QueueTransport.start(options) : undefined;
  const transport =
    queued ??
    (await WorkerPoolTransport.start(
      {
        ...sharePartitioned(train, parts),
        validationFraction: options.validationFraction,
        seed: options.seed,
        spec,
        trainer: options.trainer,
        ...(nodeAttack ? { attack: nodeAttack } : {}),
        ...(options.secagg && options.secaggDropout ? { secaggDropout: options.secaggDropout } : {}),
        ...localDpHost(options),
        // The synchronous engine's workers are idle while it evaluates: they take part of the test set.
        ...(options.mode === 'async' ? {} : { test: shareDataset(test) }),
        // Secure aggregation: a virtual node remembers the rounds it shared keys for, so it stays on one worker.
      },
      workers,
      // So does a node that keeps state between rounds (SCAFFOLD, FedDyn, FedPer/FedRep heads, Ditto's model):
      // served by another worker it would start from none, and be evaluated with whichever copy that worker has.
      compression.ef || options.secagg === true || strategyConfig.localState !== undefined,
    ));
  const evaluator = await makeTrainer(spec, options.trainer);
  // Round r is evaluated while round r+1 trains, when nothing needs the rounds in step (a clock's simulated time,
  // secure aggregation) and the workers can evaluate row ranges; the main thread helps where a core is left free.
  const pool = transport instanceof WorkerPoolTransport && options.mode !== 'async' ? transport : null;
  const behind =
    evaluation.behind && pool !== null && evaluator instanceof EngineTrainer && !clock && options.secagg !== true;
  try {
    const engine = engineFor(
      engineSpecOf(options, {
        strategy: new Strategy(strategyConfig),
        optimizer: spec.optimizer,
        minNodes,
        roundSize: simRoundSize(options),
      }),
      {
        layout,
        transport,
        initial,
        centralEval: behind
          ? queuedCentralEvaluation(evaluator as EngineTrainer, test, pool!, workers < availableParallelism())
          : splitCentralEvaluation(evaluator, test, pool),
        evaluateBehind: behind,
        onRound: (r: RoundRecord) => onRound?.(r),
        ...(clock ? { clock } : {}),
      },
    );
    const run = await engine.run();
    // A run evaluated behind that reached its target also trained the round it then dropped; its totals are the
    // kept rounds' own, as in step.
    const traffic =
      behind && run.reachedTarget
        ? {
            sent: run.rounds.reduce((a, r) => a + r.bytesSent, 0),
            received: run.rounds.reduce((a, r) => a + r.bytesReceived, 0),
          }
        : transport.traffic();
    return {
      options,
      spec,
      layout,
      weights: run.weights,
      rounds: run.rounds,
      reachedTarget: run.reachedTarget,
      partition: report,
      seconds: (performance.now() - started) / 1000,
      bytesSent: traffic.sent,
      bytesReceived: traffic.received,
      modelSha256: weightsSha256(run.weights),
      trainer: transport.trainerKind,
      data: { ...data, train, test },
      ...(queued ? { queueWorkers: [...queued.servedBy].sort() } : {}),
      ...(attack ? { attack } : {}),
    };
  } finally {
    evaluator.dispose();
    await transport.close();
  }
}
