/**
 * Seconds and CPU-seconds per round of McMahan's 2NN non-IID FedAvg (100 clients, 10 per round, E=1, B=10,
 * lr 0.1), EdgeFed with 1 worker and with every core against the NumPy reference `../shared/bench/
 * np_fedavg_2nn.py` (its 10 clients trained as one batched computation, one core), all in one run.
 * Both sides are timed from the end of round 1 to the end of the last round, so start-up (data loading,
 * worker threads) is left out alike: NumPy's per-round marks come from wrapping its `evaluate` (called once
 * at the end of every round), EdgeFed's from the round callback. CPU-seconds are the whole process's (all
 * threads). Used by `bench/noniid-2nn.ts --pace ROUNDS`.
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { runSimulation } from '../src/sim/simulate.js';
import type { SimulationOptions } from '../src/sim/options.js';
import { mnistDir } from '../src/data/mnist.js';
import { nativeKernelsInfo } from '../src/nn/kernels-native.js';
import { cpuFeatures } from '../src/nn/cpu-features.js';
import { REPO } from './support/results-io.js';
import { sharedBenchFile } from './shared-reference.js';

export const NUMPY_REFERENCE = sharedBenchFile('np_fedavg_2nn.py');

export interface PaceRow {
  side: string;
  workers: number;
  rounds: number;
  seconds_per_round: number;
  cpu_seconds_per_round: number;
  final_accuracy: number;
  trainer: string;
}

interface Mark {
  wall: number;
  cpu: number;
  accuracy: number;
}

function perRound(marks: Mark[]): { seconds: number; cpu: number } {
  const first = marks[0];
  const last = marks[marks.length - 1];
  const n = marks.length - 1;
  return { seconds: (last.wall - first.wall) / n, cpu: (last.cpu - first.cpu) / n };
}

/** Runs the NumPy reference unmodified (runpy) with its evaluate wrapped to mark the end of each round. */
export function numpyPace(rounds: number, seed: number, lr: number): PaceRow {
  const wrapper = `
import json, sys, time, importlib.util
spec = importlib.util.spec_from_file_location('np_fedavg_2nn', ${JSON.stringify(NUMPY_REFERENCE)})
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
marks = []
evaluate = mod.evaluate
def marked(params, x, y):
    acc = evaluate(params, x, y)
    marks.append(dict(wall=time.perf_counter(), cpu=time.process_time(), accuracy=acc))
    return acc
mod.evaluate = marked
import contextlib, io
with contextlib.redirect_stdout(io.StringIO()):
    mod.run(${seed}, ${lr}, ${rounds}, target=2.0)
print('PACE ' + json.dumps(marks))
`;
  const r = spawnSync('python3', ['-c', wrapper], {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, MNIST_DIR: mnistDir() },
    maxBuffer: 64 << 20,
  });
  const line = r.stdout?.split('\n').find((l) => l.startsWith('PACE '));
  if (r.status !== 0 || !line) throw new Error(`NumPy reference failed (exit ${r.status}): ${r.stderr?.slice(-500)}`);
  const marks = JSON.parse(line.slice(5)) as Mark[];
  const { seconds, cpu } = perRound(marks);
  return {
    side: 'NumPy (np_fedavg_2nn.py, 10 clients batched)',
    workers: 1,
    rounds: marks.length,
    seconds_per_round: seconds,
    cpu_seconds_per_round: cpu,
    final_accuracy: marks[marks.length - 1].accuracy,
    trainer: 'numpy',
  };
}

export async function edgefedPace(rounds: number, seed: number, lr: number, workers: number): Promise<PaceRow> {
  const options: SimulationOptions = {
    dataset: 'mnist',
    model: '2nn',
    nodes: 100,
    fraction: 0.1,
    partition: 'shards:2',
    strategy: 'fedavg',
    localEpochs: 1,
    batchSize: 10,
    optimizer: 'sgd',
    lr,
    rounds,
    seed,
    validationFraction: 0,
    workers,
  };
  const marks: Mark[] = [];
  const result = await runSimulation(options, (r) => {
    const cpu = process.cpuUsage();
    marks.push({ wall: performance.now() / 1000, cpu: (cpu.user + cpu.system) / 1e6, accuracy: r.testAccuracy });
  });
  const { seconds, cpu } = perRound(marks);
  return {
    side: `EdgeFed, ${workers} worker${workers === 1 ? '' : 's'}`,
    workers,
    rounds: marks.length,
    seconds_per_round: seconds,
    cpu_seconds_per_round: cpu,
    final_accuracy: marks[marks.length - 1].accuracy,
    trainer: result.trainer,
  };
}

export async function runPace(rounds: number, seed: number, lr: number): Promise<string> {
  if (rounds < 2) throw new Error('--pace: needs at least 2 rounds (time is measured from the end of round 1)');
  const cpu = cpuFeatures();
  const env =
    `${cpu.model} (${cpu.vector}), ${availableParallelism()} cores, OpenBLAS core ${nativeKernelsInfo()?.core ?? 'n/a'}, ` +
    `OPENBLAS_CORETYPE ${process.env.OPENBLAS_CORETYPE ?? 'unset'} (NumPy's OpenBLAS reads it too)`;
  const loadStart = loadavg()
    .map((v) => v.toFixed(2))
    .join(' / ');
  process.stderr.write(`noniid pace: ${rounds} rounds, seed ${seed}, lr ${lr}; ${env}; load ${loadStart}\n`);
  const all = availableParallelism();
  // NumPy before and after EdgeFed, so drifting load hits both; its median of the two is the base.
  const rows: PaceRow[] = [numpyPace(rounds, seed, lr), await edgefedPace(rounds, seed, lr, 1)];
  if (all > 1) rows.push(await edgefedPace(rounds, seed, lr, all));
  rows.push(numpyPace(rounds, seed, lr));
  const numpy = rows.filter((r) => r.trainer === 'numpy');
  const base = numpy.reduce((a, r) => a + r.seconds_per_round, 0) / numpy.length;
  const baseCpu = numpy.reduce((a, r) => a + r.cpu_seconds_per_round, 0) / numpy.length;
  const loadEnd = loadavg()
    .map((v) => v.toFixed(2))
    .join(' / ');
  return [
    `## Seconds per round against NumPy (${rounds} rounds, seed ${seed}, lr ${lr})`,
    '',
    `${env}; load average ${loadStart} at the start, ${loadEnd} at the end. Per round = (end of last round - end of round 1) / ` +
      `(rounds - 1), both sides. Targets: EdgeFed <= 0.7x NumPy's seconds per round with one worker, <= 0.45x with every core.`,
    '',
    `Reproduce: \`node --import tsx bench/noniid-2nn.ts --pace ${rounds} --seed ${seed} --lr ${lr}\``,
    '',
    '| side | s/round | vs NumPy | CPU-s/round | vs NumPy (CPU) | test acc after last round | trainer |',
    '| --- | ---: | ---: | ---: | ---: | ---: | --- |',
    ...rows.map(
      (r) =>
        `| ${r.side} | ${r.seconds_per_round.toFixed(4)} | ${(r.seconds_per_round / base).toFixed(2)}x | ` +
        `${r.cpu_seconds_per_round.toFixed(4)} | ${(r.cpu_seconds_per_round / baseCpu).toFixed(2)}x | ${r.final_accuracy.toFixed(4)} | ${r.trainer} |`,
    ),
    '',
  ].join('\n');
}
