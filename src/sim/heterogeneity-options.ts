/** FedBuff's defaults in a simulation: the shared rule (engine/run-rules.ts) with the run's round size. */
import { sampleCount } from '../core/sampling.js';
import { fedBuffSettings } from '../engine/run-rules.js';

interface FedBuffFields {
  nodes?: number;
  fraction?: number;
  minNodes?: number;
  bufferSize?: number;
  concurrency?: number;
}

/** The nodes a synchronous round of this simulation asks: FedBuff's default concurrency. */
export function simRoundSize(o: FedBuffFields): number {
  return sampleCount(o.nodes ?? 10, o.fraction ?? 1, o.minNodes ?? 1);
}

/** FedBuff's defaults: as many nodes training as a synchronous round samples, and K = min(10, that). */
export function fedBuffDefaults(o: FedBuffFields): { concurrency: number; bufferSize: number } {
  const { concurrency, bufferSize } = fedBuffSettings(o, simRoundSize(o));
  return { concurrency, bufferSize };
}
