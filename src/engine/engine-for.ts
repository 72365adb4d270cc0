/**
 * The one place a run's engine is built: synchronous rounds (RoundEngine) or FedBuff (AsyncEngine), from what
 * the run is (its spec) and where it runs (its environment: transport, clock, checkpoint hooks). Simulation,
 * the coordinator and a gateway's edge rounds all call this.
 */
import type { CompressionSpec } from '../core/compress-update.js';
import type { DpNoiseSource } from './dp-noise.js';
import { AsyncEngine } from './async-engine.js';
import { RoundEngine, type EngineOptions } from './round-engine.js';
import type { FedBuffSettings } from './run-rules.js';
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

/** Where the run happens: the transport, the model layout and start, and the hooks of its host. */
export type EngineEnvironment = Pick<
  EngineOptions,
  | 'layout'
  | 'transport'
  | 'initial'
  | 'centralEval'
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
