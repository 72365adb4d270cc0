/**
 * How a deployed node uses k cores for its local training (`edgefed node --threads k`), chosen per model by rule:
 * - 'batches': ParallelEngineTrainer, each batch split over k threads (convolutional models on the engine with
 *   native or JS kernels, without dropout or BatchNormalization). On idle cores the McMahan CNN's epoch took 1.82x
 *   less time on 2 threads (bench/results/node-cores.md); OpenBLAS threads gave 1.22x.
 * - 'layers': TeamEngineTrainer, each step of a dense-only model (the seed MLP, the 2NN) split tensor-parallel over
 *   a team of k native threads meeting at spin barriers (native/dense-team.cc), at batch sizes from 32 (smaller
 *   batches train on one thread: TEAM_MIN_ROWS). A dense step at B = 10..32 lasts only 0.1-0.25 ms: JS worker
 *   threads (batch split: MLP 0.53-0.85x, 2NN 0.50-0.58x on idle cores) and OpenBLAS's own threads (0.73-0.76x)
 *   spent more meeting than they saved. On idle cores the team gave the seed MLP's epoch (Adam, B=32) 1.09-1.2x on
 *   2 threads, not the 1.6x sought (its compute bound, 1.18x, says the split work itself does not halve); the 2NN at
 *   B=10 was 0.75-0.85x on the team, so it stays on one thread (bench/results/node-cores.md).
 * - 'blas': OpenBLAS splits each gemm over k threads (native kernels): convolutional models the batch split refuses.
 * - 'one': one thread: k = 1, tfjs, WASM kernels, dense-only models without the native addon, and conv1d or
 *   recurrent models (not measured).
 * The rule, not a timing, decides, because the split decides the result's bits: a node gives the same model for the
 * same k and seed on any day. k = 1 is today's EngineTrainer, bit for bit. NODE-ONLY.
 */
import { makeTrainer } from './make-trainer.js';
import { asDenseNet, engineUnsupportedReason, type ModelSpec } from './spec.js';
import { TEAM_MIN_ROWS, TeamEngineTrainer, teamUnsupportedReason } from './team-trainer.js';
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
    if (team === null)
      return {
        split: 'layers',
        reason: `each dense step split over a team of ${threads} threads (batches of ${TEAM_MIN_ROWS} or more)`,
      };
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
