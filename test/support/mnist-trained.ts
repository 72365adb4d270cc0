/** A built-in model briefly trained on the first MNIST training images (seeded): a real float model to quantise. */
import { builtinModel, initialWeights, tensorSpecs, type BuiltinModel, type ModelSpec } from '../../src/model/spec.js';
import { EngineTrainer } from '../../src/model/engine-trainer.js';
import { getKernels } from '../../src/nn/kernels-select.js';
import { loadMnist } from '../../src/data/mnist.js';
import { subset } from '../../src/data/types.js';
import { Rng } from '../../src/core/rng.js';

/** One epoch of Adam (lr 0.001, batch 32) on the first `n` training images; the trainer stays open for predict. */
export async function trainedMnistModel(
  name: BuiltinModel,
  n: number,
): Promise<{ spec: ModelSpec; weights: Float32Array; trainer: EngineTrainer }> {
  const spec = builtinModel(name, [28, 28, 1], 10);
  const trainer = new EngineTrainer(spec, getKernels());
  const train = subset(
    loadMnist().train,
    Array.from({ length: n }, (_, i) => i),
  );
  const { weights } = await trainer.train(initialWeights(tensorSpecs(spec), new Rng(1)), train, {
    epochs: 1,
    batchSize: 32,
    optimizer: { name: 'adam', lr: 0.001 },
    proxMu: 0,
    seed: 2,
  });
  return { spec, weights, trainer };
}
