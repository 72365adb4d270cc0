/**
 * Where a simulated round's time goes: 10 nodes, the seed MLP on MNIST, FedAvg. Compares the round's wall
 * time with the time the nodes spend in local training (measured in this process on the same node data
 * with the same trainer), so the rest is overhead: encoding, transfer between threads, fusion, evaluation.
 * Usage: node --import tsx bench/round-split.ts [--rounds 3]
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

const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1]) || 3;
const nodes = 10;
const seed = 1;
const workers = Math.min(availableParallelism(), nodes);

const sim = await runSimulation({ nodes, rounds, seed, evalFraction: 0, workers });
// Round 1 includes worker start-up and lazy data set-up; the steady state is what a long run sees.
const steady = sim.rounds.slice(1);
const roundSeconds = steady.reduce((a, r) => a + r.seconds, 0) / steady.length;

// The same local training, timed directly: every node's round-2 job, one after another.
const train = loadMnist().train;
const parts = partition(parsePartitionSpec('iid'), { labels: train.y, numClasses: 10 }, nodes, new Rng(seed).fork('partition'));
const spec = builtinModel('mlp', [28, 28, 1], 10);
const trainer = await makeTrainer(spec);
const w = initialWeights(tensorSpecs(spec), new Rng(seed).fork('init'));
let trainSum = 0;
for (let node = 0; node < nodes; node++) {
  const local = localData(train, parts[node], node, 0.2, seed);
  const t = performance.now();
  await trainer.train(w, local.train, { epochs: 1, batchSize: 32, optimizer: spec.optimizer, proxMu: 0, seed: RoundEngine.nodeSeed(seed, 2, node) });
  trainSum += (performance.now() - t) / 1000;
}
const trainingPerRound = trainSum / workers; // nodes spread over the workers
const share = Math.min(1, trainingPerRound / roundSeconds);
const result = {
  nodes, workers, rounds, trainer: sim.trainer,
  round_seconds_steady: +roundSeconds.toFixed(3),
  training_seconds_per_round: +trainingPerRound.toFixed(3),
  training_share: +share.toFixed(3),
  overhead_seconds_per_round: +(roundSeconds - trainingPerRound).toFixed(3),
  bytes_per_round: steady[0]?.bytesSent + steady[0]?.bytesReceived,
  round_seconds: sim.rounds.map((r) => +r.seconds.toFixed(3)),
  date: new Date().toISOString(), node: process.version,
};
console.log(JSON.stringify(result));
console.log(`a round of ${nodes} nodes: ${roundSeconds.toFixed(3)} s; local training ${trainingPerRound.toFixed(3)} s (${(share * 100).toFixed(0)}%), overhead ${(roundSeconds - trainingPerRound).toFixed(3)} s`);
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/round-split.json', JSON.stringify(result, null, 2) + '\n');
