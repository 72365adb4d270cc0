/** A small separable problem and hosted nodes for engine tests: fast, real training, no MNIST. */
import { Rng } from '../../src/core/rng.js';
import { makeLayout } from '../../src/core/params.js';
import { asDenseNet, builtinModel, initialWeights, tensorSpecs } from '../../src/model/spec.js';
import { EngineTrainer } from '../../src/model/engine-trainer.js';
import { jsKernels } from '../../src/nn/kernels-js.js';
import { NodeHost, type LocalData } from '../../src/node/host.js';
import { DirectTransport } from '../../src/sim/direct.js';
import type { Dataset } from '../../src/data/types.js';
import { RoundEngine } from '../../src/engine/round-engine.js';
import type { Strategy } from '../../src/engine/strategy.js';
import type { Transport } from '../../src/engine/transport.js';
import type { EvalOutcome } from '../../src/model/trainer.js';

/** A 2-class problem: class = x0 + x1 > 0, four standard-normal features. */
export function blobs(n: number, seed: number): Dataset {
  const rng = new Rng(seed);
  const x = new Float32Array(n * 4);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < 4; j++) x[i * 4 + j] = rng.normal();
    y[i] = x[i * 4] + x[i * 4 + 1] > 0 ? 1 : 0;
  }
  return { source: `blobs${seed}`, n, featureShape: [4], x, y, numClasses: 2 };
}

export const toySpec = builtinModel('mlp', [4], 2);
export const toyLayout = makeLayout(tensorSpecs(toySpec));
export const emptyData = (d: Dataset): Dataset => ({ ...d, n: 0, x: new Float32Array(0), y: new Int32Array(0) });

/** k nodes with 200 training and 50 validation examples each. */
export function healthyNodes(k: number): Map<number, LocalData> {
  return new Map(Array.from({ length: k }, (_, i) => [i, { train: blobs(200, i), validation: blobs(50, 100 + i) }]));
}

/** Nodes hosted in this thread, a trainer for central evaluation, a test set and the seeded initial model. */
export function toyFederation(nodes: Map<number, LocalData>, ids: number[]) {
  const trainer = new EngineTrainer(asDenseNet(toySpec)!, jsKernels);
  const transport = new DirectTransport(new NodeHost(toyLayout, trainer, nodes), ids);
  const test = blobs(400, 99);
  return {
    trainer,
    transport,
    initial: initialWeights(tensorSpecs(toySpec), new Rng(7)),
    centralEval: (w: Float32Array) => trainer.evaluate(w, test),
  };
}

/** Two rounds of the toy federation over `transport` (every node, SGD, seed 3): the final model's bytes. */
export async function twoToyRounds(
  strategy: Strategy,
  transport: Transport,
  initial: Float32Array,
  centralEval: (w: Float32Array) => Promise<EvalOutcome>,
): Promise<Buffer> {
  const result = await new RoundEngine({
    layout: toyLayout,
    strategy,
    transport,
    initial,
    seed: 3,
    rounds: 2,
    fraction: 1,
    minNodes: 1,
    evalFraction: 0,
    local: { epochs: 1, batchSize: 16, optimizer: { name: 'sgd', lr: 0.1 } },
    centralEval,
  }).run();
  return Buffer.from(result.weights.buffer);
}
