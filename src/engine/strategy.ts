/**
 * The strategy a run uses: how a round picks nodes and fuses their updates. The hooks follow Flower's names
 * (configureTrain, aggregateTrain, configureEvaluate, aggregateEvaluate). Which fusion runs comes from the
 * registry (strategies/registry.ts): one module per family under strategies/, each declaring its
 * capabilities; the fusion math itself lives in core (aggregate.ts, robust.ts, server-opt.ts, dp.ts).
 */
import { poissonSample, sampleNodes } from '../core/sampling.js';
import { makeServerOptimizer, type ServerOptState } from '../core/server-opt.js';
import type { Rng } from '../core/rng.js';
import type { RandomWords } from '../core/discrete-gaussian.js';
import type { PrivacySpentSoFar } from './privacy-ledger.js';
import type { Metrics, TrainConfig } from '../model/trainer.js';
import type {
  EvalResult,
  Fusion,
  RoundContext,
  StrategyCapabilities,
  StrategyConfig,
  TrainResult,
} from './strategies/define.js';
import { BUILTIN_STRATEGY_NAMES, strategyDefinition } from './strategies/registry.js';

export { minUpdates, parseStrategy } from './strategies/registry.js';
export { DEFAULT_TRIM_BETA } from './strategies/trimmed-mean.js';
export type {
  EvalResult,
  RoundContext,
  StrategyCapabilities,
  StrategyConfig,
  TrainResult,
} from './strategies/define.js';

/** A strategy's name: a built-in one (STRATEGY_NAMES) or one registered with registerStrategy. */
export type StrategyName = string;
export const STRATEGY_NAMES = BUILTIN_STRATEGY_NAMES;

export class Strategy {
  readonly capabilities: StrategyCapabilities;
  readonly mode: 'weights' | 'gradient';
  private readonly fusion: Fusion;
  /** The server step of strategies that keep no optimizer state of their own (checkpoints still carry one). */
  private readonly stateless = makeServerOptimizer('fedavg');

  /** `extra` is the checkpoint's extra state (extraState()): adaptive clipping resumes from it. */
  constructor(
    readonly config: StrategyConfig,
    restore?: ServerOptState,
    extra?: Record<string, unknown>,
  ) {
    const definition = strategyDefinition(config.name);
    this.capabilities = definition.capabilities(config);
    this.mode = this.capabilities.updateMode;
    this.fusion = definition.create(config, { state: restore, extra });
  }

  get name(): string {
    return this.config.name;
  }

  /** FedProx's mu, sent to the nodes with every train request (0 for other strategies). */
  get proxMu(): number {
    return this.config.proxMu;
  }

  /** State the nodes keep between rounds for this strategy (SCAFFOLD, FedDyn); undefined for most. */
  get localState(): StrategyConfig['localState'] {
    return this.config.localState;
  }

  /** What every train request carries for the nodes' own state: its kind and FedPer's head size. */
  nodeConfig(): Pick<TrainConfig, 'localState' | 'headLayers' | 'headEpochs' | 'personalMu'> {
    const { localState, headLayers, headEpochs, personalMu } = this.config;
    return {
      ...(localState ? { localState } : {}),
      ...(headLayers !== undefined ? { headLayers } : {}),
      ...(headEpochs !== undefined ? { headEpochs } : {}),
      ...(personalMu !== undefined ? { personalMu } : {}),
    };
  }

  /** The server control variate nodes need with their train requests (SCAFFOLD); undefined for other strategies. */
  control(size: number): Float32Array | undefined {
    return this.fusion.control?.(size);
  }

  /** State beyond the server optimizer's, for the checkpoint's extra (JSON-safe). */
  extraState(): Record<string, unknown> {
    return this.fusion.extraState?.() ?? {};
  }

  /** The clip norm differentially private fusion uses next round (adaptive or fixed); undefined otherwise. */
  get dpClipNorm(): number | undefined {
    return this.fusion.dpClipNorm;
  }

  /**
   * The nodes asked to train. Poisson-sampling strategies (DP) take each node independently with probability
   * `fraction` (the sampling their accountant assumes), from `dpSampling` words when given (the CSPRNG in deployment).
   */
  configureTrain(
    nodeIds: readonly number[],
    fraction: number,
    minNodes: number,
    rng: Rng,
    dpSampling?: RandomWords,
  ): number[] {
    if (this.capabilities.poissonSampling) return poissonSample(nodeIds, fraction, dpSampling ?? rng);
    return sampleNodes(nodeIds, fraction, minNodes, rng);
  }

  /** Fuses results (any order in, node-id order used) into the next global model. */
  aggregateTrain(global: Float32Array, results: readonly TrainResult[], context?: RoundContext): Float32Array {
    if (results.length === 0) throw new Error('aggregateTrain needs at least one result');
    return this.fusion.aggregate(
      global,
      [...results].sort((a, b) => a.nodeId - b.nodeId),
      context,
    );
  }

  /** aggregateTrain is the server step on averageDelta of the results: they may be summed as they arrive. */
  get fusesMeanDelta(): boolean {
    return this.fusion.fusesMeanDelta === true && this.fusion.applyMeanDelta !== undefined;
  }

  /** The server step on an already fused mean delta (secure aggregation computes it without single updates). */
  applyMeanDelta(global: Float32Array, meanDelta: Float32Array): Float32Array {
    if (!this.fusion.applyMeanDelta) throw new Error(`strategy '${this.name}' cannot fuse from a mean delta alone`);
    return this.fusion.applyMeanDelta(global, meanDelta);
  }

  /** Charges one round at sampling rate q (0 = nothing released) to the privacy ledger, if the strategy keeps one. */
  recordPrivacyRound(q: number): void {
    this.fusion.recordPrivacyRound?.(q);
  }

  /** Privacy spent so far (RDP accountant over the actual rounds, Opacus' conversion); null without DP. */
  privacySpent(): PrivacySpentSoFar | null {
    return this.fusion.privacySpent?.() ?? null;
  }

  configureEvaluate(nodeIds: readonly number[], fraction: number, minNodes: number, rng: Rng): number[] {
    return sampleNodes(nodeIds, fraction, minNodes, rng);
  }

  /** Example-weighted mean of the nodes' metrics. */
  aggregateEvaluate(results: readonly EvalResult[]): Metrics & { numExamples: number } {
    return weightedMetrics(results);
  }

  state(): ServerOptState {
    return this.fusion.state?.() ?? this.stateless.state();
  }
}

/** Example-weighted mean of evaluation metrics (NaN with no examples). */
export function weightedMetrics(results: readonly EvalResult[]): Metrics & { numExamples: number } {
  let n = 0;
  let loss = 0;
  let accuracy = 0;
  for (const r of results) {
    n += r.numExamples;
    loss += r.loss * r.numExamples;
    accuracy += r.accuracy * r.numExamples;
  }
  return n === 0
    ? { loss: NaN, accuracy: NaN, numExamples: 0 }
    : { loss: loss / n, accuracy: accuracy / n, numExamples: n };
}
