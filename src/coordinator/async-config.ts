/** A deployed run's FedBuff settings (mode 'async'): the shared rule (engine/run-rules.ts) with its round size. */
import { fedBuffSettings, type FedBuffSettings } from '../engine/run-rules.js';

interface AsyncFields {
  minNodes?: number;
  bufferSize?: number;
  concurrency?: number;
  serverLr?: number;
}

/**
 * The population of a deployment is not known when a run is configured, so the round size FedBuff's default
 * concurrency follows is the fewest nodes a round asks, minNodes.
 */
export function asyncRoundSize(config: AsyncFields): number {
  return config.minNodes ?? 1;
}

export function asyncSettings(config: AsyncFields): FedBuffSettings {
  return fedBuffSettings(config, asyncRoundSize(config));
}
