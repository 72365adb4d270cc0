/**
 * `--threads` for a deployed node: OpenBLAS threads for its local training. One (the default) keeps results
 * independent of the device; k threads give results deterministic for that k (OpenBLAS splits C among its
 * threads, each element summed by one thread) and speed up gemm on an otherwise idle device.
 */
import { availableParallelism } from 'node:os';
import { InvalidArgumentError } from 'commander';
import { loadNativeKernels, setNativeBlasThreads } from '../nn/kernels-native.js';

export function blasThreadsArg(text: string): number {
  if (text === 'all') return availableParallelism();
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 1024)
    throw new InvalidArgumentError(`expected a whole number from 1 to 1024 or 'all', got '${text}'`);
  return n;
}

/** Applies the thread count when the native kernels run; other kernels are single-threaded. */
export function useBlasThreads(threads: number): void {
  if (threads > 1 && loadNativeKernels()) setNativeBlasThreads(threads);
}
