/**
 * Benchmark: one deployed node's local epoch with 1 core versus every core (OpenBLAS threads, as
 * `edgefed node --threads` sets them), on the seed MLP (B=32), McMahan's 2NN (B=10) and CNN (B=32).
 * Each (model, threads) pair trains from the same seeded weights on the same node-sized share of MNIST,
 * interleaving 1 and k threads (order flipped every repeat) so machine noise hits both alike; the median epoch is reported
 * with its CPU seconds, and the test accuracy after the epoch (equal up to float rounding: k threads sum
 * in another order). Prints the environment beside every figure.
 *
 * Run:  node --import tsx bench/node-cores.ts [--threads K] [--samples 6000] [--cnn-samples 1000] [--repeats 3]
 *       [--models mlp,2nn,cnn] [--results-dir bench/results] [--no-write]
 * Writes RESULTS_DIR/node-cores.json and node-cores.md.
 */
import { parseArgs } from 'node:util';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { loadMnist } from '../src/data/mnist.js';
import { subset, type Dataset } from '../src/data/types.js';
import { builtinModel, initialWeights, tensorSpecs, type ModelSpec } from '../src/model/spec.js';
import { EngineTrainer } from '../src/model/engine-trainer.js';
import { loadNativeKernels, nativeKernelsInfo, setNativeBlasThreads } from '../src/nn/kernels-native.js';
import { cpuFeatures } from '../src/nn/cpu-features.js';
import { Rng } from '../src/core/rng.js';
import { numberFlag, provenance, REPO, writeAtomic } from './support/results-io.js';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: String(availableParallelism()) },
    samples: { type: 'string', default: '6000' },
    'cnn-samples': { type: 'string', default: '1000' },
    repeats: { type: 'string', default: '3' },
    models: { type: 'string', default: 'mlp,2nn,cnn' },
    'results-dir': { type: 'string', default: join(REPO, 'bench', 'results') },
    'no-write': { type: 'boolean', default: false },
  },
});
const threads = numberFlag(
  'threads',
  values.threads,
  (v) => Number.isInteger(v) && v >= 1 && v <= 256,
  'a whole number in [1, 256]',
);
const samples = numberFlag('samples', values.samples, (v) => Number.isInteger(v) && v >= 100, 'a whole number >= 100');
const cnnSamples = numberFlag(
  'cnn-samples',
  values['cnn-samples'],
  (v) => Number.isInteger(v) && v >= 32,
  'a whole number >= 32',
);
const repeats = numberFlag('repeats', values.repeats, (v) => Number.isInteger(v) && v >= 1, 'a whole number >= 1');
const SETTINGS: Record<'mlp' | '2nn' | 'cnn', { batch: number; samples: number }> = {
  mlp: { batch: 32, samples },
  '2nn': { batch: 10, samples },
  cnn: { batch: 32, samples: cnnSamples },
};
const models = values.models.split(',').map((m) => m.trim()) as (keyof typeof SETTINGS)[];
for (const m of models)
  if (!(m in SETTINGS)) throw new Error(`--models: unknown model '${m}' (expected mlp, 2nn, cnn)`);

const kernels = loadNativeKernels();
if (!kernels) throw new Error('bench/node-cores needs the native kernels (node scripts/build-native.mjs)');
const started = performance.now();
const cpu = cpuFeatures();
const env = {
  cpu: `${cpu.model} (${cpu.vector})`,
  cores: availableParallelism(),
  openblas_core: nativeKernelsInfo()?.core,
  load_average_start: loadavg().map((v) => Math.round(v * 100) / 100),
};
process.stderr.write(
  `node-cores: ${env.cpu}, ${env.cores} cores, OpenBLAS core ${env.openblas_core}, load ${env.load_average_start.join(' ')}\n`,
);

const data = loadMnist();

interface Timing {
  wall_s: number;
  cpu_s: number;
  accuracy: number;
  loss: number;
}

async function epoch(spec: ModelSpec, train: Dataset, batch: number, blasThreads: number): Promise<Timing> {
  setNativeBlasThreads(blasThreads);
  const trainer = new EngineTrainer(spec, kernels!);
  const w0 = initialWeights(tensorSpecs(spec), new Rng(1));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await trainer.train(w0, train, {
    epochs: 1,
    batchSize: batch,
    optimizer: spec.optimizer,
    proxMu: 0,
    seed: 1,
  });
  const wall = (performance.now() - t0) / 1000;
  const used = process.cpuUsage(cpu0);
  const ev = await trainer.evaluate(r.weights, data.test);
  trainer.dispose();
  return { wall_s: wall, cpu_s: (used.user + used.system) / 1e6, accuracy: ev.accuracy, loss: ev.loss };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = [];
for (const name of models) {
  const { batch, samples: n } = SETTINGS[name];
  const spec = builtinModel(name, [28, 28, 1], 10);
  const train = subset(
    data.train,
    Int32Array.from({ length: n }, (_, i) => i),
    `mnist[0:${n}]`,
  );
  await epoch(
    spec,
    subset(
      train,
      Int32Array.from({ length: batch * 4 }, (_, i) => i),
    ),
    batch,
    1,
  ); // warm-up
  const one: Timing[] = [];
  const many: Timing[] = [];
  // Interleaved, and the order flips every repeat (1, k, k, 1, 1, k, ...), so drifting load hits both alike.
  for (let i = 0; i < repeats; i++) {
    if (i % 2 === 0) {
      one.push(await epoch(spec, train, batch, 1));
      many.push(await epoch(spec, train, batch, threads));
    } else {
      many.push(await epoch(spec, train, batch, threads));
      one.push(await epoch(spec, train, batch, 1));
    }
  }
  const w1 = median(one.map((t) => t.wall_s));
  const wk = median(many.map((t) => t.wall_s));
  const row = {
    model: name,
    batch,
    samples: n,
    threads,
    wall_s_1: w1,
    wall_s_k: wk,
    speedup: w1 / wk,
    cpu_s_1: median(one.map((t) => t.cpu_s)),
    cpu_s_k: median(many.map((t) => t.cpu_s)),
    accuracy_1: one[0].accuracy,
    accuracy_k: many[0].accuracy,
    deterministic_k: many.every((t) => t.accuracy === many[0].accuracy && t.loss === many[0].loss),
    repeats,
    load_1min: Math.round(loadavg()[0] * 100) / 100,
  };
  rows.push(row);
  process.stderr.write(
    `  ${name} B=${batch} n=${n}: 1 thread ${w1.toFixed(3)} s (${row.cpu_s_1.toFixed(3)} CPU-s), ` +
      `${threads} threads ${wk.toFixed(3)} s (${row.cpu_s_k.toFixed(3)} CPU-s): ${row.speedup.toFixed(2)}x, ` +
      `accuracy ${row.accuracy_1.toFixed(4)} / ${row.accuracy_k.toFixed(4)}, load ${loadavg()[0].toFixed(2)}\n`,
  );
}
setNativeBlasThreads(1);

const report = {
  bench: 'node-cores',
  env: { ...env, load_average_end: loadavg().map((v) => Math.round(v * 100) / 100) },
  rows,
  ...provenance(1, started),
};
const md = [
  '# One node, one epoch: 1 core versus every core (OpenBLAS threads)',
  '',
  `${env.cpu}, ${env.cores} cores, OpenBLAS core ${env.openblas_core}; load average ${env.load_average_start.join(' / ')} at the start, ` +
    `${report.env.load_average_end.join(' / ')} at the end (the machine is shared: a k-thread figure needs k idle cores). ` +
    `Git ${report.git_commit?.slice(0, 12) ?? '?'}.`,
  '',
  `Reproduce: \`node --import tsx bench/node-cores.ts --threads ${threads} --samples ${samples} --cnn-samples ${cnnSamples} --repeats ${repeats}\``,
  '',
  '| model | B | samples | 1 thread s | CPU-s | k threads s | CPU-s | speedup | test acc 1 / k | k deterministic | load (1 min) |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |',
  ...rows.map(
    (r) =>
      `| ${r.model} | ${r.batch} | ${r.samples} | ${r.wall_s_1.toFixed(3)} | ${r.cpu_s_1.toFixed(3)} | ` +
      `${r.wall_s_k.toFixed(3)} (k=${r.threads}) | ${r.cpu_s_k.toFixed(3)} | ${r.speedup.toFixed(2)}x | ` +
      `${r.accuracy_1.toFixed(4)} / ${r.accuracy_k.toFixed(4)} | ${r.deterministic_k ? 'yes' : 'NO'} | ${r.load_1min.toFixed(2)} |`,
  ),
  '',
].join('\n');
process.stdout.write(`${md}\n`);
if (!values['no-write']) {
  writeAtomic(join(values['results-dir'], 'node-cores.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeAtomic(join(values['results-dir'], 'node-cores.md'), md);
}
