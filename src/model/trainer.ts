/**
 * Local training on a node: the contract both trainers (the dense engine and tfjs) fulfil.
 * Every call starts from the weights it is given and returns new arrays; nothing is kept between rounds
 * but compiled models and scratch buffers (the local optimizer starts fresh each round, as in FedAvg).
 */
import type { Dataset } from '../data/types.js';
import type { OptimizerConfig } from '../nn/optimizer.js';
import type { CompressionSpec } from '../core/compress-update.js';

export interface TrainConfig {
  epochs: number;
  batchSize: number;
  optimizer: OptimizerConfig;
  /** FedProx proximal coefficient mu (0 = plain local training). */
  proxMu: number;
  /** Seeds this node's shuffling for this round. */
  seed: number;
  /** Stop after this many steps (work sized to a device's capability); unlimited when absent. */
  maxSteps?: number;
  /** How the node compresses its update (compress-update.ts); absent = plain float32. */
  compression?: CompressionSpec;
  /**
   * Node state kept across rounds by the strategy (control-variates.ts): 'scaffold' (control variates, the
   * server's control travels with the request) or 'feddyn' (linear term; alpha is proxMu). Absent = none.
   */
  localState?: LocalStateKind;
  /** FedPer, FedRep: how many trailing layers are the node's own head (default 1, the last Dense). */
  headLayers?: number;
  /** Ditto: lambda, the pull of a node's personal model toward the global one. */
  personalMu?: number;
  /** FedRep: epochs training the head alone (body frozen) before `epochs` training the body (head frozen). */
  headEpochs?: number;
}

/** A run of the flat weights: a tensor's slot. */
export interface WeightRange {
  offset: number;
  size: number;
}

export type LocalStateKind = 'scaffold' | 'feddyn' | 'fedper' | 'fedrep' | 'ditto' | 'fedbn';

export interface Metrics {
  loss: number;
  accuracy: number;
}

export interface TrainOutcome {
  weights: Float32Array;
  numExamples: number;
  steps: number;
  metrics: Metrics;
}

export interface GradientOutcome {
  /** Gradient of the mean loss over all the node's examples. */
  gradient: Float32Array;
  numExamples: number;
  metrics: Metrics;
}

export interface EvalOutcome extends Metrics {
  numExamples: number;
}

export interface LocalTrainer {
  readonly kind: 'engine' | 'tfjs';
  /**
   * `shift`, when given, is added to every local gradient (SCAFFOLD's c - c_i, FedDyn's -g_i); the `frozen`
   * ranges of the weights keep their values (FedRep's two phases).
   */
  train(
    global: Float32Array,
    data: Dataset,
    cfg: TrainConfig,
    shift?: Float32Array,
    frozen?: readonly WeightRange[],
  ): Promise<TrainOutcome>;
  gradient(global: Float32Array, data: Dataset, batchSize: number): Promise<GradientOutcome>;
  evaluate(weights: Float32Array, data: Dataset): Promise<EvalOutcome>;
  /** Class probabilities (n x classes) or regression outputs (n x outputs). */
  predict(weights: Float32Array, x: Float32Array, n: number): Promise<Float32Array>;
  dispose(): void;
}

export function validateBatchSize(batchSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new Error(`batch size must be a whole number >= 1, got ${batchSize}`);
}

export function validateTrainConfig(cfg: TrainConfig): void {
  if (!Number.isInteger(cfg.epochs) || cfg.epochs < 1)
    throw new Error(`local epochs must be a whole number >= 1, got ${cfg.epochs}`);
  validateBatchSize(cfg.batchSize);
  if (!(cfg.proxMu >= 0) || !Number.isFinite(cfg.proxMu)) throw new Error(`FedProx mu must be >= 0, got ${cfg.proxMu}`);
  const kinds = ['scaffold', 'feddyn', 'fedper', 'fedrep', 'ditto', 'fedbn'];
  if (cfg.localState !== undefined && !kinds.includes(cfg.localState)) {
    const list = `${kinds
      .slice(0, -1)
      .map((k) => `'${k}'`)
      .join(', ')} or '${kinds.at(-1)}'`;
    throw new Error(`local state must be ${list}, got '${String(cfg.localState)}'`);
  }
  if (cfg.personalMu !== undefined && !(cfg.personalMu >= 0 && Number.isFinite(cfg.personalMu))) {
    throw new Error(`Ditto's lambda must be a number >= 0, got ${cfg.personalMu}`);
  }
  if (cfg.headEpochs !== undefined && (!Number.isInteger(cfg.headEpochs) || cfg.headEpochs < 1)) {
    throw new Error(`head epochs must be a whole number >= 1, got ${cfg.headEpochs}`);
  }
  if (cfg.headLayers !== undefined && (!Number.isInteger(cfg.headLayers) || cfg.headLayers < 1)) {
    throw new Error(`head layers must be a whole number >= 1, got ${cfg.headLayers}`);
  }
  if (cfg.maxSteps !== undefined && (!Number.isInteger(cfg.maxSteps) || cfg.maxSteps < 1))
    throw new Error(`max steps must be a whole number >= 1, got ${cfg.maxSteps}`);
}
