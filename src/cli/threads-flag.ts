/**
 * `--threads` for a deployed node: the threads of its local training. One (the default) keeps results independent
 * of the device; k threads split each batch over k threads (or, for models that cannot be split so, each gemm over
 * k OpenBLAS threads: src/model/parallel-choice.ts), giving results deterministic for that k.
 */
import { availableParallelism } from 'node:os';
import { InvalidArgumentError } from 'commander';
import { setNodeTrainingThreads } from '../model/parallel-choice.js';

export function blasThreadsArg(text: string): number {
  if (text === 'all') return availableParallelism();
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 1024)
    throw new InvalidArgumentError(`expected a whole number from 1 to 1024 or 'all', got '${text}'`);
  return n;
}

/** Makes the node's later trainers use `threads` threads (see parallel-choice.ts for how they split the work). */
export function useTrainingThreads(threads: number): void {
  setNodeTrainingThreads(threads);
}
