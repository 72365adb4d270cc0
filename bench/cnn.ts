/**
 * Benchmark: central training of McMahan's CNN (conv5x5x32, pool, conv5x5x64, pool, dense 512, dense 10) on
 * all of MNIST (60,000 train / 10,000 test) for a few epochs with EdgeFed's engine, reporting the test
 * accuracy after each epoch (the bar: >= 0.98 after 2 epochs) and the training throughput.
 *
 * Run:  node --import tsx bench/cnn.ts [--epochs 2] [--batch 32] [--lr 0.05] [--seed 1] [--results-dir bench/results] [--no-write]
 * Kernels: EDGEFED_KERNELS=native|wasm|js (default: native, else wasm, else js). Weights start from the seeded
 * Glorot initialisation; epoch e shuffles with seed + e. Writes RESULTS_DIR/cnn.json and cnn.md.
 */
import { parseArgs } from 'node:util';
import { mkdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { loadMnist } from '../src/data/mnist.js';
import { builtinModel, initialWeights, tensorSpecs } from '../src/model/spec.js';
import { EngineTrainer } from '../src/model/engine-trainer.js';
import { selectKernels } from '../src/nn/kernels-select.js';
import { Rng } from '../src/core/rng.js';
import { printEnvironment, REPO, writeAtomic } from './support/results-io.js';

const TARGET_ACCURACY = 0.98;
const TARGET_EPOCHS = 2;

function positive(name: string, text: string, integer: boolean): number {
  const v = Number(text);
  if (!(v > 0) || !Number.isFinite(v) || (integer && !Number.isInteger(v))) {
    throw new Error(`--${name}: expected ${integer ? 'a whole number >= 1' : 'a number > 0'}, got '${text}'`);
  }
  return v;
}

const { values } = parseArgs({
  options: {
    epochs: { type: 'string', default: String(TARGET_EPOCHS) },
    batch: { type: 'string', default: '32' },
    lr: { type: 'string' },
    seed: { type: 'string', default: '1' },
    'results-dir': { type: 'string', default: join(REPO, 'bench', 'results') },
    'no-write': { type: 'boolean', default: false },
  },
});
const epochs = positive('epochs', values.epochs, true);
const batchSize = positive('batch', values.batch, true);
const seed = Number(values.seed);
if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed: expected a whole number >= 0, got '${values.seed}'`);
const base = builtinModel('cnn', [28, 28, 1], 10);
const spec = {
  ...base,
  optimizer: { ...base.optimizer, lr: values.lr === undefined ? base.optimizer.lr : positive('lr', values.lr, false) },
};

const data = loadMnist();
const kernelSet = await selectKernels();
const kernels = kernelSet.name;
const trainer = new EngineTrainer(spec, kernelSet);
const loadStart = loadavg().map((v) => Math.round(v * 100) / 100);
printEnvironment('cnn-bench');
process.stderr.write(
  `cnn-bench: ${spec.name} on ${kernels}, ${epochs} epochs, batch ${batchSize}, ${spec.optimizer.name} lr ${spec.optimizer.lr}, seed ${seed}\n`,
);

interface EpochResult {
  epoch: number;
  train_loss: number;
  train_accuracy: number;
  test_loss: number;
  test_accuracy: number;
  seconds: number;
  cpu_seconds: number;
  samples_per_s: number;
  samples_per_cpu_s: number;
}

let w = initialWeights(tensorSpecs(spec), new Rng(seed));
const results: EpochResult[] = [];
for (let e = 1; e <= epochs; e++) {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const out = await trainer.train(w, data.train, {
    epochs: 1,
    batchSize,
    optimizer: spec.optimizer,
    proxMu: 0,
    seed: seed + e,
  });
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  w = out.weights;
  const ev = await trainer.evaluate(w, data.test);
  const r: EpochResult = {
    epoch: e,
    train_loss: out.metrics.loss,
    train_accuracy: out.metrics.accuracy,
    test_loss: ev.loss,
    test_accuracy: ev.accuracy,
    seconds: Math.round(seconds * 10) / 10,
    cpu_seconds: Math.round(cpuSeconds * 10) / 10,
    samples_per_s: Math.round(data.train.n / seconds),
    samples_per_cpu_s: Math.round(data.train.n / cpuSeconds),
  };
  results.push(r);
  process.stderr.write(
    `cnn-bench: epoch ${e}: train loss ${r.train_loss.toFixed(4)}, test accuracy ${r.test_accuracy.toFixed(4)}, ` +
      `${r.samples_per_s} samples/s (${r.samples_per_cpu_s} per CPU-s)\n`,
  );
}
trainer.dispose();

const atTarget = results.find((r) => r.epoch === TARGET_EPOCHS) ?? null;
const verdict =
  atTarget === null
    ? `not measured (ran ${epochs} epochs)`
    : atTarget.test_accuracy >= TARGET_ACCURACY
      ? 'met'
      : 'NOT met';
const report = {
  bench: 'cnn',
  date: new Date().toISOString(),
  cpu_model: cpus()[0]?.model ?? 'unknown',
  node: process.version,
  load_average_start: loadStart,
  load_average_end: loadavg().map((v) => Math.round(v * 100) / 100),
  model: spec.name,
  kernels,
  epochs,
  batch_size: batchSize,
  optimizer: spec.optimizer,
  seed,
  target: { test_accuracy: TARGET_ACCURACY, after_epochs: TARGET_EPOCHS, verdict },
  results,
};
const table = [
  '| Epoch | Train loss | Train acc | Test loss | Test acc | Seconds | samples/s | samples/CPU-s |',
  '|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...results.map(
    (r) =>
      `| ${r.epoch} | ${r.train_loss.toFixed(4)} | ${r.train_accuracy.toFixed(4)} | ${r.test_loss.toFixed(4)} | ` +
      `${r.test_accuracy.toFixed(4)} | ${r.seconds} | ${r.samples_per_s.toLocaleString('en-US')} | ${r.samples_per_cpu_s.toLocaleString('en-US')} |`,
  ),
].join('\n');
const summary = `Test accuracy after ${TARGET_EPOCHS} epochs: ${atTarget ? atTarget.test_accuracy.toFixed(4) : 'n/a'} (target >= ${TARGET_ACCURACY}: ${verdict}).`;
process.stdout.write(`${table}\n\n${summary}\n`);
if (!values['no-write']) {
  const dir = resolve(values['results-dir']);
  mkdirSync(dir, { recursive: true });
  const put = (name: string, text: string): void => {
    writeAtomic(join(dir, name), text);
  };
  put('cnn.json', `${JSON.stringify(report, null, 2)}\n`);
  put(
    'cnn.md',
    [
      '# McMahan CNN, central training on MNIST',
      '',
      `Run ${report.date} on ${report.cpu_model}, Node ${report.node}, load average ${loadStart.join(' / ')} at the start. ` +
        `Engine (EngineTrainer, SeqNet) on the ${kernels} kernels; ${spec.optimizer.name} lr ${spec.optimizer.lr}, batch ${batchSize}, ` +
        `Glorot-uniform weights from seed ${seed}; epoch e shuffles with seed + e; test accuracy on the 10,000 MNIST test images after each epoch.`,
      '',
      'Reproduce: `npm run bench:cnn` (= `node --import tsx bench/cnn.ts`).',
      '',
      table,
      '',
      summary,
      '',
    ].join('\n'),
  );
  process.stderr.write(`cnn-bench: wrote ${relative(REPO, join(dir, 'cnn.json'))} and cnn.md\n`);
}
