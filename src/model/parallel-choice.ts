/**
 * How a deployed node uses k cores for its local training (`edgefed node --threads k`), chosen per model by rule:
 * - 'batches': ParallelEngineTrainer, each batch split over k threads (convolutional models on the engine with
 *   native or JS kernels, without dropout or BatchNormalization). On idle cores the McMahan CNN's epoch took 1.81x
 *   less time on 2 threads (bench/results/node-cores.md); OpenBLAS threads gave 1.13x.
 * - 'blas': OpenBLAS splits each gemm over k threads (native kernels): convolutional models the batch split refuses.
 * - 'one': one thread: k = 1, tfjs, WASM kernels, and dense-only models (the seed MLP, the 2NN). A dense step at
 *   B = 10..32 (0.15-0.25 ms) is shorter than what k threads spend meeting each step: on idle cores both splits
 *   made their epoch slower (MLP 0.61-0.68x, 2NN 0.52-0.67x), so the extra cores are left to the device.
 * The rule, not a timing, decides, because the split decides the result's bits: a node gives the same model for the
 * same k and seed on any day. k = 1 is today's EngineTrainer, bit for bit. NODE-ONLY.
 */
import { makeTrainer } from './make-trainer.js';
import { engineUnsupportedReason, type ModelSpec } from './spec.js';
import type { LocalTrainer } from './trainer.js';
import { ParallelEngineTrainer, parallelUnsupportedReason } from './parallel-trainer.js';
import { selectKernels } from '../nn/kernels-select.js';
import { loadNativeKernels, setNativeBlasThreads } from '../nn/kernels-native.js';
import type { Kernels } from '../nn/kernels.js';

export type ThreadSplit = 'batches' | 'blas' | 'one';

/** The split `threads` threads get for `spec` on `kernels` (null kernels: the model runs on tfjs), and why. */
export function chooseThreadSplit(
  spec: ModelSpec,
  kernels: Kernels | null,
  threads: number,
): { split: ThreadSplit; reason: string } {
  if (threads <= 1) return { split: 'one', reason: 'one thread asked for' };
  const engine = kernels ? engineUnsupportedReason(spec) : 'no engine kernels';
  if (engine !== null) return { split: 'one', reason: `the model trains on tfjs (${engine})` };
  // Measured for the MLP and the 2NN (slower on two threads) and the CNN (faster); conv1d and recurrent models
  // were not measured and stay on one thread with the dense ones.
  if (!hasConvolution(spec))
    return {
      split: 'one',
      reason: 'no 2-D convolution: steps this short are not worth sharing (bench/results/node-cores.md)',
    };
  const refused = parallelUnsupportedReason(spec, kernels!);
  if (refused === null) return { split: 'batches', reason: `each batch split over ${threads} threads` };
  if (kernels!.name === 'native-openblas')
    return { split: 'blas', reason: `OpenBLAS splits each gemm over ${threads} threads (${refused})` };
  return { split: 'one', reason: refused };
}

const CONVOLUTIONS = new Set(['conv2d', 'depthwiseconv2d', 'separableconv2d']);

function hasConvolution(spec: ModelSpec): boolean {
  return spec.layers.some((l) => CONVOLUTIONS.has(l.type));
}

let nodeThreads = 1;

/** Sets the threads every later makeNodeTrainer uses (edgefed node --threads). */
export function setNodeTrainingThreads(threads: number): void {
  if (!(Number.isInteger(threads) && threads >= 1 && threads <= 1024))
    throw new RangeError(`training threads must be a whole number from 1 to 1024, got ${String(threads)}`);
  nodeThreads = threads;
}

/** The threads set by setNodeTrainingThreads (1 unless set). */
export function nodeTrainingThreads(): number {
  return nodeThreads;
}

/**
 * A trainer for `spec` on this node's configured threads, split as chooseThreadSplit says. Sets the process's
 * OpenBLAS threads to match (1 under 'batches', which must not nest BLAS threads in its own; k under 'blas').
 */
export async function makeNodeTrainer(spec: ModelSpec): Promise<LocalTrainer> {
  const threads = nodeThreads;
  if (threads === 1) return makeTrainer(spec);
  const kernels = engineUnsupportedReason(spec) === null ? await selectKernels() : null;
  const { split } = chooseThreadSplit(spec, kernels, threads);
  if (loadNativeKernels()) setNativeBlasThreads(split === 'blas' ? threads : 1);
  if (split === 'batches') return ParallelEngineTrainer.create(spec, kernels!, threads);
  return makeTrainer(spec);
}
