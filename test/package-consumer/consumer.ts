// A program outside the repository that uses edgefed only through its published entry points.
// test/package.test.ts installs the packed tarball beside it, type-checks it with tsc, compiles it and runs
// the JavaScript with plain node (no TypeScript loader): it defines a strategy through the public API,
// simulates 2 rounds with FedAvg and 2 with its own strategy, and prints what it got.
import { z } from 'zod';
import {
  defineStrategy,
  parsePartitionSpec,
  PER_UPDATE,
  registerStrategy,
  simulate,
  strategyNames,
  type CommonParams,
  type RoundRecord,
  type SimulationOptions,
} from 'edgefed';
import { Rng, weightedAverage } from 'edgefed/core';
import type { Kernels } from 'edgefed/browser';

/** The unweighted mean of the nodes' deltas, scaled by eta: test/support/scaled-mean-strategy.ts's rule. */
let fusions = 0;
const scaledMean = defineStrategy<CommonParams & { eta: number }>({
  name: 'consumer-mean',
  syntax: 'consumer-mean[:eta=1]',
  summary: 'unweighted mean delta scaled by eta, defined by a package consumer',
  params: z.object({ eta: z.number().gt(0).lte(10).default(1) }),
  capabilities: () => PER_UPDATE,
  create: (params) => ({
    aggregate(global, results) {
      fusions++;
      const out = new Float32Array(global);
      for (let i = 0; i < global.length; i++) {
        let sum = 0;
        for (const r of results) sum += r.vector[i] - global[i];
        out[i] = global[i] + (params.eta * sum) / results.length;
      }
      return out;
    },
  }),
});
registerStrategy(scaledMean);

const options: SimulationOptions = {
  nodes: 2,
  rounds: 2,
  limitTrain: 400,
  limitTest: 200,
  workers: 1,
  seed: 1,
  partition: 'iid',
  strategy: 'fedavg',
};
const rounds: RoundRecord[] = [];
const result = await simulate(options, (record) => rounds.push(record));
const own = await simulate({ ...options, strategy: 'consumer-mean:eta=0.5' });

// The pure entry point works on its own, and the browser entry's types resolve.
const average = weightedAverage([new Float32Array([1, 3]), new Float32Array([3, 5])], [1, 1]);
const kernelNames: (keyof Kernels)[] = ['gemm'];
console.log(
  JSON.stringify({
    rounds: rounds.map((r) => r.round),
    modelSha256: result.modelSha256,
    trainer: result.trainer,
    ownStrategy: { rounds: own.rounds.map((r) => r.round), fusions, modelSha256: own.modelSha256 },
    registered: strategyNames().includes('consumer-mean'),
    partition: parsePartitionSpec('dirichlet:0.5').kind,
    average: Array.from(average),
    random: new Rng(1).nextU32(),
    kernelNames,
  }),
);
