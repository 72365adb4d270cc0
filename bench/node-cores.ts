/**
 * Benchmark: one deployed node's local epoch on 1 core versus k, on the seed MLP (B=32), McMahan's 2NN (B=10) and
 * the CNN (B=32), every way a node can use k cores: 'batches' (each batch split over k threads,
 * ParallelEngineTrainer), 'layers' (each dense step split tensor-parallel over a native team of k threads,
 * TeamEngineTrainer; dense-only models) and 'blas' (each gemm split over k OpenBLAS threads). The method `edgefed node --threads k`
 * picks for the model (src/model/parallel-choice.ts) is named in its own column.
 * Every (model, method) trains from the same seeded weights on the same node-sized share of MNIST; the
 * methods are interleaved and their order rotates every repeat, so drifting machine load hits them alike. Reported:
 * the median epoch wall time and CPU seconds (all threads), the test accuracy after the epoch (equal up to float
 * rounding: k threads sum in another order), whether every repeat of a k-thread method gave the same weights, and
 * the 1-minute load average around each model. Workers start before the timed epochs (a node starts them once per
 * run). Prints the environment beside the figures.
 *
 * Run:  node --import tsx bench/node-cores.ts [--threads K] [--samples 6000] [--cnn-samples 1000] [--repeats 3]
 *       [--models mlp,2nn,cnn] [--results-dir bench/results] [--no-write]
 * Writes RESULTS_DIR/node-cores.json and node-cores.md.
 */
import { parseArgs } from 'node:util';
import { createHash } from 'node:crypto';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { readdirSync, readFileSync } from 'node:fs';
import { loadMnist } from '../src/data/mnist.js';
import { subset, type Dataset } from '../src/data/types.js';
import { builtinModel, initialWeights, tensorSpecs, type ModelSpec } from '../src/model/spec.js';
import { EngineTrainer } from '../src/model/engine-trainer.js';
import { ParallelEngineTrainer } from '../src/model/parallel-trainer.js';
import { TeamEngineTrainer, teamUnsupportedReason } from '../src/model/team-trainer.js';
import { chooseThreadSplit } from '../src/model/parallel-choice.js';
import { loadNativeKernels, setNativeBlasThreads } from '../src/nn/kernels-native.js';
import { Rng } from '../src/core/rng.js';
import { partRows, reduceRange } from '../src/model/parallel-protocol.js';
import { FlatOptimizer, optimizerStateSlots } from '../src/nn/optimizer.js';
import { environmentLines, machine, numberFlag, provenance, REPO, writeAtomic } from './support/results-io.js';
import { coreToCoreNs } from './support/core-latency.js';

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
  (v) => Number.isInteger(v) && v >= 2 && v <= 256,
  'a whole number in [2, 256]',
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
const envStart = machine();
for (const line of environmentLines(envStart)) process.stderr.write(`node-cores: ${line}\n`);

const data = loadMnist();
const METHODS = ['one', 'batches', 'layers', 'blas'] as const;
/** How long OpenBLAS's idle pool threads are left to stop spinning after a 'blas' epoch (they spin > 0.1 s). */
const BLAS_SETTLE_MS = 1000;
type Method = (typeof METHODS)[number];

/**
 * Nanoseconds each thread of this process has run (Linux /proc/self/task/TID/schedstat; empty elsewhere). On a
 * loaded machine wall time says little (the scheduler shares CPU per session, not per thread), but the busiest
 * thread's CPU time is the epoch's critical path: what the wall time would be on idle cores (spin waits included).
 */
function threadRunNs(): Map<string, number> {
  const out = new Map<string, number>();
  let tids: string[] = [];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      out.set(tid, Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]));
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

function busiestSeconds(before: Map<string, number>, after: Map<string, number>): number {
  let max = 0;
  for (const [tid, ns] of after) max = Math.max(max, ns - (before.get(tid) ?? 0));
  return max / 1e9;
}

interface Timing {
  wall_s: number;
  cpu_s: number;
  /** CPU seconds of the busiest thread (0 where /proc is missing). */
  busiest_s: number;
  /**
   * 'layers' only: the main thread's CPU outside team steps plus the team thread that computed most (CPU inside
   * steps minus spinning at barriers). The critical path on idle cores if every phase between two barriers were
   * balanced and a barrier cost nothing: a bound that, unlike busiest_s, no spinning behind a preempted partner
   * inflates on a loaded machine.
   */
  compute_s?: number;
  accuracy: number;
  sha: string;
}

async function epoch(trainer: EngineTrainer, spec: ModelSpec, train: Dataset, batch: number): Promise<Timing> {
  const w0 = initialWeights(tensorSpecs(spec), new Rng(1));
  const team = trainer instanceof TeamEngineTrainer ? trainer : null;
  team?.profile(true);
  const cpu0 = process.cpuUsage();
  const run0 = threadRunNs();
  const t0 = performance.now();
  const r = await trainer.train(w0, train, {
    epochs: 1,
    batchSize: batch,
    optimizer: spec.optimizer,
    proxMu: 0,
    seed: 1,
  });
  const wall = (performance.now() - t0) / 1000;
  const run1 = threadRunNs();
  const busiest = busiestSeconds(run0, run1);
  const used = process.cpuUsage(cpu0);
  let compute: number | undefined;
  if (team) {
    const counts = team.profile(false);
    const main = String(process.pid);
    const mainCpu = ((run1.get(main) ?? 0) - (run0.get(main) ?? 0)) / 1e9;
    compute = mainCpu - counts[0].stepSeconds + Math.max(...counts.map((c) => c.stepSeconds - c.waitSeconds));
  }
  const ev = await trainer.evaluate(r.weights, data.test);
  const sha = createHash('sha256').update(new Uint8Array(r.weights.buffer, r.weights.byteOffset, r.weights.byteLength));
  return {
    wall_s: wall,
    cpu_s: (used.user + used.system) / 1e6,
    busiest_s: busiest,
    ...(compute === undefined ? {} : { compute_s: compute }),
    accuracy: ev.accuracy,
    sha: sha.digest('hex'),
  };
}

/** Mean CPU microseconds of f over `reps` calls after one warm-up call (this thread only does work). */
function cpuMicros(f: () => void, reps: number): number {
  f();
  const c = process.cpuUsage();
  for (let i = 0; i < reps; i++) f();
  const u = process.cpuUsage(c);
  return (u.user + u.system) / reps;
}

/**
 * One step's parts on one thread, in CPU microseconds: the gradient of a batch and of a 1/k slice (which is more than
 * 1/k of it: each slice writes a whole gradient), the k-way sum over 1/k of the parameters and the optimizer step.
 * They bound what the batch split can gain: k threads take at least slice + sum + step / k per batch (every thread
 * steps its 1/k of the weights) where one thread takes batch + step.
 */
function stepParts(spec: ModelSpec, batch: number, reps: number) {
  const t = new EngineTrainer(spec, kernels!);
  const w = initialWeights(tensorSpecs(spec), new Rng(1));
  const g = new Float32Array(w.length);
  const grads = Array.from({ length: threads }, () => new Float32Array(w.length));
  const x = data.train.x.subarray(0, batch * 784);
  const y = data.train.y.subarray(0, batch);
  const slice = partRows(batch, threads, 0)[1];
  const state = Array.from({ length: optimizerStateSlots(spec.optimizer.name) }, () => ({
    a: new Float32Array(w.length),
  }));
  const opt = new FlatOptimizer(spec.optimizer, kernels!, w.length, state);
  const parts = {
    batch_us: cpuMicros(() => t.batchGradient(w, x, y, batch, g), reps),
    slice_us: cpuMicros(() => t.batchGradient(w, x.subarray(0, slice * 784), y.subarray(0, slice), slice, g), reps),
    sum_us: cpuMicros(() => reduceRange(kernels!, grads, batch, threads, 0), reps),
    step_us: cpuMicros(() => opt.step(w, g.fill(0)), reps),
  };
  const one = parts.batch_us + parts.step_us;
  const k = parts.slice_us + parts.sum_us + parts.step_us / threads;
  return {
    batch_us: round(parts.batch_us, 1),
    slice_us: round(parts.slice_us, 1),
    sum_us: round(parts.sum_us, 1),
    step_us: round(parts.step_us, 1),
    bound: round(one / k, 2),
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (v: number, d = 3) => Math.round(v * 10 ** d) / 10 ** d;
const rows = [];
for (const name of models) {
  const { batch, samples: n } = SETTINGS[name];
  const spec = builtinModel(name, [28, 28, 1], 10);
  const train = subset(
    data.train,
    Int32Array.from({ length: n }, (_, i) => i),
    `mnist[0:${n}]`,
  );
  const chosen = chooseThreadSplit(spec, kernels, threads);
  const parts = stepParts(spec, batch, name === 'cnn' ? 10 : 300);
  const one = new EngineTrainer(spec, kernels);
  const split = await ParallelEngineTrainer.create(spec, kernels, threads);
  const team = teamUnsupportedReason(spec, kernels) === null ? new TeamEngineTrainer(spec, kernels, threads) : null;
  const methods = METHODS.filter((m) => m !== 'layers' || team);
  const run = async (method: Method): Promise<Timing> => {
    setNativeBlasThreads(method === 'blas' ? threads : 1);
    const timing = await epoch(method === 'batches' ? split : method === 'layers' ? team! : one, spec, train, batch);
    if (method === 'blas') {
      // OpenBLAS's pool threads keep spinning for a while after their last gemm (measured: over 0.1 s, a whole
      // core), which would take a core from whichever method is timed next. Let them go to sleep first.
      setNativeBlasThreads(1);
      await new Promise((r) => setTimeout(r, BLAS_SETTLE_MS));
    }
    return timing;
  };
  const warm = subset(
    train,
    Int32Array.from({ length: batch * 4 }, (_, i) => i),
  );
  for (const t of [one, split, ...(team ? [team] : [])]) await epoch(t, spec, warm, batch);
  const times: Record<Method, Timing[]> = { one: [], batches: [], layers: [], blas: [] };
  const load0 = loadavg()[0];
  const latency0 = await coreToCoreNs();
  // The order rotates every repeat (one, batches, layers, blas; batches, layers, blas, one; ...) so drifting load
  // hits all alike.
  for (let i = 0; i < repeats; i++) {
    for (let j = 0; j < methods.length; j++) {
      const method = methods[(i + j) % methods.length];
      times[method].push(await run(method));
    }
  }
  split.dispose();
  team?.dispose();
  setNativeBlasThreads(1);
  const summary = (method: Method) => {
    const ts = times[method];
    if (ts.length === 0) return null;
    return {
      wall_s: round(median(ts.map((t) => t.wall_s))),
      cpu_s: round(median(ts.map((t) => t.cpu_s))),
      busiest_s: round(median(ts.map((t) => t.busiest_s))),
      ...(ts[0].compute_s === undefined ? {} : { compute_s: round(median(ts.map((t) => t.compute_s!))) }),
      accuracy: ts[0].accuracy,
      deterministic: ts.every((t) => t.sha === ts[0].sha),
    };
  };
  const s1 = summary('one')!;
  const sb = summary('batches')!;
  const sl = summary('blas')!;
  const st = summary('layers');
  const speedups = (s: { wall_s: number; busiest_s: number }) => ({
    speedup: round(s1.wall_s / s.wall_s, 2),
    path_speedup: round(s1.busiest_s / s.busiest_s, 2),
  });
  const chosenSummary = chosen.split === 'blas' ? sl : chosen.split === 'layers' ? st! : sb;
  const row = {
    model: name,
    batch,
    samples: n,
    threads,
    chosen: chosen.split,
    one: s1,
    batches: { ...sb, ...speedups(sb) },
    layers: st
      ? { ...st, ...speedups(st), compute_speedup: st.compute_s ? round(s1.busiest_s / st.compute_s, 2) : null }
      : null,
    blas: { ...sl, ...speedups(sl) },
    step_parts: parts,
    repeats,
    load_1min_around: [round(load0, 2), round(loadavg()[0], 2)],
    // One-way core-to-core latency (ns) before and after the model's epochs: what each barrier and each cache line
    // passed between cores cost (see bench/support/core-latency.ts).
    core_to_core_ns: [latency0, await coreToCoreNs()],
    // The chosen method's figures under the names scripts/performance-table.mjs reads.
    speedup: round(s1.wall_s / chosenSummary.wall_s, 2),
    path_speedup: round(s1.busiest_s / chosenSummary.busiest_s, 2),
    accuracy_1: s1.accuracy,
    accuracy_k: chosenSummary.accuracy,
    load_1min: round(loadavg()[0], 2),
  };
  rows.push(row);
  process.stderr.write(
    `  ${name} B=${batch} n=${n}: 1 thread ${s1.wall_s.toFixed(3)} s (${s1.cpu_s.toFixed(3)} CPU-s); ` +
      `batches x${threads} ${sb.wall_s.toFixed(3)} s (${sb.cpu_s.toFixed(3)} CPU-s) ${row.batches.speedup}x; ` +
      (row.layers
        ? `layers x${threads} ${row.layers.wall_s.toFixed(3)} s ${row.layers.speedup}x ` +
          `(path ${row.layers.path_speedup}x, compute bound ${row.layers.compute_speedup}x, ` +
          `acc ${row.layers.accuracy.toFixed(4)}); `
        : '') +
      `blas x${threads} ${sl.wall_s.toFixed(3)} s ${row.blas.speedup}x; busiest thread ${s1.busiest_s} / ` +
      `${sb.busiest_s} / ${sl.busiest_s} CPU-s (${row.batches.path_speedup}x / ${row.blas.path_speedup}x); accuracy ${s1.accuracy.toFixed(4)} / ` +
      `${sb.accuracy.toFixed(4)} / ${sl.accuracy.toFixed(4)}; chosen ${chosen.split}; step parts ` +
      `${JSON.stringify(parts)}; load ${row.load_1min_around.join(' -> ')}; core-to-core ` +
      `${row.core_to_core_ns.map((v) => (v === null ? '?' : `${v} ns`)).join(' -> ')}\n`,
  );
}

const report = {
  bench: 'node-cores',
  env: {
    cpu: `${envStart.cpu_model} (${envStart.cpu_vector})`,
    cores: envStart.available_parallelism,
    openblas_core: envStart.openblas?.core ?? null,
    load_average_start: envStart.load_average,
    load_average_end: loadavg().map((v) => round(v, 2)),
  },
  env_start: envStart,
  rows,
  ...provenance(1, started),
};
const cell = (s: { wall_s: number; cpu_s: number; busiest_s: number }) =>
  `${s.wall_s.toFixed(3)} / ${s.cpu_s.toFixed(3)} / ${s.busiest_s.toFixed(3)}`;
const md = [
  `# One node, one epoch: 1 core versus ${threads}`,
  '',
  "Methods: 'batches' splits each batch over k threads (ParallelEngineTrainer), 'layers' each dense step " +
    "tensor-parallel over a native team of k threads (TeamEngineTrainer, dense-only models), 'blas' each gemm over " +
    "k OpenBLAS threads. 'chosen' is what `edgefed node --threads k` uses for the model. Each cell: wall s / CPU-s of every " +
    'thread / CPU-s of the busiest thread, medians of the repeats. Wall speedup needs k idle cores: Linux shares ' +
    'CPU between sessions (autogroup), so on a loaded machine k threads get no more CPU than one and the wall ' +
    'ratio says little. The busiest thread is the critical path, so its ratio (path speedup) estimates the ' +
    "wall speedup on idle cores, sync spin-waits included. For layers, the compute bound divides one thread's " +
    "busiest CPU by the main thread's CPU outside team steps plus the busiest team thread's CPU inside steps " +
    'less its barrier spinning: what idle cores would give with perfectly balanced phases and free barriers (an ' +
    'upper bound; spinning behind a partner the loaded machine preempted does not count). Load: the 1-minute ' +
    'average before and after the model. Core to core: the one-way latency between two threads (an Atomics ' +
    'ping-pong) before and after the model; every barrier and every cache line one thread reads after another ' +
    'wrote it costs about this much, so it decides what splitting a small step can gain. A VM whose host moves ' +
    'its vCPUs between cores that share a cache and cores that do not shows both (here ~60 and ~230 ns).',
  '',
  ...environmentLines(envStart).map((l) => `- start: ${l}`),
  `- end: load average ${report.machine.load_average.join(' ')}`,
  '',
  `Reproduce: \`node --import tsx bench/node-cores.ts --threads ${threads} --samples ${samples} ` +
    `--cnn-samples ${cnnSamples} --repeats ${repeats}\``,
  '',
  '| model | B | samples | chosen | 1 thread | batches | wall, path speedup | layers | wall, path speedup | blas | ' +
    'wall, path speedup | test acc 1 / batches / layers / blas | same bits every repeat (batches, layers, blas) | ' +
    'load (1 min) | core to core (ns) |',
  '| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | --- |',
  ...rows.map(
    (r) =>
      `| ${r.model} | ${r.batch} | ${r.samples} | ${r.chosen} | ${cell(r.one)} | ${cell(r.batches)} | ` +
      `${r.batches.speedup.toFixed(2)}x, **${r.batches.path_speedup.toFixed(2)}x** | ` +
      (r.layers
        ? `${cell(r.layers)} | ${r.layers.speedup.toFixed(2)}x, **${r.layers.path_speedup.toFixed(2)}x** ` +
          `(compute bound ${r.layers.compute_speedup?.toFixed(2) ?? '-'}x) | `
        : '- | - | ') +
      `${cell(r.blas)} | ${r.blas.speedup.toFixed(2)}x, ${r.blas.path_speedup.toFixed(2)}x | ` +
      `${r.one.accuracy.toFixed(4)} / ${r.batches.accuracy.toFixed(4)} / ${r.layers ? r.layers.accuracy.toFixed(4) : '-'} / ` +
      `${r.blas.accuracy.toFixed(4)} | ${r.batches.deterministic ? 'yes' : 'NO'}, ` +
      `${r.layers ? (r.layers.deterministic ? 'yes' : 'NO') : '-'}, ${r.blas.deterministic ? 'yes' : 'NO'} | ` +
      `${r.load_1min_around.join(' -> ')} | ${r.core_to_core_ns.map((v) => v ?? '?').join(' -> ')} |`,
  ),
  '',
  `One step's parts on one thread (CPU µs, mean): the batch's gradient, a 1/${threads} slice's, the ` +
    `${threads}-way sum over 1/${threads} of the parameters, the optimizer step; bound = (batch + step) / ` +
    `(slice + sum + step / ${threads}), the most the batch split can gain per step on idle cores before ` +
    'synchronisation.',
  '',
  '| model | batch | batch µs | slice µs | sum µs | step µs | bound |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map((r) => {
    const p = r.step_parts;
    return `| ${r.model} | B=${r.batch} | ${p.batch_us} | ${p.slice_us} | ${p.sum_us} | ${p.step_us} | ${p.bound}x |`;
  }),
  '',
].join('\n');
process.stdout.write(`${md}\n`);
if (!values['no-write']) {
  writeAtomic(join(values['results-dir'], 'node-cores.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeAtomic(join(values['results-dir'], 'node-cores.md'), md);
}
