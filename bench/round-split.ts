/**
 * Where a simulated round's time goes: 10 nodes, the seed MLP on MNIST, FedAvg. Compares the round with the
 * time the nodes spend in local training (measured in this process on the same node data with the same
 * trainer), so the rest is overhead: encoding, transfer between threads, fusion, central evaluation.
 * Two measures: wall time (what a user waits; noisy on a shared machine) and CPU time of the whole process,
 * all threads (robust to other load): CPU spent per round vs CPU spent in local training.
 * Usage: node --import tsx bench/round-split.ts [--rounds 8]
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { runSimulation } from '../src/sim/simulate.js';
import { loadMnist } from '../src/data/mnist.js';
import { partition, parsePartitionSpec } from '../src/core/partition.js';
import { Rng } from '../src/core/rng.js';
import { builtinModel, initialWeights, tensorSpecs } from '../src/model/spec.js';
import { makeTrainer } from '../src/model/make-trainer.js';
import { localData } from '../src/sim/sim-host.js';
import { RoundEngine } from '../src/engine/round-engine.js';
import { printEnvironment } from './support/results-io.js';

const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1]) || 8;
const nodes = 10;
const seed = 1;
const workers = Math.min(availableParallelism(), nodes);

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const cpuSeconds = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
};
// CPU of the whole process (coordinator thread and worker threads) at the end of each round.
const cpuAtRound: number[] = [];
const sim = await runSimulation({ nodes, rounds, seed, evalFraction: 0, workers }, () => {
  cpuAtRound.push(cpuSeconds());
});
// Round 1 includes worker start-up and lazy data set-up; the steady state is what a long run sees.
const steady = sim.rounds.slice(1);
const roundSeconds = median(steady.map((r) => r.seconds));
const roundCpu = median(cpuAtRound.slice(1).map((c, i) => c - cpuAtRound[i]));

// The same local training, timed directly: every node's round-2 job, one after another.
const train = loadMnist().train;
const parts = partition(
  parsePartitionSpec('iid'),
  { labels: train.y, numClasses: 10 },
  nodes,
  new Rng(seed).fork('partition'),
);
const spec = builtinModel('mlp', [28, 28, 1], 10);
const trainer = await makeTrainer(spec);
const w = initialWeights(tensorSpecs(spec), new Rng(seed).fork('init'));
let trainSum = 0;
let trainCpu = 0;
for (let node = 0; node < nodes; node++) {
  const local = localData(train, parts[node], node, 0.2, seed);
  const t = performance.now();
  const c = cpuSeconds();
  await trainer.train(w, local.train, {
    epochs: 1,
    batchSize: 32,
    optimizer: spec.optimizer,
    proxMu: 0,
    seed: RoundEngine.nodeSeed(seed, 2, node),
  });
  trainCpu += cpuSeconds() - c;
  trainSum += (performance.now() - t) / 1000;
}
const trainingPerRound = trainSum / workers; // nodes spread over the workers
const share = Math.min(1, trainingPerRound / roundSeconds);
const cpuShare = Math.min(1, trainCpu / roundCpu);
const result = {
  nodes,
  workers,
  rounds,
  trainer: sim.trainer,
  round_seconds_median: +roundSeconds.toFixed(3),
  training_seconds_per_round: +trainingPerRound.toFixed(3),
  training_share_wall: +share.toFixed(3),
  overhead_seconds_per_round: +(roundSeconds - trainingPerRound).toFixed(3),
  round_cpu_seconds_median: +roundCpu.toFixed(3),
  training_cpu_seconds_per_round: +trainCpu.toFixed(3),
  training_share_cpu: +cpuShare.toFixed(3),
  bytes_per_round: steady[0]?.bytesSent + steady[0]?.bytesReceived,
  round_seconds: sim.rounds.map((r) => +r.seconds.toFixed(3)),
  date: new Date().toISOString(),
  node: process.version,
};
console.log(JSON.stringify(result));
printEnvironment('round-split');
console.log(
  `a round of ${nodes} nodes (median of ${steady.length}): ${roundSeconds.toFixed(3)} s wall, local training ${trainingPerRound.toFixed(3)} s (${(share * 100).toFixed(0)}%); ` +
    `${roundCpu.toFixed(3)} CPU-s, local training ${trainCpu.toFixed(3)} CPU-s (${(cpuShare * 100).toFixed(0)}%)`,
);
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/round-split.json', JSON.stringify(result, null, 2) + '\n');
