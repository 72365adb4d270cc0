/** The public strategy API: define one, register it, and the built-in definitions to wrap or reuse. */
export { defineStrategy, MEAN_DELTA, PER_UPDATE } from './define.js';
export type {
  CommonParams,
  EvalResult,
  Fusion,
  Restore,
  RoundContext,
  StrategyCapabilities,
  StrategyConfig,
  StrategyDefinition,
  TrainResult,
} from './define.js';
export { StrategyArgs } from './args.js';
export {
  BUILTIN_STRATEGY_NAMES,
  capabilitiesOf,
  minUpdates,
  parseStrategy,
  registerStrategy,
  strategiesWith,
  strategyDefinition,
  strategyHelp,
  strategyNames,
} from './registry.js';
export { fedadagrad, fedadam, fedavg, fedavgm, fedprox, fedyogi, meanDeltaFusion } from './fedavg.js';
export { fednova } from './fednova.js';
export { fedsgd } from './fedsgd.js';
export { differentialPrivacy, type DpParams } from './dp.js';
export { fedmedian } from './median.js';
export { fedtrimmedavg } from './trimmed-mean.js';
export { krum, multikrum } from './krum.js';
export { bulyan } from './bulyan.js';
export { scaffold } from './scaffold.js';
export { feddyn } from './feddyn.js';
export { ditto, fedper, fedrep } from './fedper.js';
export { Strategy, weightedMetrics } from '../strategy.js';
