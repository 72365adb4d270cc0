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
export function simRoundSize(fields: FedBuffFields): number {
  return sampleCount(fields.nodes ?? 10, fields.fraction ?? 1, fields.minNodes ?? 1);
}

/** FedBuff's defaults: as many nodes training as a synchronous round samples, and K = min(10, that). */
export function fedBuffDefaults(fields: FedBuffFields): { concurrency: number; bufferSize: number } {
  const { concurrency, bufferSize } = fedBuffSettings(fields, simRoundSize(fields));
  return { concurrency, bufferSize };
}
