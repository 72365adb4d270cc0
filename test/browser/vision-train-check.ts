/**
 * What the vision browser test trains, the same code in Chromium and in Node: the GRU and the MobileNet-style
 * model, each a few full-batch steps on seeded synthetic data (stripes images, sign-of-sum sequences) through
 * EngineTrainer on the kernels given. Returns the training loss of every step (BatchNormalization in
 * training mode, as the step computes it). BROWSER-SAFE: imports nothing from Node or tfjs.
 */
import type { Kernels } from '../../src/nn/kernels.js';
import { EngineTrainer } from '../../src/model/engine-trainer.js';
import { builtinModel, initialWeights, tensorSpecs, type ModelSpec } from '../../src/model/spec.js';
import { Rng } from '../../src/core/rng.js';
import type { Dataset } from '../../src/data/types.js';

export interface VisionTrainCheck {
  kernels: string;
  gru: number[];
  mobilenet: number[];
}

export const CHECK_STEPS = 8;

/** Horizontal (0) or vertical (1) stripes with a random phase and noise: what global pooling can tell apart. */
function stripes(n: number, s: number, rng: Rng): Dataset {
  const x = new Float32Array(n * s * s);
  const y = Int32Array.from({ length: n }, (_, i) => i % 2);
  for (let b = 0; b < n; b++) {
    const phase = rng.uniform(0, 2 * Math.PI);
    for (let i = 0; i < s; i++)
      for (let j = 0; j < s; j++)
        x[(b * s + i) * s + j] =
          0.5 + 0.4 * Math.sin(phase + ((y[b] === 0 ? i : j) * Math.PI) / 2) + rng.uniform(-0.1, 0.1);
  }
  return { source: 'stripes', n, featureShape: [s, s, 1], x, y, numClasses: 2 };
}

/** Sequences of [steps, 2]: is the sum of the first feature positive? */
function sequences(n: number, steps: number, rng: Rng): Dataset {
  const x = Float32Array.from({ length: n * steps * 2 }, () => rng.uniform(-1, 1));
  const y = Int32Array.from({ length: n }, (_, b) => {
    let s = 0;
    for (let t = 0; t < steps; t++) s += x[(b * steps + t) * 2];
    return s > 0 ? 1 : 0;
  });
  return { source: 'sequences', n, featureShape: [steps, 2], x, y, numClasses: 2 };
}

async function lossPerStep(spec: ModelSpec, data: Dataset, kernels: Kernels, seed: number): Promise<number[]> {
  const trainer = new EngineTrainer(spec, kernels);
  let w = initialWeights(tensorSpecs(spec), new Rng(seed));
  const losses: number[] = [];
  for (let step = 0; step < CHECK_STEPS; step++) {
    const cfg = { epochs: 1, batchSize: data.n, optimizer: spec.optimizer, proxMu: 0, seed: seed + step };
    const r = await trainer.train(w, data, cfg);
    losses.push(r.metrics.loss);
    w = r.weights;
  }
  trainer.dispose();
  return losses;
}

export async function runVisionTrainCheck(kernels: Kernels): Promise<VisionTrainCheck> {
  const rng = new Rng(5);
  const gru = await lossPerStep(builtinModel('gru', [8, 2], 2), sequences(64, 8, rng.fork('gru')), kernels, 1);
  const mobile = builtinModel('mobilenet', [16, 16, 1], 2);
  const mobilenet = await lossPerStep(mobile, stripes(32, 16, rng.fork('mobilenet')), kernels, 2);
  return { kernels: kernels.name, gru, mobilenet };
}
