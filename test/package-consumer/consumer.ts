// A program outside the repository that uses edgefed only through its published entry points.
// test/package.test.ts installs the packed tarball beside it, type-checks it with tsc, compiles it and runs
// the JavaScript with plain node (no TypeScript loader): it simulates 2 rounds and prints what it got.
import { parsePartitionSpec, simulate, STRATEGY_NAMES, type SimulationOptions, type RoundRecord } from 'edgefed';
import { Rng, weightedAverage } from 'edgefed/core';
import type { Kernels } from 'edgefed/browser';

const options: SimulationOptions = {
  nodes: 2, rounds: 2, limitTrain: 400, limitTest: 200, workers: 1, seed: 1, partition: 'iid', strategy: 'fedavg',
};
const rounds: RoundRecord[] = [];
const result = await simulate(options, (record) => rounds.push(record));

// The pure entry point works on its own, and the browser entry's types resolve.
const average = weightedAverage([new Float32Array([1, 3]), new Float32Array([3, 5])], [1, 1]);
const kernelNames: (keyof Kernels)[] = ['gemm'];
console.log(JSON.stringify({
  rounds: rounds.map((r) => r.round),
  modelSha256: result.modelSha256,
  trainer: result.trainer,
  strategies: STRATEGY_NAMES.length,
  partition: parsePartitionSpec('dirichlet:0.5').kind,
  average: Array.from(average),
  random: new Rng(1).nextU32(),
  kernelNames,
}));
