/**
 * The one place a run's engine is built: synchronous rounds (RoundEngine) or FedBuff (AsyncEngine), from what
 * the run is (its spec) and where it runs (its environment: transport, clock, checkpoint hooks). Simulation,
 * the coordinator and a gateway's edge rounds all call this.
 */
import { parseCompression, type CompressionSpec } from '../core/compress-update.js';
import type { DpNoiseSource } from './dp-noise.js';
import { AsyncEngine } from './async-engine.js';
import { RoundEngine, type EngineOptions } from './round-engine.js';
import { fedBuffSettings, type FedBuffSettings } from './run-rules.js';
import { secureAggregationOf, type SecureAggregationFields } from './run-spec.js';
import type { SecureAggregationOptions } from './secure-round.js';
import type { Strategy } from './strategy.js';

/** What the run is, as the engines take it (resolved from simulation options or a run config). */
export interface EngineSpec {
  strategy: Strategy;
  rounds: number;
  seed: number;
  local: EngineOptions['local'];
  fraction: number;
  minNodes: number;
  evalFraction: number;
  targetAccuracy?: number;
  overSelect?: number;
  deadlineSeconds?: number;
  compression?: CompressionSpec;
  secure?: SecureAggregationOptions;
  /** DP noise and sampling: 'csprng' (the default; deployment always) or 'seeded' (repeatable simulations). */
  dpNoise?: DpNoiseSource;
  /** Present for mode 'async': FedBuff's settings (run-rules.ts fedBuffSettings). */
  fedBuff?: FedBuffSettings;
}

/** The run spec's fields the engine reads, as either view of the run spec (engine/run-spec.ts) resolves them. */
export interface EngineFields extends SecureAggregationFields {
  rounds: number;
  seed: number;
  fraction: number;
  evalFraction: number;
  localEpochs: number;
  batchSize: number;
  compression: string;
  mode: 'sync' | 'async';
  targetAccuracy?: number;
  overSelect?: number;
  deadline?: number;
  dpNoise?: DpNoiseSource;
  bufferSize?: number;
  concurrency?: number;
  serverLr?: number;
}

/** What the host resolved beside the spec: the strategy (with any resumed state) and the model's optimizer. */
export interface EngineChoices {
  strategy: Strategy;
  optimizer: EngineOptions['local']['optimizer'];
  /** The fewest updates a round fuses (the spec's minNodes, raised to what the strategy needs). */
  minNodes: number;
  /** The nodes a synchronous round asks: FedBuff's default concurrency (fedBuffSettings). */
  roundSize: number;
}

/** The one option-to-engine step: a parsed run spec and the host's choices as what the engines take. */
export function engineSpecOf(run: EngineFields, choices: EngineChoices): EngineSpec {
  const secure = secureAggregationOf(run);
  return {
    strategy: choices.strategy,
    rounds: run.rounds,
    seed: run.seed,
    local: { epochs: run.localEpochs, batchSize: run.batchSize, optimizer: choices.optimizer },
    fraction: run.fraction,
    minNodes: choices.minNodes,
    evalFraction: run.evalFraction,
    targetAccuracy: run.targetAccuracy,
    overSelect: run.overSelect,
    deadlineSeconds: run.deadline,
    compression: parseCompression(run.compression),
    ...(run.dpNoise ? { dpNoise: run.dpNoise } : {}),
    ...(secure ? { secure } : {}),
    ...(run.mode === 'async' ? { fedBuff: fedBuffSettings(run, choices.roundSize) } : {}),
  };
}

/** Where the run happens: the transport, the model layout and start, and the hooks of its host. */
export type EngineEnvironment = Pick<
  EngineOptions,
  | 'layout'
  | 'transport'
  | 'initial'
  | 'centralEval'
  | 'evaluateBehind'
  | 'onRound'
  | 'startRound'
  | 'control'
  | 'waitForNodes'
  | 'maxStepsFor'
  | 'clock'
>;

export function engineFor(spec: EngineSpec, env: EngineEnvironment): { run: RoundEngine['run'] } {
  const { fedBuff, ...sync } = spec;
  if (fedBuff) {
    const { strategy, rounds, seed, local, targetAccuracy } = spec;
    return new AsyncEngine({ ...env, strategy, rounds, seed, local, targetAccuracy, ...fedBuff });
  }
  return new RoundEngine({ ...env, ...sync });
}
