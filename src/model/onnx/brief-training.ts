/**
 * For the ONNX export tests (node and browser): a model trained for a few steps on the engine, so the
 * exported weights (and batch-norm statistics, int8 ranges) are those of a real model, not of its
 * initialisation, while the tests stay quick.
 */
import { Rng } from '../../core/rng.js';
import type { Dataset } from '../../data/types.js';
import { getKernels } from '../../nn/kernels-select.js';
import { EngineTrainer } from '../engine-trainer.js';
import { initialWeights, tensorSpecs, type ModelSpec } from '../spec.js';

/** One epoch of the model's optimizer in batches of 32 from seeded initial weights; returns the weights. */
export async function trainBriefly(spec: ModelSpec, data: Dataset, seed = 2): Promise<Float32Array> {
  const trainer = new EngineTrainer(spec, getKernels());
  const { weights } = await trainer.train(initialWeights(tensorSpecs(spec), new Rng(seed)), data, {
    epochs: 1,
    batchSize: 32,
    optimizer: spec.optimizer,
    proxMu: 0,
    seed: 1,
  });
  return weights;
}
