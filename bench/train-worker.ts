/**
 * One measurement of bench/train.ts, in its own process so that its peak RSS belongs to one engine.
 *
 * Run:  node --import tsx bench/train-worker.ts '<WorkerConfig as JSON>'
 * The parent sets EDGEFED_KERNELS for the engine runs. The result is printed as ONE stdout line starting
 * with RESULT_PREFIX (anything else a library prints is ignored); failures are results too (status
 * 'unsupported' / 'unavailable' / 'error' with a message), so the parent can always tabulate them.
 *
 * Data loading, subsetting and tensor creation are not timed. Every engine is warmed up with a few
 * batches first (JIT, wasm compilation, BLAS buffers), then a few more batches are timed to estimate the
 * speed; if the requested samples would take longer than the time budget, the run shrinks to what fits
 * (reported as a subset, accuracy not measured).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import type * as TfNs from '@tensorflow/tfjs';
import { loadMnist } from '../src/data/mnist.js';
import { subset, type Dataset } from '../src/data/types.js';
import { builtinModel, initialWeights, tensorSpecs, asDenseNet, type ModelSpec } from '../src/model/spec.js';
import type { LocalTrainer, TrainConfig } from '../src/model/trainer.js';
import type { Kernels } from '../src/nn/kernels.js';
import { Rng } from '../src/core/rng.js';

export const RESULT_PREFIX = 'TRAIN_BENCH_RESULT ';
/** Printed (with the sample count) just before the timed epoch starts, so a parent that has to kill a slow child knows a bound. */
export const TIMED_START_PREFIX = 'TRAIN_BENCH_TIMED_START ';

/** Engines a worker can run. 'edgefed-tfjs' is EdgeFed's own TfjsTrainer (what it uses for convolutions today). */
export const ENGINES = [
  'edgefed-native',
  'edgefed-wasm',
  'edgefed-js',
  'edgefed-tfjs',
  'tfjs-wasm',
  'tfjs-cpu',
] as const;
export type EngineId = (typeof ENGINES)[number];
export type BenchModel = 'mlp' | '2nn' | 'cnn';

export interface WorkerConfig {
  /** 'throughput': samples/s of one epoch (or a subset); 'node-share': RSS of a node holding 1/10 of MNIST. */
  mode: 'throughput' | 'node-share';
  engine: EngineId;
  model: BenchModel;
  optimizer: { name: 'sgd' | 'adam'; lr: number };
  batchSize: number;
  /** Training samples to time: null = the full 60,000 (then the 10,000 test images are evaluated). */
  samples: number | null;
  /** Untimed batches before anything is timed. */
  warmupBatches: number;
  /** Instead: one untimed batch of this many samples (for engines where a batch takes a minute). */
  warmupSamples?: number;
  /** Timed batches used only to estimate the speed against the budget. */
  probeBatches: number;
  /** Largest timed training time wanted (all repeats together); the sample count shrinks to fit. */
  budgetSeconds: number;
  /** Timed epochs, each from the same initial weights; the median is reported. */
  repeats: number;
  seed: number;
}

/** 'timeout' is set by the parent when it had to kill the child (see TIMED_START_PREFIX). */
export type WorkerStatus = 'ok' | 'unsupported' | 'unavailable' | 'error' | 'timeout';

export interface WorkerResult {
  status: WorkerStatus;
  engine: EngineId;
  /** Kernel set or backend actually used (e.g. 'native-openblas', 'js', 'tfjs wasm'). */
  backend: string | null;
  message: string | null;
  samples: number | null;
  /** samples < 60000: a subset (requested, or shrunk to the time budget). */
  subset: boolean;
  /** Why the run is a subset, when it was shrunk to the budget. */
  shrunk: string | null;
  /** Median over the repeats. */
  seconds: number | null;
  samples_per_s: number | null;
  /** samples/s of every repeat, in order. */
  samples_per_s_runs: number[];
  /** Process CPU seconds over the timed section divided by its wall seconds (about 1 on one core). */
  cpu_per_wall: number | null;
  /** Samples per second of process CPU time (user + system) in the median repeat: less sensitive to a busy machine. */
  samples_per_cpu_s: number | null;
  test_accuracy: number | null;
  train_loss: number | null;
  /** process.resourceUsage().maxRSS: the whole process's high-water mark, MB. */
  max_rss_mb: number;
  /** process.memoryUsage().rss when the worker finishes, MB. */
  rss_end_mb: number;
  /** node-share mode only. */
  node_share?: NodeShareMemory;
}

export interface NodeShareMemory {
  /** Node + tsx + this worker's own imports (data loader, model specs), before the trainer modules. */
  rss_start_mb: number;
  /** After importing make-trainer (the dense engine, kernels and, through the tfjs trainer, all of tfjs). */
  rss_after_imports_mb: number;
  /** maxRSS before the peak was reset: includes loading all of MNIST to take the share. */
  max_rss_with_full_load_mb: number;
  rss_after_share_and_gc_mb: number;
  gc_available: boolean;
  /** maxRSS over training only (the high-water mark was reset via /proc/self/clear_refs after the gc); null if it could not be reset. */
  max_rss_training_mb: number | null;
  rss_end_mb: number;
  v8_heap_used_end_mb: number;
  array_buffers_end_mb: number;
}

const TRAIN_SIZE = 60000;
const EVAL_BATCH = 512;
const MB = 1024 * 1024;
const REPO = dirname(dirname(fileURLToPath(import.meta.url)));
const WASM_KERNELS = `${REPO}/src/nn/kernels-wasm-node.ts`;

const mb = (bytes: number): number => Math.round((bytes / MB) * 10) / 10;
const maxRssMb = (): number => Math.round((process.resourceUsage().maxRSS / 1024) * 10) / 10; // maxRSS is in KiB
const message = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split('\n')[0];

class Unsupported extends Error {}
class Unavailable extends Error {}

/** One training engine behind a common face: warm up, time some samples, evaluate. */
interface Runner {
  backend: string;
  /** Training of `batches` batches of the data (warm-up and speed probe). */
  steps(data: Dataset, batches: number): Promise<void>;
  /** One timed epoch over data from the initial weights; only the training itself is inside the clock. */
  epoch(data: Dataset): Promise<Timed>;
  accuracy(test: Dataset): Promise<number>;
  dispose(): void;
}

interface Timed {
  /** Mean training loss of the epoch, when the engine reports it. */
  loss: number | null;
  seconds: number;
  /** Process CPU seconds (user + system) over the same span. */
  cpuSeconds: number;
}

async function timed(fn: () => Promise<number | null>): Promise<Timed> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const loss = await fn();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { loss, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

function specFor(c: WorkerConfig): ModelSpec {
  const spec = builtinModel(c.model, [28, 28, 1], 10);
  return { ...spec, optimizer: { name: c.optimizer.name, lr: c.optimizer.lr } };
}

// ---------------------------------------------------------------------------------------------------
// EdgeFed trainers (dense engine with native / JS / WASM kernels, or EdgeFed's TfjsTrainer)

/** The wasm kernels, straight from src/nn/kernels-wasm-node.ts (found at run time: it may not exist yet). */
async function loadWasmKernels(): Promise<Kernels> {
  if (!existsSync(WASM_KERNELS)) throw new Unavailable('src/nn/kernels-wasm-node.ts does not exist yet');
  let mod: Record<string, unknown>;
  try {
    mod = (await import(WASM_KERNELS)) as Record<string, unknown>;
  } catch (e) {
    throw new Unavailable(`src/nn/kernels-wasm-node.ts failed to import: ${message(e)}`);
  }
  const load = mod.loadWasmKernelsNode;
  if (typeof load !== 'function')
    throw new Unavailable('src/nn/kernels-wasm-node.ts does not export loadWasmKernelsNode');
  let kernels: Kernels | null;
  try {
    kernels = await (load as () => Promise<Kernels | null> | Kernels | null)();
  } catch (e) {
    throw new Unavailable(`loadWasmKernelsNode() failed: ${message(e)}`);
  }
  if (!kernels) {
    const why =
      typeof mod.wasmKernelsNodeError === 'function' ? (mod.wasmKernelsNodeError as () => string | null)() : null;
    throw new Unavailable(`loadWasmKernelsNode() gave no kernels: ${why ?? 'unknown reason'}`);
  }
  return kernels;
}

/** The kernels the engine gets for this process's EDGEFED_KERNELS (selectKernels where it exists, else getKernels). */
async function kernelsFromEnv(): Promise<Kernels> {
  const select = (await import('../src/nn/kernels-select.js')) as {
    selectKernels?: () => Promise<Kernels>;
    getKernels: () => Kernels;
  };
  return select.selectKernels ? select.selectKernels() : select.getKernels();
}

async function edgefedRunner(c: WorkerConfig, spec: ModelSpec): Promise<Runner> {
  const { makeTrainer } = await import('../src/model/make-trainer.js');
  let trainer: LocalTrainer;
  let backend: string;
  if (c.engine === 'edgefed-tfjs') {
    trainer = await makeTrainer(spec, 'tfjs');
    const { tf } = await import('../src/model/tfjs.js');
    backend = `tfjs ${tf.version.tfjs} ${tf.getBackend()} (EdgeFed TfjsTrainer)`;
  } else {
    let kernels: Kernels;
    let direct = false;
    if (c.engine === 'edgefed-wasm') {
      const wasm = await loadWasmKernels();
      try {
        kernels = await kernelsFromEnv(); // EDGEFED_KERNELS=wasm, where kernels-select takes it
      } catch {
        kernels = wasm; // kernels-select does not take 'wasm': hand the kernels to the engine directly
        direct = true;
      }
    } else {
      try {
        kernels = await kernelsFromEnv(); // EDGEFED_KERNELS=native|js, set by the parent
      } catch (e) {
        throw new Unavailable(message(e));
      }
    }
    if (!direct) {
      try {
        trainer = await makeTrainer(spec, 'engine'); // picks up whatever models the engine learns to train
      } catch (e) {
        throw new Unsupported(message(e));
      }
    } else {
      const dense = asDenseNet(spec);
      if (dense === null)
        throw new Unsupported(`the dense engine cannot train model ${spec.name} (wasm kernels passed directly)`);
      const { EngineTrainer } = await import('../src/model/engine-trainer.js');
      trainer = new EngineTrainer(dense, kernels);
    }
    backend = direct
      ? `${kernels.name} (EngineTrainer built directly: kernels-select does not take 'wasm')`
      : kernels.name;
    if (kernels.name.startsWith('native')) {
      const { nativeKernelsInfo } = await import('../src/nn/kernels-native.js');
      backend += `, OpenBLAS core ${nativeKernelsInfo()?.core ?? 'unknown'}`;
    }
  }
  const w0 = initialWeights(tensorSpecs(spec), new Rng(c.seed));
  const cfg: TrainConfig = { epochs: 1, batchSize: c.batchSize, optimizer: spec.optimizer, proxMu: 0, seed: c.seed };
  let trained = w0;
  return {
    backend,
    async steps(data, batches) {
      await trainer.train(w0, data, { ...cfg, maxSteps: batches });
    },
    epoch: (data) =>
      timed(async () => {
        const out = await trainer.train(w0, data, cfg);
        trained = out.weights;
        return out.metrics.loss;
      }),
    async accuracy(test) {
      return (await trainer.evaluate(trained, test)).accuracy;
    },
    dispose: () => trainer.dispose(),
  };
}

// ---------------------------------------------------------------------------------------------------
// Stock tfjs 4.22: model.compile + model.fit, on the wasm or cpu backend

async function tfjsRunner(c: WorkerConfig, spec: ModelSpec): Promise<Runner> {
  const tf: typeof TfNs = await import('@tensorflow/tfjs');
  tf.env().set('PROD', true); // no debug checks, no banner about tfjs-node
  if (c.engine === 'tfjs-wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const require = createRequire(import.meta.url);
    // setWasmPaths wants a directory prefix ending in '/'; one core: the non-threaded SIMD binary.
    wasm.setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm'))}/`);
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    if (!(await tf.setBackend('wasm'))) throw new Unavailable("tf.setBackend('wasm') failed");
  } else {
    await tf.setBackend('cpu');
  }
  await tf.ready();
  const { buildTfjsModel, setModelWeights } = await import('../src/model/tfjs.js');
  const model = await buildTfjsModel(spec);
  const w0 = initialWeights(tensorSpecs(spec), new Rng(c.seed));
  const compile = (): void => {
    const optimizer =
      c.optimizer.name === 'adam' ? tf.train.adam(c.optimizer.lr, 0.9, 0.999, 1e-7) : tf.train.sgd(c.optimizer.lr);
    model.compile({ optimizer, loss: 'sparseCategoricalCrossentropy' });
  };
  const tensors = (d: Dataset, n: number): [TfNs.Tensor, TfNs.Tensor] => [
    tf.tensor(d.x.subarray(0, n * 784), [n, ...spec.inputShape], 'float32'),
    tf.tensor2d(Float32Array.from(d.y.subarray(0, n)), [n, 1], 'float32'),
  ];
  const fit = async (d: Dataset, n: number): Promise<number | null> => {
    const [x, y] = tensors(d, n);
    try {
      const h = await model.fit(x, y, { batchSize: c.batchSize, epochs: 1, shuffle: true, verbose: 0 });
      const loss = h.history.loss?.[0];
      return typeof loss === 'number' ? loss : null;
    } finally {
      tf.dispose([x, y]);
    }
  };
  setModelWeights(model, w0);
  compile();
  return {
    backend: `tfjs ${tf.version.tfjs} ${tf.getBackend()} (model.fit)`,
    async steps(data, batches) {
      await fit(data, Math.min(data.n, batches * c.batchSize));
    },
    async epoch(data) {
      // Fresh start for the timed epoch: initial weights and a new optimizer (the warm-up moved both).
      setModelWeights(model, w0);
      compile();
      const [x, y] = tensors(data, data.n); // built before the clock starts, like the engine's arrays
      try {
        return await timed(async () => {
          const h = await model.fit(x, y, { batchSize: c.batchSize, epochs: 1, shuffle: true, verbose: 0 });
          const loss = h.history.loss?.[0];
          return typeof loss === 'number' ? loss : null;
        });
      } finally {
        tf.dispose([x, y]);
      }
    },
    async accuracy(test) {
      let correct = 0;
      for (let s = 0; s < test.n; s += EVAL_BATCH) {
        const m = Math.min(EVAL_BATCH, test.n - s);
        const pred = tf.tidy(() => {
          const x = tf.tensor(test.x.subarray(s * 784, (s + m) * 784), [m, ...spec.inputShape], 'float32');
          return tf.argMax(model.predict(x) as TfNs.Tensor, -1);
        });
        const p = (await pred.data()) as Int32Array;
        pred.dispose();
        for (let i = 0; i < m; i++) if (p[i] === test.y[s + i]) correct++;
      }
      return correct / test.n;
    },
    dispose: () => model.dispose(),
  };
}

// ---------------------------------------------------------------------------------------------------

function emptyResult(c: WorkerConfig, status: WorkerStatus, msg: string | null): WorkerResult {
  return {
    status,
    engine: c.engine,
    backend: null,
    message: msg,
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
    max_rss_mb: maxRssMb(),
    rss_end_mb: mb(process.memoryUsage().rss),
  };
}

const round = (v: number, digits: number): number => Math.round(v * 10 ** digits) / 10 ** digits;

/** The median repeat (by time) stands for the run; every repeat's samples/s is listed too. */
function timing(
  n: number,
  runs: Timed[],
): Pick<
  WorkerResult,
  'seconds' | 'samples_per_s' | 'samples_per_s_runs' | 'cpu_per_wall' | 'samples_per_cpu_s' | 'train_loss'
> {
  const t = [...runs].sort((a, b) => a.seconds - b.seconds)[Math.floor((runs.length - 1) / 2)];
  return {
    seconds: round(t.seconds, 3),
    samples_per_s: round(n / t.seconds, 1),
    samples_per_s_runs: runs.map((r) => round(n / r.seconds, 1)),
    cpu_per_wall: round(t.cpuSeconds / t.seconds, 2),
    samples_per_cpu_s: round(n / t.cpuSeconds, 1),
    train_loss: t.loss === null ? null : round(t.loss, 4),
  };
}

async function makeRunner(c: WorkerConfig, spec: ModelSpec): Promise<Runner> {
  return c.engine.startsWith('edgefed-') ? edgefedRunner(c, spec) : tfjsRunner(c, spec);
}

async function throughput(c: WorkerConfig): Promise<WorkerResult> {
  const spec = specFor(c);
  const runner = await makeRunner(c, spec); // before the data: an engine that cannot run the model fails fast
  try {
    const data = loadMnist();
    if (c.warmupSamples)
      await runner.steps(
        subset(
          data.train,
          Int32Array.from({ length: c.warmupSamples }, (_, i) => i),
        ),
        1,
      );
    else await runner.steps(data.train, c.warmupBatches);
    // Estimate the speed on a few more batches, and shrink the run to the time budget if needed
    // (probeBatches 0: no probe, the requested samples are run as they are).
    const wanted = c.samples ?? TRAIN_SIZE;
    let estimate = Infinity;
    if (c.probeBatches > 0) {
      const probeStart = performance.now();
      await runner.steps(data.train, c.probeBatches);
      estimate = (c.probeBatches * c.batchSize) / Math.max((performance.now() - probeStart) / 1000, 1e-6);
    }
    let n = wanted;
    let shrunk: string | null = null;
    if ((wanted * c.repeats) / estimate > c.budgetSeconds) {
      n = Math.min(
        wanted,
        Math.max(c.batchSize, Math.floor((estimate * c.budgetSeconds) / c.repeats / c.batchSize) * c.batchSize),
      );
      shrunk =
        `shrunk from ${wanted} to ${n} samples: at ~${Math.round(estimate)} samples/s, ${c.repeats} x ${wanted} would take ` +
        `~${Math.round((wanted * c.repeats) / estimate)} s, over the ${c.budgetSeconds} s budget`;
    }
    const full = n >= TRAIN_SIZE;
    const epochData = full
      ? data.train
      : subset(
          data.train,
          Int32Array.from({ length: n }, (_, i) => i),
          `mnist:train[0:${n}]`,
        );
    process.stdout.write(`${TIMED_START_PREFIX}${JSON.stringify({ samples: n })}\n`);
    const runs: Timed[] = [];
    for (let r = 0; r < c.repeats; r++) runs.push(await runner.epoch(epochData));
    const accuracy = full ? await runner.accuracy(data.test) : null; // the weights of the last repeat
    return {
      status: 'ok',
      engine: c.engine,
      backend: runner.backend,
      message: null,
      samples: n,
      subset: !full,
      shrunk,
      ...timing(n, runs),
      test_accuracy: accuracy === null ? null : round(accuracy, 4),
      max_rss_mb: maxRssMb(),
      rss_end_mb: mb(process.memoryUsage().rss),
    };
  } finally {
    runner.dispose();
  }
}

/** Resets the kernel's RSS high-water mark for this process (Linux >= 4.0); false where not allowed. */
function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * What one node of the 10-node simulation holds: 6000 MNIST training rows and the seed MLP, trained one
 * epoch with the dense engine. The full MNIST is loaded to cut the share, then dropped and collected.
 */
async function nodeShare(c: WorkerConfig): Promise<WorkerResult> {
  const spec = specFor(c);
  const rssStart = mb(process.memoryUsage().rss);
  await import('../src/model/make-trainer.js'); // what a node's worker imports (it pulls tfjs in too)
  const rssAfterImports = mb(process.memoryUsage().rss);
  const n = c.samples ?? 6000;
  let share: Dataset;
  {
    let all: ReturnType<typeof loadMnist> | null = loadMnist();
    const rows = new Rng(c.seed).permutation(all.train.n).subarray(0, n);
    share = subset(all.train, rows, `mnist:train share of ${n}`);
    all = null; // the node keeps only its share
  }
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    // V8 frees ArrayBuffer backing stores on a sweeper after the collection, so collect until they stop shrinking.
    let before = Infinity;
    for (let i = 0; i < 10 && process.memoryUsage().arrayBuffers < before; i++) {
      before = process.memoryUsage().arrayBuffers;
      gc();
      await delay(50);
    }
  }
  const maxWithLoad = maxRssMb();
  const rssAfterGc = mb(process.memoryUsage().rss);
  const reset = resetPeakRss();
  const runner = await edgefedRunner(c, spec);
  try {
    await runner.steps(share, c.warmupBatches);
    const t = await runner.epoch(share);
    const mem = process.memoryUsage();
    const memory: NodeShareMemory = {
      rss_start_mb: rssStart,
      rss_after_imports_mb: rssAfterImports,
      max_rss_with_full_load_mb: maxWithLoad,
      rss_after_share_and_gc_mb: rssAfterGc,
      gc_available: gc !== undefined,
      max_rss_training_mb: reset ? maxRssMb() : null,
      rss_end_mb: mb(mem.rss),
      v8_heap_used_end_mb: mb(mem.heapUsed),
      array_buffers_end_mb: mb(mem.arrayBuffers),
    };
    return {
      status: 'ok',
      engine: c.engine,
      backend: runner.backend,
      message: null,
      samples: n,
      subset: true,
      shrunk: null,
      ...timing(n, [t]),
      test_accuracy: null,
      max_rss_mb: maxRssMb(),
      rss_end_mb: memory.rss_end_mb,
      node_share: memory,
    };
  } finally {
    runner.dispose();
  }
}

async function main(): Promise<void> {
  const arg = process.argv[2];
  if (!arg) throw new Error("usage: node --import tsx bench/train-worker.ts '<WorkerConfig JSON>'");
  const c = JSON.parse(arg.startsWith('@') ? readFileSync(arg.slice(1), 'utf8') : arg) as WorkerConfig;
  if (!ENGINES.includes(c.engine)) throw new Error(`unknown engine '${c.engine}'`);
  let result: WorkerResult;
  try {
    result = c.mode === 'node-share' ? await nodeShare(c) : await throughput(c);
  } catch (e) {
    // A backend without a kernel the model needs (tfjs-wasm has no Conv2DBackpropFilter) is 'unsupported'.
    const status: WorkerStatus =
      e instanceof Unsupported || /not registered for backend/i.test(message(e))
        ? 'unsupported'
        : e instanceof Unavailable
          ? 'unavailable'
          : 'error';
    result = emptyResult(c, status, message(e));
  }
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
