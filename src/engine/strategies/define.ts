/**
 * What a fusion strategy is: a named module that reads its parameters from the strategy text, declares what
 * it can be combined with (its capabilities), and builds the fusion a run uses. The registry (registry.ts)
 * maps names to definitions; everything that lists strategies or checks a combination reads it from there.
 */
import type { z } from 'zod';
import type { ServerOptHyper, ServerOptName, ServerOptState } from '../../core/server-opt.js';
import type { LocalStateKind, Metrics } from '../../model/trainer.js';
import type { AdaptiveClipConfig } from '../dp-adaptive.js';
import type { DpNoiseSource } from '../dp-noise.js';
import type { PrivacySpentSoFar } from '../privacy-ledger.js';
import type { StrategyArgs } from './args.js';

/** Parameters every strategy text carries (the server step's optimiser and hyper-parameters, FedProx's mu). */
export interface CommonParams {
  /** FedProx mu sent to the nodes with every train request (0 = no proximal term). */
  proxMu: number;
  /** Server optimizer and its hyper-parameters (`eta=...`, `beta1=...` in the text). */
  serverOpt: ServerOptName;
  hyper: ServerOptHyper;
  /** L2 bound each delta is clipped to before fusion (`clip=NORM`), for strategies that accept it. */
  clip?: number;
  /** State the nodes keep between rounds (SCAFFOLD, FedDyn), sent with every train request; absent = none. */
  localState?: LocalStateKind;
  /** FedPer, FedRep: trailing layers each node keeps as its own head. */
  headLayers?: number;
  /** FedRep: local epochs on the head alone before the body's. */
  headEpochs?: number;
  /** Ditto: lambda, sent to the nodes as their personal model's proximal mu. */
  personalMu?: number;
}

export interface StrategyCapabilities {
  /** 'weights': nodes send their trained weights; 'gradient': their mean gradient (FedSGD). */
  updateMode: 'weights' | 'gradient';
  /** The fusion reads each node's own update (robust rules, FedNova, clipping, DP), not only their mean. */
  needsIndividualUpdates: boolean;
  /** Runs on the securely aggregated mean alone (then `applyMeanDelta` is required). */
  secureAggregation: boolean;
  /** Can be the fusion of FedBuff's asynchronous mode (which brings its own server step). */
  async: boolean;
  /** Takes compressed updates (decoded before fusion). */
  compression: boolean;
  /** Local steps may be capped to a node's speed (`workSeconds`) without biasing the fusion. */
  sizedWork: boolean;
  /** The fewest updates a round must fuse; a round with fewer is skipped. */
  minUpdates: number;
  /**
   * Nodes are picked by Poisson sampling (each with probability fraction, what a DP accountant assumes) and
   * every answer is fused: over-selection does not apply. Absent = a fixed-size sample.
   */
  poissonSampling?: boolean;
  /** The model must have BatchNormalization layers (FedBN keeps them on the nodes). Absent = any model. */
  needsBatchNorm?: boolean;
}

/** What a round tells the strategy beyond the results: for DP noise and its fixed denominator. */
export interface RoundContext {
  round: number;
  seed: number;
  /** Nodes asked this round and nodes that could have been asked. */
  sampled: number;
  population: number;
  /** DP: the fixed denominator q N (Poisson sampling); absent = max(sampled, results). */
  expectedClients?: number;
  /** DP: where its noise comes from; absent = 'csprng' (noise nobody can regenerate). */
  noise?: DpNoiseSource;
}

export interface TrainResult {
  nodeId: number;
  numExamples: number;
  steps: number;
  /** Local weights after training ('weights' mode) or the mean gradient ('gradient' mode). */
  vector: Float32Array;
  metrics: Metrics;
  /** SCAFFOLD: the node's control delta (the extra upload). */
  controlDelta?: Float32Array;
}

export interface EvalResult extends Metrics {
  nodeId: number;
  numExamples: number;
  /** FedPer: the node's personalised model on the same split. */
  personal?: Metrics;
}

/** One run's fusion, built by a definition from its parameters (and a checkpoint's state when resuming). */
export interface Fusion {
  /** The next global model from this round's results, given in node-id order (at least one). */
  aggregate(global: Float32Array, results: readonly TrainResult[], context?: RoundContext): Float32Array;
  /** The server step on an already fused mean delta (secure aggregation, a DP wrapper); needed for those. */
  applyMeanDelta?(global: Float32Array, meanDelta: Float32Array): Float32Array;
  /** Server optimizer state for the checkpoint; absent = a stateless FedAvg step. */
  state?(): ServerOptState;
  /** Other state for the checkpoint's extra (JSON-safe). */
  extraState?(): Record<string, unknown>;
  /** Charges one round at sampling rate q (0 = nothing released) to the privacy ledger; absent = no ledger. */
  recordPrivacyRound?(q: number): void;
  /** Privacy spent so far over the rounds recorded; absent = no privacy guarantee. */
  privacySpent?(): PrivacySpentSoFar;
  /** SCAFFOLD: the server control variate sent with every train request (zero, `size` long, at first). */
  control?(size: number): Float32Array;
  /** The clip norm a differentially private fusion uses next round. */
  readonly dpClipNorm?: number;
  /**
   * True when aggregate(global, results) is exactly applyMeanDelta(global, averageDelta(global, the vectors,
   * their numExamples)): the engine may then sum the mean delta as updates arrive (in-order-fusion.ts).
   */
  readonly fusesMeanDelta?: boolean;
}

export interface Restore {
  state?: ServerOptState;
  extra?: Record<string, unknown>;
}

export interface StrategyDefinition<P extends CommonParams = CommonParams> {
  /** Lower case: what `--strategy` and run configs name it by. */
  name: string;
  /** The text form for help, e.g. `krum:f=K`. */
  syntax: string;
  /** One line on what it does. */
  summary: string;
  /** A valid text of it when the bare name needs parameters (e.g. `krum:f=1`): what capability lists judge. */
  example?: string;
  /** The server optimizer the text defaults to (default 'fedavg'). */
  serverOpt?: ServerOptName;
  /** Accepts `clip=NORM` (each update clipped to that L2 norm before fusion). */
  clip?: boolean;
  /** The parameter names its text takes (other strategies' errors point here when given one of these). */
  keys?: readonly string[];
  /** Reads its own parameters from the text; what it leaves goes to the server optimizer's hyper-parameters. */
  parse?(args: StrategyArgs, common: CommonParams): P;
  /** Typed parameters for strategies defined with a zod object instead of `parse` (`key=value` in the text). */
  params?: z.ZodObject;
  capabilities(params: P): StrategyCapabilities;
  create(params: P, restore?: Restore): Fusion;
}

/** A strategy's parsed text: its name and parameters (what `new Strategy(...)` and run configs take). */
export type StrategyConfig<P extends CommonParams = CommonParams> = P & { name: string } & BuiltinParams;

/** The parameters of the built-in families, optional on every config so callers can read them by name. */
export interface BuiltinParams {
  /** Byzantine updates to tolerate (krum, multikrum, bulyan: required). */
  f?: number;
  /** Multi-Krum: how many of the best-scored updates to average; absent = n - f. */
  m?: number;
  /** FedTrimmedAvg: fraction trimmed from each side, in [0, 0.5) (default 0.2). */
  beta?: number;
  /** DP: Gaussian noise multiplier z (noise std z * clip on the sum of clipped updates) and delta. */
  noise?: number;
  delta?: number;
  /** DP with `clip=adaptive`: the clip norm follows a quantile of the update norms (dp-adaptive.ts). */
  adaptive?: AdaptiveClipConfig;
}

/** The capabilities of a weights-mode strategy that fuses the example-weighted mean delta (FedAvg). */
export const MEAN_DELTA: StrategyCapabilities = {
  updateMode: 'weights',
  needsIndividualUpdates: false,
  secureAggregation: true,
  async: false,
  compression: true,
  sizedWork: false,
  minUpdates: 1,
};

/** The capabilities of a strategy that reads every node's update (robust rules, FedNova). */
export const PER_UPDATE: StrategyCapabilities = {
  ...MEAN_DELTA,
  needsIndividualUpdates: true,
  secureAggregation: false,
};

/**
 * The public way to define a strategy: checks the definition and returns it typed. Register it with
 * `registerStrategy` to use it by name in simulations and run configs.
 */
export function defineStrategy<P extends CommonParams>(definition: StrategyDefinition<P>): StrategyDefinition<P> {
  if (!/^[a-z][a-z0-9-]*$/.test(definition.name)) {
    throw new Error(
      `strategy name '${definition.name}' must be lower-case letters, digits and '-', starting with a letter`,
    );
  }
  if (definition.parse && definition.params)
    throw new Error(`strategy '${definition.name}': give parse or params, not both`);
  return definition;
}
