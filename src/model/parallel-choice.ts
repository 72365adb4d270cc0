/**
 * How a deployed node uses k cores for its local training (`edgefed node --threads k`), chosen per model by rule:
 * - 'batches': ParallelEngineTrainer, each batch split over k threads (convolutional models on the engine with
 *   native or JS kernels, without dropout or BatchNormalization). On idle cores the McMahan CNN's epoch took 1.81x
 *   less time on 2 threads (bench/results/node-cores.md); OpenBLAS threads gave 1.13x.
 * - 'layers': TeamEngineTrainer, each step of a dense-only model (the seed MLP, the 2NN) split tensor-parallel over
 *   a team of k native threads meeting at spin barriers (native/dense-team.cc). A dense step at B = 10..32 lasts
 *   only 0.1-0.25 ms: JS worker threads (batch split: MLP 0.61-0.68x, 2NN 0.52-0.67x on idle cores) and OpenBLAS's
 *   own threads (0.76x) spent more meeting than they saved; the native team meets in a few atomics. Not yet timed
 *   on idle cores: on the shared 2-core machine at load 5-12, MLP epoch 0.72-1.39x wall, busiest thread 1.29-1.55x;
 *   2NN 0.55-0.60x wall, busiest thread 1.06-1.11x (bench/node-cores.ts); rerun there on idle cores.
 * - 'blas': OpenBLAS splits each gemm over k threads (native kernels): convolutional models the batch split refuses.
 * - 'one': one thread: k = 1, tfjs, WASM kernels, dense-only models without the native addon, and conv1d or
 *   recurrent models (not measured).
 * The rule, not a timing, decides, because the split decides the result's bits: a node gives the same model for the
 * same k and seed on any day. k = 1 is today's EngineTrainer, bit for bit. NODE-ONLY.
 */
import { makeTrainer } from './make-trainer.js';
import { asDenseNet, engineUnsupportedReason, type ModelSpec } from './spec.js';
import { TeamEngineTrainer, teamUnsupportedReason } from './team-trainer.js';
import type { LocalTrainer } from './trainer.js';
import { ParallelEngineTrainer, parallelUnsupportedReason } from './parallel-trainer.js';
import { selectKernels } from '../nn/kernels-select.js';
import { loadNativeKernels, setNativeBlasThreads } from '../nn/kernels-native.js';
import type { Kernels } from '../nn/kernels.js';

export type ThreadSplit = 'batches' | 'layers' | 'blas' | 'one';

/** The split `threads` threads get for `spec` on `kernels` (null kernels: the model runs on tfjs), and why. */
export function chooseThreadSplit(
  spec: ModelSpec,
  kernels: Kernels | null,
  threads: number,
): { split: ThreadSplit; reason: string } {
  if (threads <= 1) return { split: 'one', reason: 'one thread asked for' };
  const engine = kernels ? engineUnsupportedReason(spec) : 'no engine kernels';
  if (engine !== null) return { split: 'one', reason: `the model trains on tfjs (${engine})` };
  if (!hasConvolution(spec)) {
    // Dense-only models share each step natively; conv1d and recurrent models were not measured.
    if (asDenseNet(spec) === null) return { split: 'one', reason: 'no 2-D convolution and not dense-only' };
    const team = teamUnsupportedReason(spec, kernels!);
    if (team === null) return { split: 'layers', reason: `each dense step split over a team of ${threads} threads` };
    return { split: 'one', reason: `dense-only, but ${team}` };
  }
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
 * OpenBLAS threads to match (1 under 'batches' and 'layers', which must not nest BLAS threads in their own; k under
 * 'blas').
 */
export async function makeNodeTrainer(spec: ModelSpec): Promise<LocalTrainer> {
  const threads = nodeThreads;
  if (threads === 1) return makeTrainer(spec);
  const kernels = engineUnsupportedReason(spec) === null ? await selectKernels() : null;
  const { split } = chooseThreadSplit(spec, kernels, threads);
  if (loadNativeKernels()) setNativeBlasThreads(split === 'blas' ? threads : 1);
  if (split === 'batches') return ParallelEngineTrainer.create(spec, kernels!, threads);
  if (split === 'layers') return new TeamEngineTrainer(spec, kernels!, threads);
  return makeTrainer(spec);
}
