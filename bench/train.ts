/**
 * Benchmark: single-core training throughput on MNIST (60,000 train / 10,000 test), in one run, for
 *   - the seed MLP (784-128-10) with SGD lr 0.1 and Adam lr 0.001, batch 32,
 *   - McMahan's 2NN (784-200-200-10) with SGD lr 0.1, batch 32 and batch 128,
 *   - McMahan's CNN (5x5x32, pool, 5x5x64, pool, 512, 10) with SGD lr 0.05, batch 32,
 * on each engine: EdgeFed's engine with native (OpenBLAS), WASM and JS kernels, EdgeFed's TfjsTrainer (CNN),
 * stock tfjs 4.22 model.fit on the wasm and cpu backends, and the NumPy reference (../shared/bench, median of runs).
 *
 * Every engine measurement runs in its own child process (bench/train-worker.ts), so its peak RSS is its
 * own, while the machine's noise is shared by running everything in one go. A last child holds one node's
 * share of MNIST (6000 rows, as in the 10-node simulation) and reports its memory.
 *
 * Run:  node --import tsx bench/train.ts [--configs mlp-sgd-b32,2nn-sgd-b128,...] [--engines edgefed-wasm,...]
 *       [--numpy-runs 3] [--budget-scale 1] [--results-dir bench/results] [--no-write]
 * --engines keeps only those engine rows (NumPy always runs; the node-share child runs with edgefed-native).
 * --budget-scale multiplies every run's time budget and child time limit (e.g. 8 lets the engine train the
 * CNN for a whole epoch and report its test accuracy, on a quiet machine).
 * Prints the table on stdout (progress on stderr) and writes RESULTS_DIR/train.json and train.md.
 */
import { parseArgs } from 'node:util';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { mnistDir } from '../src/data/mnist.js';
import { sharedBenchFile } from './shared-reference.js';
import {
  ENGINES,
  RESULT_PREFIX,
  TIMED_START_PREFIX,
  type BenchModel,
  type EngineId,
  type WorkerConfig,
  type WorkerResult,
} from './train-worker.js';
import { gitCommit, gitSrcDirty, machine, printEnvironment, REPO, writeAtomic } from './support/results-io.js';

const WORKER = 'bench/train-worker.ts';
/** The NumPy reference lives beside the repo, in the shared directory: ../shared/bench from the repo root. */
const NUMPY_REF = sharedBenchFile('np_mlp_ref.py');
const CHILD_TIMEOUT_S = 300;
const SEED = 1;

interface BenchConfig {
  id: string;
  label: string;
  model: BenchModel;
  optimizer: { name: 'sgd' | 'adam'; lr: number };
  batchSize: number;
  /** The NumPy reference's --hidden and --optimizer for this config; null where it has none (CNN). */
  numpy: { hidden: string; optimizer: 'sgd' | 'adam' } | null;
}

const CONFIGS: BenchConfig[] = [
  {
    id: 'mlp-sgd-b32',
    label: 'seed MLP 784-128-10, SGD lr 0.1, B=32',
    model: 'mlp',
    optimizer: { name: 'sgd', lr: 0.1 },
    batchSize: 32,
    numpy: { hidden: '128', optimizer: 'sgd' },
  },
  {
    id: 'mlp-adam-b32',
    label: 'seed MLP 784-128-10, Adam lr 0.001, B=32',
    model: 'mlp',
    optimizer: { name: 'adam', lr: 0.001 },
    batchSize: 32,
    numpy: { hidden: '128', optimizer: 'adam' },
  },
  {
    id: '2nn-sgd-b32',
    label: '2NN 784-200-200-10, SGD lr 0.1, B=32',
    model: '2nn',
    optimizer: { name: 'sgd', lr: 0.1 },
    batchSize: 32,
    numpy: { hidden: '200,200', optimizer: 'sgd' },
  },
  {
    id: '2nn-sgd-b128',
    label: '2NN 784-200-200-10, SGD lr 0.1, B=128',
    model: '2nn',
    optimizer: { name: 'sgd', lr: 0.1 },
    batchSize: 128,
    numpy: { hidden: '200,200', optimizer: 'sgd' },
  },
  {
    id: 'cnn-sgd-b32',
    label: 'CNN (McMahan) conv5x5x32-pool-conv5x5x64-pool-512-10, SGD lr 0.05, B=32',
    model: 'cnn',
    optimizer: { name: 'sgd', lr: 0.05 },
    batchSize: 32,
    numpy: null,
  },
];

/** How much each engine measures: samples null = the full epoch (and test accuracy); the budget shrinks slow runs. */
interface EnginePlan {
  engine: EngineId;
  /** EDGEFED_KERNELS for the child (unset for tfjs). */
  kernels?: 'native' | 'js' | 'wasm';
  samples: number | null;
  warmupBatches: number;
  warmupSamples?: number;
  probeBatches: number;
  budgetSeconds: number;
  repeats: number;
  /** The child is killed after this long (default CHILD_TIMEOUT_S); a kill during the timed part gives a bound. */
  timeoutSeconds?: number;
}

const DENSE_PLANS: EnginePlan[] = [
  {
    engine: 'edgefed-native',
    kernels: 'native',
    samples: null,
    warmupBatches: 10,
    probeBatches: 10,
    budgetSeconds: 90,
    repeats: 3,
  },
  {
    engine: 'edgefed-wasm',
    kernels: 'wasm',
    samples: null,
    warmupBatches: 10,
    probeBatches: 10,
    budgetSeconds: 40,
    repeats: 1,
  },
  {
    engine: 'edgefed-js',
    kernels: 'js',
    samples: 6000,
    warmupBatches: 5,
    probeBatches: 5,
    budgetSeconds: 30,
    repeats: 1,
  },
  { engine: 'tfjs-wasm', samples: 6000, warmupBatches: 5, probeBatches: 5, budgetSeconds: 30, repeats: 1 },
  { engine: 'tfjs-cpu', samples: 1024, warmupBatches: 3, probeBatches: 3, budgetSeconds: 25, repeats: 1 },
];

/**
 * The CNN: the engines are tried in case they have learnt convolutions (makeTrainer decides), tfjs runs
 * on small subsets. Stock tfjs-cpu needs ~40-70 s per batch of 32 here (its Conv2DBackpropFilter reads
 * every element through TensorBuffer.get), so it is warmed up with one batch of 4 samples and times one batch of 32;
 * if that batch does not finish within the child's time limit, the row reports an upper bound.
 */
const CNN_PLANS: EnginePlan[] = [
  {
    engine: 'edgefed-native',
    kernels: 'native',
    samples: null,
    warmupBatches: 2,
    probeBatches: 3,
    budgetSeconds: 30,
    repeats: 1,
  },
  {
    engine: 'edgefed-wasm',
    kernels: 'wasm',
    samples: 6000,
    warmupBatches: 2,
    probeBatches: 2,
    budgetSeconds: 20,
    repeats: 1,
  },
  {
    engine: 'edgefed-js',
    kernels: 'js',
    samples: 6000,
    warmupBatches: 1,
    probeBatches: 1,
    budgetSeconds: 15,
    repeats: 1,
  },
  {
    engine: 'edgefed-tfjs',
    samples: 512,
    warmupBatches: 1,
    warmupSamples: 8,
    probeBatches: 1,
    budgetSeconds: 20,
    repeats: 1,
  },
  { engine: 'tfjs-wasm', samples: 512, warmupBatches: 1, probeBatches: 1, budgetSeconds: 20, repeats: 1 },
  {
    engine: 'tfjs-cpu',
    samples: 32,
    warmupBatches: 1,
    warmupSamples: 4,
    probeBatches: 0,
    budgetSeconds: 150,
    repeats: 1,
    timeoutSeconds: 150,
  },
];

const ENGINE_LABEL: Record<EngineId | 'numpy', string> = {
  'edgefed-native': 'EdgeFed engine, native kernels',
  'edgefed-wasm': 'EdgeFed engine, WASM kernels',
  'edgefed-js': 'EdgeFed engine, JS kernels',
  'edgefed-tfjs': 'EdgeFed TfjsTrainer (tfjs cpu)',
  'tfjs-wasm': 'stock tfjs wasm, model.fit',
  'tfjs-cpu': 'stock tfjs cpu, model.fit',
  numpy: 'NumPy reference',
};
const STOCK_TFJS: readonly string[] = ['tfjs-wasm', 'tfjs-cpu'];

interface NumpyRun {
  /** As the reference prints it (wall clock). */
  samples_per_s: number;
  seconds: number;
  /** Process CPU seconds over the same span (time.process_time, recorded by the wrapper below). */
  cpu_seconds: number | null;
  samples_per_cpu_s: number | null;
  test_accuracy: number;
}

/**
 * Runs the reference unmodified (runpy) but records time.process_time() next to each time.perf_counter()
 * call it makes (one before and one after its training loop), so its CPU time is known as well as its wall time.
 */
const NUMPY_WRAPPER = [
  'import json, runpy, sys, time',
  'calls = []',
  '_wall = time.perf_counter',
  'def clock():',
  '    calls.append((_wall(), time.process_time()))',
  '    return calls[-1][0]',
  'time.perf_counter = clock',
  'sys.argv = sys.argv[1:]',
  "runpy.run_path(sys.argv[0], run_name='__main__')",
  "print(json.dumps({'wall_s': calls[-1][0] - calls[0][0], 'cpu_s': calls[-1][1] - calls[0][1]} if len(calls) >= 2 else {}))",
].join('\n');

interface Row {
  engine: EngineId | 'numpy';
  label: string;
  status: WorkerResult['status'];
  message: string | null;
  backend: string | null;
  samples: number | null;
  subset: boolean;
  shrunk: string | null;
  samples_per_s: number | null;
  /** A run killed during its timed part: samples/s was below this. */
  samples_per_s_below: number | null;
  samples_per_s_runs: number[];
  vs_numpy: number | null;
  samples_per_cpu_s: number | null;
  vs_numpy_cpu: number | null;
  vs_best_tfjs: number | null;
  test_accuracy: number | null;
  train_loss: number | null;
  max_rss_mb: number | null;
  rss_end_mb: number | null;
  cpu_per_wall: number | null;
  child_seconds: number | null;
}

interface ConfigResult {
  config: BenchConfig;
  numpy_runs: NumpyRun[];
  /** The faster stock tfjs row; `bound` when it is only an upper bound (its run was killed), making the ratios lower bounds. */
  best_stock_tfjs: { engine: string; samples_per_s: number; bound: boolean } | null;
  rows: Row[];
}

interface Cli {
  configs: BenchConfig[];
  engines: readonly EngineId[];
  numpyRuns: number;
  budgetScale: number;
  resultsDir: string;
  write: boolean;
}

function parseCli(argv: string[]): Cli {
  const { values } = parseArgs({
    args: argv,
    options: {
      configs: { type: 'string' },
      engines: { type: 'string' },
      'numpy-runs': { type: 'string', default: '3' },
      'budget-scale': { type: 'string', default: '1' },
      'results-dir': { type: 'string', default: join(REPO, 'bench', 'results') },
      'no-write': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: node --import tsx bench/train.ts [--configs ID,...] [--engines ID,...] [--numpy-runs 3] [--budget-scale 1] [--results-dir DIR] [--no-write]\n' +
        `configs: ${CONFIGS.map((c) => c.id).join(', ')}\nengines: ${ENGINES.join(', ')}\n`,
    );
    process.exit(0);
  }
  const ids = values.configs
    ? values.configs
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '')
    : CONFIGS.map((c) => c.id);
  const unknown = ids.filter((id) => !CONFIGS.some((c) => c.id === id));
  if (unknown.length > 0)
    throw new Error(`--configs: unknown ${unknown.join(', ')} (known: ${CONFIGS.map((c) => c.id).join(', ')})`);
  const engineIds = values.engines
    ? values.engines
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '')
    : [...ENGINES];
  const unknownEngines = engineIds.filter((id) => !(ENGINES as readonly string[]).includes(id));
  if (unknownEngines.length > 0)
    throw new Error(`--engines: unknown ${unknownEngines.join(', ')} (known: ${ENGINES.join(', ')})`);
  const numpyRuns = Number(values['numpy-runs']);
  if (!Number.isInteger(numpyRuns) || numpyRuns < 1)
    throw new Error(`--numpy-runs: expected a whole number >= 1, got '${values['numpy-runs']}'`);
  const budgetScale = Number(values['budget-scale']);
  if (!(budgetScale > 0) || !Number.isFinite(budgetScale))
    throw new Error(`--budget-scale: expected a number > 0, got '${values['budget-scale']}'`);
  return {
    configs: CONFIGS.filter((c) => ids.includes(c.id)),
    engines: engineIds as EngineId[],
    numpyRuns,
    budgetScale,
    resultsDir: resolve(values['results-dir']),
    write: !values['no-write'],
  };
}

const log = (s: string): void => {
  process.stderr.write(`train-bench: ${s}\n`);
};
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const ratio = (a: number | null, b: number | null): number | null =>
  a === null || b === null || b === 0 ? null : Math.round((a / b) * 1000) / 1000;

// ---------------------------------------------------------------------------------------------------
// Children

interface ChildOutcome {
  result: WorkerResult;
  seconds: number;
  /** Killed during the timed part: samples/s was below this. */
  below: number | null;
}

function failed(engine: EngineId, status: WorkerResult['status'], message: string): WorkerResult {
  return {
    status,
    engine,
    backend: null,
    message,
    samples: null,
    subset: false,
    shrunk: null,
    seconds: null,
    samples_per_s: null,
    samples_per_s_runs: [],
    cpu_per_wall: null,
    samples_per_cpu_s: null,
    test_accuracy: null,
    train_loss: null,
    max_rss_mb: 0,
    rss_end_mb: 0,
  };
}

/** Runs one worker child; resolves with its result (a failed or killed child becomes an 'error' or 'timeout' result). */
function runWorker(
  cfg: WorkerConfig,
  kernels: string | undefined,
  timeoutSeconds: number,
  extraNodeArgs: string[] = [],
): Promise<ChildOutcome> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (kernels) env.EDGEFED_KERNELS = kernels;
  else delete env.EDGEFED_KERNELS;
  const t0 = performance.now();
  let timedStart: { at: number; samples: number } | null = null;
  return new Promise((done) => {
    const child = spawn(process.execPath, [...extraNodeArgs, '--import', 'tsx', WORKER, JSON.stringify(cfg)], {
      cwd: REPO,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: timeoutSeconds * 1000,
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = timedStart === null ? out.split('\n').find((l) => l.startsWith(TIMED_START_PREFIX)) : undefined;
      if (m)
        timedStart = {
          at: performance.now(),
          samples: (JSON.parse(m.slice(TIMED_START_PREFIX.length)) as { samples: number }).samples,
        };
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (e) =>
      done({ result: failed(cfg.engine, 'error', `spawn failed: ${e.message}`), seconds: 0, below: null }),
    );
    child.on('close', (code, signal) => {
      const now = performance.now();
      const seconds = (now - t0) / 1000;
      const line = out
        .split('\n')
        .reverse()
        .find((l) => l.startsWith(RESULT_PREFIX));
      if (line) {
        done({ result: JSON.parse(line.slice(RESULT_PREFIX.length)) as WorkerResult, seconds, below: null });
        return;
      }
      const started = timedStart as { at: number; samples: number } | null;
      if (signal && started) {
        const timed = (now - started.at) / 1000;
        const msg = `one timed pass over ${started.samples} samples had not finished after ${timed.toFixed(0)} s (child stopped at its ${timeoutSeconds} s limit)`;
        done({
          result: failed(cfg.engine, 'timeout', msg),
          seconds,
          below: Math.round((started.samples / timed) * 100) / 100,
        });
        return;
      }
      const tail = err.trim().split('\n').slice(-3).join(' | ');
      const why = signal
        ? `killed by ${signal} at the ${timeoutSeconds} s limit, before its timed part`
        : `exit code ${code}, no result line`;
      done({ result: failed(cfg.engine, 'error', `${why}${tail ? `: ${tail}` : ''}`), seconds, below: null });
    });
  });
}

/** One run of the NumPy reference (through NUMPY_WRAPPER, which adds its CPU time), or why it could not run. */
function runNumpy(c: BenchConfig, idxDir: string): NumpyRun | { error: string } {
  if (!c.numpy) return { error: 'no NumPy reference for this model' };
  if (!existsSync(NUMPY_REF)) return { error: `${NUMPY_REF} is missing` };
  const args = [
    '-c',
    NUMPY_WRAPPER,
    NUMPY_REF,
    idxDir,
    '--hidden',
    c.numpy.hidden,
    '--batch',
    String(c.batchSize),
    '--optimizer',
    c.numpy.optimizer,
    '--lr',
    String(c.optimizer.lr),
    '--seed',
    String(SEED),
  ];
  const r = spawnSync('python3', args, {
    encoding: 'utf8',
    env: { ...process.env, OPENBLAS_NUM_THREADS: '1' },
    timeout: CHILD_TIMEOUT_S * 1000,
  });
  if (r.error) return { error: `python3: ${r.error.message}` };
  const parsed = r.stdout.split('\n').flatMap((l) => {
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
  const ref = parsed.find((j) => typeof j.samples_per_s === 'number');
  if (!ref)
    return { error: `python3 exit ${r.status}: ${(r.stderr || r.stdout).trim().split('\n').slice(-1)[0] ?? ''}` };
  const clock = parsed.find((j) => typeof j.cpu_s === 'number') as { wall_s: number; cpu_s: number } | undefined;
  const n = 60000 * (typeof ref.epochs === 'number' ? ref.epochs : 1);
  return {
    samples_per_s: ref.samples_per_s as number,
    seconds: ref.seconds as number,
    test_accuracy: ref.test_accuracy as number,
    cpu_seconds: clock ? Math.round(clock.cpu_s * 1000) / 1000 : null,
    samples_per_cpu_s: clock && clock.cpu_s > 0 ? Math.round((n / clock.cpu_s) * 10) / 10 : null,
  };
}

/** The shared machine record, plus the NumPy this benchmark compares with and the load when it began. */
function machineInfo() {
  let numpy: string | null = null;
  try {
    numpy = execFileSync('python3', ['-c', 'import numpy, sys; print(numpy.__version__, sys.version.split()[0])'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    numpy = null;
  }
  const shared = machine();
  return { ...shared, numpy_python: numpy, load_average_start: shared.load_average };
}

// ---------------------------------------------------------------------------------------------------

function rowFrom(o: ChildOutcome): Row {
  const r = o.result;
  return {
    engine: r.engine,
    label: ENGINE_LABEL[r.engine],
    status: r.status,
    message: r.message,
    backend: r.backend,
    samples: r.samples,
    subset: r.subset,
    shrunk: r.shrunk,
    samples_per_s: r.samples_per_s,
    samples_per_s_below: o.below,
    samples_per_s_runs: r.samples_per_s_runs,
    vs_numpy: null,
    samples_per_cpu_s: r.samples_per_cpu_s,
    vs_numpy_cpu: null,
    vs_best_tfjs: null,
    test_accuracy: r.test_accuracy,
    train_loss: r.train_loss,
    max_rss_mb: r.max_rss_mb > 0 ? r.max_rss_mb : null,
    rss_end_mb: r.rss_end_mb > 0 ? r.rss_end_mb : null,
    cpu_per_wall: r.cpu_per_wall,
    child_seconds: Math.round(o.seconds * 10) / 10,
  };
}

async function benchConfig(c: BenchConfig, cli: Cli, idxDir: string): Promise<ConfigResult> {
  const plans = (c.model === 'cnn' ? CNN_PLANS : DENSE_PLANS).filter((p) => cli.engines.includes(p.engine));
  const rows: Row[] = [];
  const numpy: NumpyRun[] = [];
  let numpyError: string | null = c.numpy ? null : 'no NumPy reference for this model';
  const numpyOnce = (): void => {
    if (numpyError !== null || numpy.length >= cli.numpyRuns) return;
    const r = runNumpy(c, idxDir);
    if ('error' in r) {
      numpyError = r.error;
      log(`${c.id} numpy: ${r.error}`);
    } else {
      numpy.push(r);
      log(
        `${c.id} numpy run ${numpy.length}: ${r.samples_per_s} samples/s (${r.samples_per_cpu_s ?? '?'} per CPU-s), test acc ${r.test_accuracy}`,
      );
    }
  };
  // NumPy runs are spread over the config's measurements (first, after the native engine, last) so that
  // drifting machine load hits both sides alike.
  numpyOnce();
  for (const [i, plan] of plans.entries()) {
    const cfg: WorkerConfig = {
      mode: 'throughput',
      engine: plan.engine,
      model: c.model,
      optimizer: c.optimizer,
      batchSize: c.batchSize,
      samples: plan.samples,
      warmupBatches: plan.warmupBatches,
      warmupSamples: plan.warmupSamples,
      probeBatches: plan.probeBatches,
      budgetSeconds: plan.budgetSeconds * cli.budgetScale,
      repeats: plan.repeats,
      seed: SEED,
    };
    const outcome = await runWorker(cfg, plan.kernels, (plan.timeoutSeconds ?? CHILD_TIMEOUT_S) * cli.budgetScale);
    const r = outcome.result;
    rows.push(rowFrom(outcome));
    log(
      `${c.id} ${plan.engine}: ${r.status}${r.samples_per_s !== null ? `, ${r.samples_per_s} samples/s on ${r.samples}` : ''}` +
        `${outcome.below !== null ? `, < ${outcome.below} samples/s` : ''}${r.test_accuracy !== null ? `, test acc ${r.test_accuracy}` : ''}` +
        `${r.message ? ` (${r.message})` : ''}, child ${outcome.seconds.toFixed(1)} s`,
    );
    if (i === 0) numpyOnce();
  }
  while (numpy.length < cli.numpyRuns && numpyError === null) numpyOnce();

  const numpyMedian = numpy.length > 0 ? median(numpy.map((r) => r.samples_per_s)) : null;
  const cpuRates = numpy.flatMap((r) => (r.samples_per_cpu_s === null ? [] : [r.samples_per_cpu_s]));
  const numpyCpuMedian = cpuRates.length > 0 ? median(cpuRates) : null;
  const stockRate = (r: Row): number | null => r.samples_per_s ?? r.samples_per_s_below;
  const stock = rows.filter((r) => STOCK_TFJS.includes(r.engine) && stockRate(r) !== null);
  const best = stock.length > 0 ? stock.reduce((a, b) => (stockRate(b)! > stockRate(a)! ? b : a)) : null;
  if (c.numpy) {
    const medianRun = numpy.find((r) => r.samples_per_s === numpyMedian) ?? numpy[0];
    rows.push({
      engine: 'numpy',
      label: ENGINE_LABEL.numpy,
      status: numpy.length > 0 ? 'ok' : 'unavailable',
      message: numpy.length > 0 ? null : numpyError,
      backend: numpy.length > 0 ? `numpy, OpenBLAS 1 thread, median of ${numpy.length}` : null,
      samples: numpy.length > 0 ? 60000 : null,
      subset: false,
      shrunk: null,
      samples_per_s: numpyMedian,
      samples_per_s_below: null,
      samples_per_s_runs: numpy.map((r) => r.samples_per_s),
      vs_numpy: null,
      samples_per_cpu_s: numpyCpuMedian,
      vs_numpy_cpu: null,
      vs_best_tfjs: null,
      test_accuracy: medianRun?.test_accuracy ?? null,
      train_loss: null,
      max_rss_mb: null,
      rss_end_mb: null,
      cpu_per_wall: medianRun?.cpu_seconds ? Math.round((medianRun.cpu_seconds / medianRun.seconds) * 100) / 100 : null,
      child_seconds: null,
    });
  }
  for (const r of rows) {
    r.vs_numpy = ratio(r.samples_per_s, numpyMedian);
    r.vs_numpy_cpu = ratio(r.samples_per_cpu_s, numpyCpuMedian);
    r.vs_best_tfjs = ratio(r.samples_per_s, best ? stockRate(best) : null);
  }
  return {
    config: c,
    numpy_runs: numpy,
    best_stock_tfjs: best
      ? { engine: best.engine, samples_per_s: stockRate(best)!, bound: best.samples_per_s === null }
      : null,
    rows,
  };
}

// ---------------------------------------------------------------------------------------------------
// Output

const fmtRate = (v: number | null): string =>
  v === null ? '-' : v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(v >= 10 ? 1 : 2);
const fmtRatio = (v: number | null): string =>
  v === null ? '-' : v >= 10 ? `${v.toFixed(1)}x` : v >= 0.1 ? `${v.toFixed(2)}x` : `${v.toFixed(3)}x`;
const fmtMb = (v: number | null): string => (v === null ? '-' : Math.round(v).toString());

function samplesText(r: Row): string {
  if (r.samples === null) return '-';
  return r.subset ? `${r.samples.toLocaleString('en-US')} (subset)` : `${r.samples.toLocaleString('en-US')} (epoch)`;
}

function statusText(r: Row): string {
  if (r.status === 'ok') return r.shrunk ? 'shrunk to time budget' : '';
  const what = { unsupported: 'not supported', unavailable: 'unavailable', timeout: 'timed out', error: 'error' }[
    r.status
  ];
  return `${what}: ${r.message ?? ''}`;
}

const HEADER = [
  'Config',
  'Engine',
  'Samples timed',
  'samples/s',
  'vs NumPy',
  'samples/CPU-s',
  'vs NumPy (CPU)',
  'vs best stock tfjs',
  'Test acc',
  'Peak RSS MB',
  'RSS end MB',
  'CPU/wall',
  'Note',
];
/** Right-aligned (numeric) columns. */
const NUMERIC = new Set([3, 4, 5, 6, 7, 8, 9, 10, 11]);

function tableRows(results: ConfigResult[]): string[][] {
  return results.flatMap((res) =>
    res.rows.map((r) => {
      const bestIsBound = res.best_stock_tfjs?.bound ?? false;
      const vsTfjs = r.vs_best_tfjs === null ? '-' : `${bestIsBound ? '> ' : ''}${fmtRatio(r.vs_best_tfjs)}`;
      return [
        res.config.id,
        r.backend?.includes('OpenBLAS core ') ? `${r.label} [${r.backend.split('OpenBLAS core ')[1]}]` : r.label,
        samplesText(r),
        r.samples_per_s_below !== null ? `< ${fmtRate(r.samples_per_s_below)}` : fmtRate(r.samples_per_s),
        fmtRatio(r.vs_numpy),
        fmtRate(r.samples_per_cpu_s),
        fmtRatio(r.vs_numpy_cpu),
        vsTfjs,
        r.status !== 'ok' ? '-' : r.test_accuracy === null ? 'n/a' : r.test_accuracy.toFixed(4),
        fmtMb(r.max_rss_mb),
        fmtMb(r.rss_end_mb),
        r.cpu_per_wall === null ? '-' : r.cpu_per_wall.toFixed(2),
        statusText(r),
      ];
    }),
  );
}

function textTable(rows: string[][]): string {
  const all = [HEADER, ...rows];
  const widths = HEADER.map((_, i) => Math.max(...all.map((r) => (i === HEADER.length - 1 ? 0 : r[i].length))));
  const line = (r: string[]): string =>
    r
      .map((v, i) => (i === r.length - 1 ? v : NUMERIC.has(i) ? v.padStart(widths[i]) : v.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(HEADER), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function mdTable(rows: string[][]): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  return [
    `| ${HEADER.join(' | ')} |`,
    `|${HEADER.map((_, i) => (NUMERIC.has(i) ? '---:' : '---')).join('|')}|`,
    ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}

interface NodeShareReport {
  status: WorkerResult['status'];
  message: string | null;
  samples: number | null;
  samples_per_s: number | null;
  max_rss_mb: number;
  rss_end_mb: number;
  memory: WorkerResult['node_share'] | null;
  target_mb: number;
}

function nodeShareText(n: NodeShareReport): string {
  if (n.status !== 'ok' || !n.memory)
    return `Node share (seed MLP, 6000 rows, native kernels): ${n.status}: ${n.message ?? ''}`;
  const m = n.memory;
  const training = m.max_rss_training_mb;
  return (
    `Node share (seed MLP, Adam, ${n.samples} rows = 1/10 of MNIST, native kernels, one epoch at ${fmtRate(n.samples_per_s)} samples/s): ` +
    `RSS at start (node + tsx) ${m.rss_start_mb} MB, after importing makeTrainer (engine + tfjs) ${m.rss_after_imports_mb} MB; ` +
    `maxRSS incl. loading all of MNIST ${m.max_rss_with_full_load_mb} MB; ` +
    `RSS after subset + gc ${m.rss_after_share_and_gc_mb} MB (gc ${m.gc_available ? 'run' : 'NOT available'}); ` +
    `peak RSS during training ${training === null ? 'n/a (could not reset the high-water mark)' : `${training} MB`}; RSS at end ${m.rss_end_mb} MB ` +
    `(V8 heap ${m.v8_heap_used_end_mb} MB, array buffers ${m.array_buffers_end_mb} MB). Target <= ${n.target_mb} MB: ` +
    `${training !== null && training <= n.target_mb ? 'met' : training !== null ? 'NOT met' : 'see RSS at end'} for the training phase` +
    `${m.rss_end_mb <= n.target_mb ? ', met at the end' : ', NOT met at the end'}; the whole-process maxRSS (${m.max_rss_with_full_load_mb} MB) ` +
    `${m.max_rss_with_full_load_mb <= n.target_mb ? 'meets it too' : 'does not, because of the full-MNIST load used to cut the share'}. ` +
    `Importing makeTrainer alone added ${Math.round(m.rss_after_imports_mb - m.rss_start_mb)} MB (make-trainer.ts loads tfjs only for ` +
    'models the engine cannot run).'
  );
}

function markdown(report: Report, rows: string[][]): string {
  const m = report.machine;
  const cfgLines = report.results.map((r) => `- \`${r.config.id}\`: ${r.config.label}`);
  return [
    '# Training throughput on one core: MNIST, one epoch',
    '',
    `Run ${report.date} on ${m.cpu_model} (${m.cpu_cores} cores, shared with other jobs; load average ${m.load_average_start.join(' / ')} at the start, ` +
      `${report.load_average_end.join(' / ')} at the end), ${m.platform}, Node ${m.node}, NumPy/Python ${m.numpy_python ?? 'n/a'}. ` +
      `CPU vector level ${m.cpu_vector}; EdgeFed's OpenBLAS core ${m.openblas?.core ?? 'native kernels unavailable'}; OPENBLAS_CORETYPE ` +
      `${m.openblas_coretype_env === null ? 'unset' : `= ${m.openblas_coretype_env} (NumPy's OpenBLAS reads it too)`}. ` +
      `Git ${report.git_commit?.slice(0, 12) ?? '?'}${report.git_src_dirty ? ' (src/ had uncommitted changes)' : ''}. Total bench time ${Math.round(report.total_seconds)} s.`,
    '',
    'Reproduce: `npm run bench:train` (= `node --import tsx bench/train.ts`); all numbers are in `train.json`.',
    '',
    ...cfgLines,
    '',
    mdTable(rows),
    '',
    nodeShareText(report.node_share),
    '',
    '## Method',
    '',
    'Each (config, engine) pair runs in its own child process (`bench/train-worker.ts`), one after the other in a single run, so every peak RSS ' +
      'belongs to one engine and all engines see the same machine noise. A child loads MNIST (60,000 train / 10,000 test, pixels in [0, 1]; ' +
      'not timed), builds the model with Glorot-uniform weights from seed 1, warms the engine up with a few batches, times a few more batches to ' +
      'check the run fits its time budget (a run that would not is shrunk and marked "shrunk to time budget"), then times one epoch from the ' +
      'initial weights: the shuffled epoch of `EngineTrainer.train` / `TfjsTrainer.train`, or for stock tfjs `model.fit(x, y, {batchSize, ' +
      'epochs: 1, shuffle: true})` on tensors built before the clock starts, compiled with `sparseCategoricalCrossentropy` and no metrics. ' +
      'EdgeFed engine rows on dense models train the full epoch (native kernels: three timed epochs in the same child, median shown) and report ' +
      'accuracy on the 10,000 test images; rows marked "subset" train only the first N training images, so their accuracy is n/a (the cost per ' +
      "sample does not depend on N). EdgeFed engines go through `makeTrainer(spec, 'engine')` with `EDGEFED_KERNELS` = native / wasm / js, so " +
      'whatever the engine can train is measured (the CNN runs on the engine since it learnt convolutions; a "not supported" row quotes the error ' +
      'otherwise); with the default budgets the CNN rows are subsets (`--budget-scale 8` lets the native engine try a full CNN epoch). Stock ' +
      "tfjs 4.22 runs with `PROD` set, on the wasm backend (non-threaded SIMD binary, `setWasmPaths` to the package's dist directory; it has no " +
      'Conv2DBackpropFilter, so the CNN fails there) and on the cpu backend, whose stock Conv2DBackpropFilter is so slow on the CNN that it ' +
      'times one batch of 32; if the child has to be stopped at its time limit, the row gives an upper bound (samples / seconds elapsed in the ' +
      'timed part) and ratios against it are lower bounds (">"). EdgeFed\'s TfjsTrainer (CNN only) is tfjs cpu with EdgeFed\'s replacement for ' +
      'that kernel. The NumPy reference (`../shared/bench/np_mlp_ref.py`, OpenBLAS on one thread, He-normal init, its own shuffling) runs ' +
      `${report.numpy_runs_per_config} times per dense config, interleaved with the engines (before, after the native engine, after the rest); ` +
      'its median is the "vs NumPy" base. It is run unmodified through `runpy` by a small wrapper that also records `time.process_time()` at ' +
      'the two `time.perf_counter()` calls bracketing its training loop, which gives its CPU time. samples/CPU-s divides the samples by the ' +
      'process CPU time (user + system) of the timed part, for every engine, and "vs NumPy (CPU)" compares those: on a machine shared with ' +
      'other jobs (see the load average above) wall-clock rates swing by 2x from run to run while CPU-time rates hold much better, so the CPU ' +
      'ratio is the steadier one. CPU/wall is that CPU time over wall time (about 1.0 = a whole core; lower = the core was taken away). ' +
      '"vs best stock tfjs" divides by the faster of the two stock tfjs rows (wall clock). Peak RSS is `process.resourceUsage().maxRSS` of the ' +
      'child at its end, which includes Node, tsx, the tfjs modules that `makeTrainer` imports and the whole of MNIST as float32 (about 220 MB); ' +
      '"RSS end" is the resident size when the child finishes.',
    '',
    'The node-share child loads MNIST, keeps a seeded random 6000 rows with `subset()`, drops the full arrays and calls `global.gc` (it runs ' +
      'with `--expose-gc`); only then does it build the trainer and train one epoch of the seed MLP (Adam lr 0.001, B=32) with native kernels. ' +
      'maxRSS is a high-water mark, so the child reads it before training (it includes the transient full-MNIST load, which a real node that ' +
      "receives only its share never pays), then resets the kernel's high-water mark (`/proc/self/clear_refs` = 5, Linux) and reads maxRSS again " +
      'after training (peak of the training phase); RSS at the end is reported as well. That is the figure to hold against the <= 150 MB target.',
    '',
  ].join('\n');
}

interface Report {
  bench: 'train';
  date: string;
  machine: ReturnType<typeof machineInfo>;
  load_average_end: number[];
  git_commit: string | null;
  git_src_dirty: boolean | null;
  total_seconds: number;
  numpy_runs_per_config: number;
  budget_scale: number;
  numpy_script: string;
  configs: BenchConfig[];
  plans: { dense: EnginePlan[]; cnn: EnginePlan[] };
  results: ConfigResult[];
  node_share: NodeShareReport;
}

async function main(): Promise<void> {
  const args = parseCli(process.argv.slice(2));
  const start = performance.now();
  const machine = machineInfo();
  const idxDir = mnistDir();
  printEnvironment('bench:train', machine);
  log(`configs ${args.configs.map((c) => c.id).join(', ')}`);

  const results: ConfigResult[] = [];
  for (const c of args.configs) results.push(await benchConfig(c, args, idxDir));

  log('node share: seed MLP on 6000 rows with native kernels, --expose-gc');
  const share = await runWorker(
    {
      mode: 'node-share',
      engine: 'edgefed-native',
      model: 'mlp',
      optimizer: { name: 'adam', lr: 0.001 },
      batchSize: 32,
      samples: 6000,
      warmupBatches: 5,
      probeBatches: 0,
      budgetSeconds: 60,
      repeats: 1,
      seed: SEED,
    },
    'native',
    CHILD_TIMEOUT_S,
    ['--expose-gc'],
  );
  const nodeShare: NodeShareReport = {
    status: share.result.status,
    message: share.result.message,
    samples: share.result.samples,
    samples_per_s: share.result.samples_per_s,
    max_rss_mb: share.result.max_rss_mb,
    rss_end_mb: share.result.rss_end_mb,
    memory: share.result.node_share ?? null,
    target_mb: 150,
  };

  const report: Report = {
    bench: 'train',
    date: new Date().toISOString(),
    machine,
    load_average_end: loadavg().map((v) => Math.round(v * 100) / 100),
    git_commit: gitCommit(),
    git_src_dirty: gitSrcDirty(),
    total_seconds: Math.round((performance.now() - start) / 100) / 10,
    numpy_runs_per_config: args.numpyRuns,
    budget_scale: args.budgetScale,
    numpy_script: relative(REPO, NUMPY_REF),
    configs: args.configs,
    plans: { dense: DENSE_PLANS, cnn: CNN_PLANS },
    results,
    node_share: nodeShare,
  };
  const rows = tableRows(results);
  process.stdout.write(`${textTable(rows)}\n\n${nodeShareText(nodeShare)}\n`);
  if (args.write) {
    mkdirSync(args.resultsDir, { recursive: true });
    const put = (name: string, text: string): void => {
      writeAtomic(join(args.resultsDir, name), text);
    };
    put('train.json', `${JSON.stringify(report, null, 2)}\n`);
    put('train.md', markdown(report, rows));
    log(`wrote ${relative(REPO, join(args.resultsDir, 'train.json'))} and train.md (${report.total_seconds} s in all)`);
  }
}

await main();
