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
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { runSimulation } from '../src/sim/simulate.js';
import type { SimulationOptions } from '../src/sim/options.js';
import { mnistDir } from '../src/data/mnist.js';
import { nativeKernelsInfo } from '../src/nn/kernels-native.js';
import { cpuFeatures } from '../src/nn/cpu-features.js';
import { REPO, provenance } from './support/results-io.js';
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
  /**
   * EdgeFed only: CPU-seconds per round of the main thread (request encoding, fusion; with one worker also most of
   * the central evaluation, which runs while the next round trains).
   */
  main_thread_cpu_seconds_per_round?: number;
  /** The 1-minute load average when the row finished (the machine is shared). */
  load_1min: number;
  /** EdgeFed only: the trained model's sha256 (1 worker and every core must train the same model). */
  model_sha256?: string;
}

interface Mark {
  wall: number;
  cpu: number;
  accuracy: number;
  /** CPU-seconds of this process's main thread (Linux; NaN elsewhere). */
  mainCpu?: number;
}

/** CPU-seconds of the main thread alone, from /proc (NaN where there is none). */
function mainThreadCpu(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in clock ticks of 1/100 s
  } catch {
    return Number.NaN;
  }
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
    load_1min: loadavg()[0],
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
    marks.push({
      wall: performance.now() / 1000,
      cpu: (cpu.user + cpu.system) / 1e6,
      accuracy: r.testAccuracy,
      mainCpu: mainThreadCpu(),
    });
  });
  const { seconds, cpu } = perRound(marks);
  const mainCpu = (marks[marks.length - 1].mainCpu! - marks[0].mainCpu!) / (marks.length - 1);
  return {
    side: `EdgeFed, ${workers} worker${workers === 1 ? '' : 's'}`,
    workers,
    rounds: marks.length,
    seconds_per_round: seconds,
    cpu_seconds_per_round: cpu,
    final_accuracy: marks[marks.length - 1].accuracy,
    trainer: result.trainer,
    main_thread_cpu_seconds_per_round: mainCpu,
    load_1min: loadavg()[0],
    model_sha256: result.modelSha256,
  };
}

/** One --pace run as written to RESULTS_DIR/noniid-pace.json (the markdown and README's table render it). */
export interface PaceReport {
  bench: 'noniid-pace';
  rounds: number;
  seed: number;
  lr: number;
  env: {
    cpu: string;
    cores: number;
    openblas_core: string;
    openblas_coretype_env: string | null;
    load_average_start: number[];
    load_average_end: number[];
  };
  rows: PaceRow[];
  /** Mean of the two NumPy rows (before and after EdgeFed). */
  numpy_seconds_per_round: number;
  numpy_cpu_seconds_per_round: number;
  targets: { one_worker: number; every_core: number };
}

const loads = () => loadavg().map((v) => Math.round(v * 100) / 100);

export async function runPace(
  rounds: number,
  seed: number,
  lr: number,
): Promise<PaceReport & ReturnType<typeof provenance>> {
  if (rounds < 2) throw new Error('--pace: needs at least 2 rounds (time is measured from the end of round 1)');
  const started = performance.now();
  const cpu = cpuFeatures();
  const env = {
    cpu: `${cpu.model} (${cpu.vector})`,
    cores: availableParallelism(),
    openblas_core: nativeKernelsInfo()?.core ?? 'n/a',
    openblas_coretype_env: process.env.OPENBLAS_CORETYPE ?? null,
    load_average_start: loads(),
    load_average_end: [] as number[],
  };
  process.stderr.write(
    `noniid pace: ${rounds} rounds, seed ${seed}, lr ${lr}; ${env.cpu}, ${env.cores} cores, OpenBLAS core ` +
      `${env.openblas_core}; load ${env.load_average_start.join(' / ')}\n`,
  );
  const all = availableParallelism();
  // NumPy before and after EdgeFed, so drifting load hits both; the mean of the two is the base.
  const rows: PaceRow[] = [numpyPace(rounds, seed, lr), await edgefedPace(rounds, seed, lr, 1)];
  if (all > 1) rows.push(await edgefedPace(rounds, seed, lr, all));
  rows.push(numpyPace(rounds, seed, lr));
  const numpy = rows.filter((r) => r.trainer === 'numpy');
  env.load_average_end = loads();
  return {
    bench: 'noniid-pace',
    rounds,
    seed,
    lr,
    env,
    rows,
    numpy_seconds_per_round: numpy.reduce((a, r) => a + r.seconds_per_round, 0) / numpy.length,
    numpy_cpu_seconds_per_round: numpy.reduce((a, r) => a + r.cpu_seconds_per_round, 0) / numpy.length,
    targets: { one_worker: 0.7, every_core: 0.45 },
    ...provenance(1, started),
  };
}

/** The environment of a pace run as one line (printed beside every figure). */
export function paceEnvironment(p: PaceReport): string {
  return (
    `${p.env.cpu}, ${p.env.cores} cores, OpenBLAS core ${p.env.openblas_core}, OPENBLAS_CORETYPE ` +
    `${p.env.openblas_coretype_env ?? 'unset'} (NumPy's OpenBLAS reads it too); load average ` +
    `${p.env.load_average_start.join(' / ')} at the start, ${p.env.load_average_end.join(' / ')} at the end`
  );
}

export function paceMarkdown(p: PaceReport): string {
  const base = p.numpy_seconds_per_round;
  const baseCpu = p.numpy_cpu_seconds_per_round;
  const main = (r: PaceRow) =>
    r.main_thread_cpu_seconds_per_round === undefined || Number.isNaN(r.main_thread_cpu_seconds_per_round)
      ? '-'
      : r.main_thread_cpu_seconds_per_round.toFixed(4);
  return [
    `## Seconds per round against NumPy (${p.rounds} rounds, seed ${p.seed}, lr ${p.lr})`,
    '',
    `${paceEnvironment(p)}. Per round = (end of last round - end of round 1) / (rounds - 1), both sides. ` +
      `Targets: EdgeFed <= ${p.targets.one_worker}x NumPy's seconds per round with one worker, ` +
      `<= ${p.targets.every_core}x with every core. "main thread" is the part of EdgeFed's CPU spent on the ` +
      'coordinator side (request encoding, fusion; with one worker also most of the evaluation on the 10,000 test ' +
      'images, which runs while the next round trains); the rest is the worker threads (training; with every ' +
      "core also the evaluation, queued behind training) and V8's helper threads (garbage collection).",
    '',
    `Reproduce: \`node --import tsx bench/noniid-2nn.ts --pace ${p.rounds} --seed ${p.seed} --lr ${p.lr}\``,
    '',
    '| side | s/round | vs NumPy | CPU-s/round | vs NumPy (CPU) | of which main thread | test acc after last round | trainer | load (1 min) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |',
    ...p.rows.map(
      (r) =>
        `| ${r.side} | ${r.seconds_per_round.toFixed(4)} | ${(r.seconds_per_round / base).toFixed(2)}x | ` +
        `${r.cpu_seconds_per_round.toFixed(4)} | ${(r.cpu_seconds_per_round / baseCpu).toFixed(2)}x | ${main(r)} | ` +
        `${r.final_accuracy.toFixed(4)} | ${r.trainer} | ${r.load_1min.toFixed(2)} |`,
    ),
    '',
    sameModelLine(p.rows),
    '',
  ].join('\n');
}

/**
 * Whether 1 worker and every core trained the same model: then the rounds-to-97% of noniid-2nn.md (run with every
 * core) hold for both.
 */
function sameModelLine(rows: PaceRow[]): string {
  const shas = rows.filter((r) => r.model_sha256).map((r) => `${r.side}: ${r.model_sha256!.slice(0, 16)}`);
  if (shas.length < 2) return '';
  const same = new Set(rows.filter((r) => r.model_sha256).map((r) => r.model_sha256)).size === 1;
  return same
    ? `Both EdgeFed rows trained the same model (sha256 ${rows.find((r) => r.model_sha256)!.model_sha256!.slice(0, 16)}), ` +
        'so the rounds to 97% in noniid-2nn.md (run with every core) hold for one worker too.'
    : `The EdgeFed rows trained different models (${shas.join('; ')}): a determinism bug to look into.`;
}
