/**
 * Compact vision models under feature shift: the MobileNet-style model ('mobilenet': depthwise-separable
 * blocks with BatchNormalization) against McMahan's CNN ('cnn') on Fashion-MNIST, each node's images through
 * its own seeded contrast / brightness / rotation (core/feature-shift.ts), federated with FedAvg and, for the
 * model with BatchNormalization, FedBN. Reports per-node accuracy of the global model on each node's own
 * (shifted) validation images, FedBN's personalised accuracy, and local training throughput (samples/s) of each
 * model measured in the same run (the ratio mobilenet / cnn is the comparable figure on a shared machine).
 * Nodes are hosted in this process (RoundEngine + NodeHost, the simulation's round engine, one thread).
 *
 * The default is a REDUCED setting for a shared 2-core machine (4 nodes x 250 images, 3 rounds of 3 local
 * epochs); `--full` runs 10 nodes x 1,000 images (+ 300 validation each), 20 rounds of 1 epoch. Flags override.
 *
 *   npm run bench:vision [-- --full] [--nodes N] [--per-node N] [--rounds R] [--epochs E] [--seed S] [--no-write]
 */
import { parseArgs } from 'node:util';
import { join, relative, resolve } from 'node:path';
import { loadFashionMnist } from '../src/data/fashion-mnist.js';
import { subset, type Dataset } from '../src/data/types.js';
import { nodeShifts, parseFeatureShift, shiftImages } from '../src/core/feature-shift.js';
import { makeLayout } from '../src/core/params.js';
import { Rng } from '../src/core/rng.js';
import { builtinModel, initialWeights, tensorSpecs, type ModelSpec } from '../src/model/spec.js';
import { EngineTrainer } from '../src/model/engine-trainer.js';
import { selectKernels } from '../src/nn/kernels-select.js';
import { NodeHost, type LocalData } from '../src/node/host.js';
import { DirectTransport } from '../src/sim/direct.js';
import { RoundEngine } from '../src/engine/round-engine.js';
import { Strategy, parseStrategy } from '../src/engine/strategy.js';
import { environmentLines, machine, numberFlag, printEnvironment, REPO, writeAtomic } from './support/results-io.js';

const SHIFT = 'feature-shift:contrast=0.6,brightness=0.25,rotate=25';
const started = performance.now();
const { values } = parseArgs({
  options: {
    full: { type: 'boolean', default: false },
    nodes: { type: 'string' },
    'per-node': { type: 'string' },
    rounds: { type: 'string' },
    epochs: { type: 'string' },
    seed: { type: 'string', default: '1' },
    'results-dir': { type: 'string', default: join(REPO, 'bench', 'results') },
    'no-write': { type: 'boolean', default: false },
  },
});
const whole = (name: string, text: string | undefined, dflt: number) =>
  text === undefined ? dflt : numberFlag(name, text, (v) => Number.isInteger(v) && v >= 1, 'a whole number >= 1');
const full = values.full;
const nodes = whole('nodes', values.nodes, full ? 10 : 4);
const perNode = whole('per-node', values['per-node'], full ? 1000 : 250);
const rounds = whole('rounds', values.rounds, full ? 20 : 3);
const seed = whole('seed', values.seed, 1);
const validationPerNode = Math.max(50, Math.round(perNode * 0.3));
// Reduced: 3 local epochs, so a BatchNorm model's moving statistics catch up within the few rounds run.
const local = { epochs: whole('epochs', values.epochs, full ? 1 : 3), batchSize: 32 };

const kernels = await selectKernels();
printEnvironment('vision-bench');
const setting = `${full ? 'FULL' : 'REDUCED'} setting: ${nodes} nodes x ${perNode} train + ${validationPerNode} validation images, ${rounds} rounds, ${local.epochs} local epoch(s), batch ${local.batchSize}, ${SHIFT}, seed ${seed}`;
process.stderr.write(`vision-bench: ${setting}\n`);

const data = loadFashionMnist();
const shifts = nodeShifts(parseFeatureShift(SHIFT), nodes, new Rng(seed).fork('feature-shift'));
const shifted = (d: Dataset, from: number, n: number, node: number): Dataset => {
  const part = subset(
    d,
    Array.from({ length: n }, (_, i) => from + i),
    `${d.source}#node${node}`,
  );
  return { ...part, x: shiftImages(part.x, n, 28, 28, 1, shifts[node]) };
};
if (nodes * perNode > data.train.n || nodes * validationPerNode > data.test.n)
  throw new Error(`--nodes x --per-node asks for more images than Fashion-MNIST has`);
// Disjoint IID shares (the interleaved order balances classes); validation from the test split.
const nodeData = new Map<number, LocalData>(
  Array.from({ length: nodes }, (_, i) => [
    i,
    {
      train: shifted(data.train, i * perNode, perNode, i),
      validation: shifted(data.test, i * validationPerNode, validationPerNode, i),
    },
  ]),
);

interface Row {
  model: string;
  strategy: string;
  params: number;
  federated_accuracy: number;
  personalised_accuracy: number | null;
  per_round: { round: number; federated_accuracy: number; personalised_accuracy: number | null }[];
  samples_per_s: number;
  seconds: number;
}

/** Local training throughput: one epoch of node 0's share, after a warm-up batch. */
async function throughput(spec: ModelSpec, w: Float32Array): Promise<number> {
  const trainer = new EngineTrainer(spec, kernels);
  const train = nodeData.get(0)!.train;
  const cfg = { epochs: 1, batchSize: local.batchSize, optimizer: spec.optimizer, proxMu: 0, seed };
  await trainer.train(w, train, { ...cfg, maxSteps: 1 });
  const t0 = performance.now();
  await trainer.train(w, train, cfg);
  return Math.round((train.n / ((performance.now() - t0) / 1000)) * 10) / 10;
}

async function run(model: 'mobilenet' | 'cnn', strategy: string): Promise<Row> {
  const t0 = performance.now();
  const spec = builtinModel(model, [28, 28, 1], 10);
  const tensors = tensorSpecs(spec);
  const layout = makeLayout(tensors);
  const initial = initialWeights(tensors, new Rng(seed).fork('init'));
  const trainer = new EngineTrainer(spec, kernels);
  const engine = new RoundEngine({
    layout,
    strategy: new Strategy(parseStrategy(strategy)),
    transport: new DirectTransport(new NodeHost(layout, trainer, nodeData), [...nodeData.keys()]),
    initial,
    seed,
    rounds,
    fraction: 1,
    minNodes: 1,
    evalFraction: 1,
    local: { ...local, optimizer: spec.optimizer },
  });
  const r = await engine.run();
  const perRound = r.rounds.map((x) => ({
    round: x.round,
    federated_accuracy: x.federatedAccuracy,
    personalised_accuracy: x.personalizedAccuracyMean ?? null,
  }));
  const last = perRound.at(-1)!;
  const row: Row = {
    model,
    strategy,
    params: initial.length,
    federated_accuracy: last.federated_accuracy,
    personalised_accuracy: last.personalised_accuracy,
    per_round: perRound,
    samples_per_s: await throughput(spec, initial),
    seconds: Math.round(performance.now() - t0) / 1000,
  };
  process.stderr.write(
    `vision-bench: ${model} ${strategy}: per-node accuracy of the global model ${row.federated_accuracy.toFixed(4)}` +
      `${row.personalised_accuracy === null ? '' : `, personalised ${row.personalised_accuracy.toFixed(4)}`}, ` +
      `${row.samples_per_s} samples/s local training (${row.seconds} s)\n`,
  );
  return row;
}

const rows: Row[] = [];
rows.push(await run('cnn', 'fedavg'));
rows.push(await run('mobilenet', 'fedavg'));
rows.push(await run('mobilenet', 'fedbn'));
const cnnRate = rows[0].samples_per_s;
const pct = (v: number | null) => (v === null ? 'n/a' : `${(v * 100).toFixed(1)}%`);
const table = [
  '| Model | Strategy | Parameters | Global model, per-node accuracy | Personalised accuracy | samples/s (local training) | vs cnn |',
  '|---|---|---:|---:|---:|---:|---:|',
  ...rows.map(
    (r) =>
      `| ${r.model} | ${r.strategy} | ${r.params.toLocaleString('en-US')} | ${pct(r.federated_accuracy)} | ` +
      `${pct(r.personalised_accuracy)} | ${r.samples_per_s} | ${(r.samples_per_s / cnnRate).toFixed(2)}x |`,
  ),
].join('\n');
const m = machine(1);
const report = {
  bench: 'vision',
  setting: full ? 'full' : 'reduced',
  nodes,
  per_node: perNode,
  validation_per_node: validationPerNode,
  rounds,
  local,
  feature_shift: SHIFT,
  node_shifts: shifts,
  seed,
  kernels: kernels.name,
  results: rows,
  machine: m,
  finished_at: new Date().toISOString(),
  total_seconds: Math.round(performance.now() - started) / 1000,
};
process.stdout.write(`${table}\n`);
if (!values['no-write']) {
  const dir = resolve(values['results-dir']);
  writeAtomic(join(dir, 'vision.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeAtomic(
    join(dir, 'vision.md'),
    [
      '# Compact vision models under feature shift (Fashion-MNIST)',
      '',
      `${setting}. Each node's images (train and validation) go through its own seeded contrast, brightness and ` +
        'rotation; nodes hold disjoint IID shares, so the only non-IID-ness is the feature shift. "Global model, ' +
        'per-node accuracy" is the fused model on each node\'s own shifted validation images (example-weighted); ' +
        '"personalised" is FedBN\'s node models (the global model with the node\'s own BatchNormalization layers). ' +
        "McMahan's CNN has no BatchNormalization, so FedBN does not apply to it (the run rules refuse it). " +
        "FedBN's global model keeps the initial BatchNormalization layers (nodes never upload theirs), so its global accuracy is not meaningful: its figure is the personalised one. " +
        "samples/s: one local epoch of node 0's share on the engine; compare the ratio, not the absolute figure.",
      '',
      ...(full
        ? []
        : [
            '**Reduced setting** (the machine is shared by several developers): a few rounds on small shares, so the ' +
              'accuracies are far from converged; the full setting is `npm run bench:vision -- --full`.',
            '',
          ]),
      table,
      '',
      `Wall time ${report.total_seconds} s. Environment:`,
      '',
      ...environmentLines(m).map((l) => `- ${l}`),
      '',
      'Reproduce: `npm run bench:vision` (reduced) or `npm run bench:vision -- --full`.',
      '',
    ].join('\n'),
  );
  process.stderr.write(`vision-bench: wrote ${relative(REPO, join(dir, 'vision.json'))} and vision.md\n`);
}
