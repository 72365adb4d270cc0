/** The run summary (the --json object) and the files a run writes into --out. */
import { mkdirSync, renameSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { join, dirname, basename } from 'node:path';
import type { SimulationResult } from '../sim/simulate.js';
import { accuracyLossSvg } from './plot.js';
import { UsageError } from './args.js';
import { simTimeToTarget } from '../engine/virtual-time.js';

export interface RunSummary {
  rounds: number;
  final_accuracy: number;
  final_loss: number;
  reached_target: boolean;
  accuracy_by_round: number[];
  loss_by_round: number[];
  train_loss_by_round: number[];
  seconds: number;
  bytes_sent: number;
  bytes_received: number;
  model_sha256: string;
  /** DP-FedAvg runs: privacy spent (RDP accountant). */
  epsilon?: number;
  delta?: number;
  trainer: string;
  /** Updates fused in each round (over-selection, deadlines and link drops leave some out). */
  contributors_by_round: number[];
  /** With device profiles: simulated seconds of the whole run, and until the target accuracy (null: not reached). */
  simulated_seconds?: number;
  simulated_seconds_to_target?: number | null;
  /** FedPer: the last round's personalised accuracy across the evaluated nodes (needs --eval-fraction > 0). */
  personalized_accuracy_mean?: number;
  personalized_accuracy_p10?: number;
  personalized_accuracy_min?: number;
  /** With --queue: the sim-worker processes that served the nodes. */
  queue_workers?: string[];
  config: Record<string, unknown>;
  out?: string;
}

export function summarize(result: SimulationResult, out?: string): RunSummary {
  const last = result.rounds[result.rounds.length - 1];
  return {
    rounds: result.rounds.length,
    final_accuracy: last.testAccuracy,
    final_loss: last.testLoss,
    reached_target: result.reachedTarget,
    accuracy_by_round: result.rounds.map((x) => x.testAccuracy),
    loss_by_round: result.rounds.map((x) => x.testLoss),
    train_loss_by_round: result.rounds.map((x) => x.trainLoss),
    contributors_by_round: result.rounds.map((x) => x.contributed.length),
    seconds: Math.round(result.seconds * 1000) / 1000,
    bytes_sent: result.bytesSent,
    bytes_received: result.bytesReceived,
    model_sha256: result.modelSha256,
    ...(last.epsilon !== undefined ? { epsilon: last.epsilon, delta: last.delta } : {}),
    trainer: result.trainer,
    ...(last.simTime !== undefined
      ? {
          simulated_seconds: last.simTime,
          simulated_seconds_to_target: simTimeToTarget(result.rounds, result.options.targetAccuracy),
        }
      : {}),
    ...(last.personalizedAccuracyMean !== undefined
      ? {
          personalized_accuracy_mean: last.personalizedAccuracyMean,
          personalized_accuracy_p10: last.personalizedAccuracyP10,
          personalized_accuracy_min: last.personalizedAccuracyMin,
        }
      : {}),
    ...(result.queueWorkers ? { queue_workers: result.queueWorkers } : {}),
    config: { ...result.options },
    ...(out ? { out } : {}),
  };
}

/** Fails early (before any work) when --out would overwrite something. */
export function checkOutDir(out: string): void {
  if (existsSync(out) && readdirSync(out).length > 0) throw new UsageError(`--out: ${out} exists and is not empty`);
}

const csvCell = (v: unknown) =>
  typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : `"${String(v).replace(/"/g, '""')}"`;

/**
 * Writes metrics (JSON, CSV), the tfjs model, the partition report and a plot. Everything goes to a
 * sibling temporary folder first and is renamed into place, so a failed run leaves no partial output.
 */
export async function writeRunOutputs(result: SimulationResult, summary: RunSummary, out: string): Promise<void> {
  checkOutDir(out);
  mkdirSync(dirname(out), { recursive: true });
  const tmp = join(dirname(out), `.${basename(out)}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  try {
    writeFileSync(join(tmp, 'metrics.json'), JSON.stringify({ summary, rounds: result.rounds }, null, 2));
    const cols = [
      'round',
      'testAccuracy',
      'testLoss',
      'trainLoss',
      'trainAccuracy',
      'federatedAccuracy',
      'federatedLoss',
      'contributed',
      'failures',
      'bytesSent',
      'bytesReceived',
      'seconds',
    ] as const;
    const rows = result.rounds.map((record) =>
      [
        record.round,
        record.testAccuracy,
        record.testLoss,
        record.trainLoss,
        record.trainAccuracy,
        record.federatedAccuracy,
        record.federatedLoss,
        record.contributed.length,
        record.failures.length,
        record.bytesSent,
        record.bytesReceived,
        record.seconds,
      ]
        .map(csvCell)
        .join(','),
    );
    writeFileSync(join(tmp, 'metrics.csv'), [cols.join(','), ...rows].join('\n') + '\n');
    writeFileSync(join(tmp, 'partition.json'), JSON.stringify(result.partition, null, 2));
    writeFileSync(
      join(tmp, 'plot.svg'),
      accuracyLossSvg(
        result.rounds.map((x) => x.round),
        summary.accuracy_by_round,
        summary.loss_by_round,
        `${result.options.model} on ${result.options.dataset}, ${result.options.strategy}, ${result.options.nodes} nodes`,
      ),
    );
    const { saveTfjsModel } = await import('../model/tfjs.js'); // not at load: every command imports this file
    await saveTfjsModel(result.spec, result.weights, join(tmp, 'model'));
    const loaded = result.data;
    writeFileSync(
      join(tmp, 'model', 'edgefed.json'),
      JSON.stringify(
        {
          dataset: result.options.dataset,
          featureShape: loaded.train.featureShape,
          numClasses: loaded.train.numClasses,
          columns: loaded.train.columns,
          classNames: loaded.classNames,
          labelColumn: (loaded.train as { labelColumn?: string }).labelColumn,
          standardization: loaded.standardization,
          standardizedWith: loaded.standardizedWith,
          final_accuracy: summary.final_accuracy,
          model_sha256: summary.model_sha256,
        },
        null,
        2,
      ),
    );
    renameSync(tmp, out);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}
