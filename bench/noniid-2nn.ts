/**
 * Benchmark: McMahan et al. 2017 ("Communication-Efficient Learning of Deep Networks from Decentralized
 * Data"), MNIST 2NN, pathological non-IID (2 label-sorted shards of 300 per client), 100 clients, C=0.1,
 * E=1, B=10, plain SGD: communication rounds until the global model first reaches 97% test accuracy.
 * The paper reports 664 rounds for this setting (FedAvg, best learning rate of a grid).
 *
 * It is the same run as
 *   edgefed simulate --dataset mnist --model 2nn --nodes 100 --fraction 0.1 --partition shards:2 \
 *     --strategy fedavg --local-epochs 1 --batch-size 10 --optimizer sgd --lr LR --rounds MAX \
 *     --target-accuracy 0.97 --seed SEED --validation 0 --json
 * driven through runSimulation, with progress every 25 rounds on stderr.
 *
 * Run:  node --import tsx bench/noniid-2nn.ts [--lr 0.1] [--max-rounds 1500] [--seed 1]
 *       [--workers N] [--results-dir bench/results]
 *       node --import tsx bench/noniid-2nn.ts --report-only    (rewrite the .md from the .json)
 *       node --import tsx bench/noniid-2nn.ts --pace 20 [--seed 1] [--lr 0.1]
 *         (seconds and CPU-seconds per round against ../shared/bench/np_fedavg_2nn.py, 1 worker and every core,
 *          in one run: bench/noniid-pace.ts; writes RESULTS_DIR/noniid-pace.json and .md)
 * Each run is merged into RESULTS_DIR/noniid-2nn.json (replacing an earlier run with the same lr, seed and
 * max-rounds) and RESULTS_DIR/noniid-2nn.md is regenerated from every run in that file. Stdout gets this
 * run's record as one JSON line.
 */
import { parseArgs } from 'node:util';
import { availableParallelism } from 'node:os';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { runSimulation } from '../src/sim/simulate.js';
import type { SimulationOptions } from '../src/sim/options.js';
import type { RoundRecord } from '../src/engine/round-engine.js';
import { paceMarkdown, runPace } from './noniid-pace.js';
import {
  gitCommit,
  gitSrcDirty,
  machine as machineInfo,
  writeAtomic,
  printEnvironment,
  REPO,
} from './support/results-io.js';

const BENCH = 'noniid-2nn';
const TARGET = 0.97;
const PROGRESS_EVERY = 25;

/** What the paper reports for this setting (Tables 1 and 2 agree on it). */
const PAPER = {
  citation:
    'McMahan, Moore, Ramage, Hampson, Aguera y Arcas. Communication-Efficient Learning of Deep Networks from Decentralized Data. AISTATS 2017 (arXiv:1602.05629)',
  setting:
    'MNIST 2NN (784-200-200-10, ReLU, 199,210 params), pathological non-IID (200 shards of 300, 2 per client), K=100 clients, C=0.1, E=1, B=10, SGD, target 97% test accuracy',
  fedavg_rounds: 664,
} as const;

interface Args {
  lr: number;
  maxRounds: number;
  seed: number;
  workers?: number;
  resultsDir: string;
  reportOnly: boolean;
  pace?: number;
}

function parseCli(argv: string[]): Args {
  const { values } = parseArgs({
    args: argv,
    options: {
      lr: { type: 'string', default: '0.1' },
      'max-rounds': { type: 'string', default: '1500' },
      seed: { type: 'string', default: '1' },
      workers: { type: 'string' },
      'results-dir': { type: 'string', default: join(REPO, 'bench', 'results') },
      'report-only': { type: 'boolean', default: false },
      pace: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(
      'usage: node --import tsx bench/noniid-2nn.ts [--lr 0.1] [--max-rounds 1500] [--seed 1] [--workers N] [--results-dir DIR]\n' +
        '       node --import tsx bench/noniid-2nn.ts --report-only [--results-dir DIR]   (rewrite the .md from the .json, no run)\n',
    );
    process.exit(0);
  }
  const num = (name: string, s: string, ok: (v: number) => boolean, what: string): number => {
    const v = Number(s);
    if (s.trim() === '' || !Number.isFinite(v) || !ok(v)) throw new Error(`--${name}: expected ${what}, got '${s}'`);
    return v;
  };
  return {
    lr: num('lr', values.lr!, (v) => v > 0 && v < 100, 'a number in (0, 100)'),
    maxRounds: num('max-rounds', values['max-rounds']!, (v) => Number.isInteger(v) && v >= 1, 'a whole number >= 1'),
    seed: num('seed', values.seed!, (v) => Number.isInteger(v) && v >= 0 && v < 2 ** 32, 'a whole number >= 0'),
    workers:
      values.workers === undefined
        ? undefined
        : num('workers', values.workers, (v) => Number.isInteger(v) && v >= 1 && v <= 64, 'a whole number in [1, 64]'),
    resultsDir: resolve(values['results-dir']!),
    reportOnly: values['report-only']!,
    pace:
      values.pace === undefined
        ? undefined
        : num('pace', values.pace, (v) => Number.isInteger(v) && v >= 2, 'a whole number >= 2'),
  };
}

const round4 = (v: number) => Math.round(v * 1e4) / 1e4;
const round6 = (v: number) => Math.round(v * 1e6) / 1e6;

function firstRoundAtLeast(acc: number[], t: number): number | null {
  const i = acc.findIndex((a) => a >= t);
  return i < 0 ? null : i + 1;
}

interface RunRecord {
  key: string;
  lr: number;
  seed: number;
  max_rounds: number;
  reached_target: boolean;
  rounds_to_target: number | null;
  rounds_run: number;
  final_accuracy: number;
  best_accuracy: number;
  best_round: number;
  first_round_at: Record<string, number | null>;
  accuracy_at: Record<string, number>;
  /** runSimulation's own clock: worker start-up plus all rounds (data loading excluded). */
  seconds: number;
  /** Everything, data loading included. */
  wall_seconds: number;
  /** seconds / rounds_run. */
  seconds_per_round: number;
  /** Mean and median of the rounds' own durations (train 10 clients, fuse, evaluate on 10,000 test images). */
  mean_round_seconds: number;
  median_round_seconds: number;
  bytes_sent: number;
  bytes_received: number;
  bytes_per_round: number;
  model_sha256: string;
  trainer: string;
  command: string;
  config: Record<string, unknown>;
  machine: ReturnType<typeof machineInfo>;
  git_commit: string | null;
  git_src_dirty: boolean | null;
  finished_at: string;
  accuracy_by_round: number[];
  loss_by_round: number[];
  seconds_by_round: number[];
}

interface ResultsFile {
  benchmark: string;
  description: string;
  paper: typeof PAPER & { note: string };
  target_accuracy: number;
  runs: RunRecord[];
}

async function main(): Promise<void> {
  const args = parseCli(process.argv.slice(2));
  if (args.pace !== undefined) {
    const report = await runPace(args.pace, args.seed, args.lr);
    const md = paceMarkdown(report);
    process.stdout.write(md);
    writeAtomic(join(args.resultsDir, 'noniid-pace.json'), `${JSON.stringify(report, null, 2)}\n`);
    writeAtomic(join(args.resultsDir, 'noniid-pace.md'), md);
    return;
  }
  if (args.reportOnly) {
    const jsonPath = join(args.resultsDir, `${BENCH}.json`);
    const mdPath = join(args.resultsDir, `${BENCH}.md`);
    writeAtomic(mdPath, markdown(JSON.parse(readFileSync(jsonPath, 'utf8')) as ResultsFile));
    process.stderr.write(`${BENCH}: wrote ${mdPath} from ${jsonPath}\n`);
    return;
  }
  const workers = args.workers ?? Math.max(1, Math.min(availableParallelism(), 100));
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
    lr: args.lr,
    rounds: args.maxRounds,
    targetAccuracy: TARGET,
    seed: args.seed,
    validationFraction: 0,
    workers,
  };
  const command =
    'edgefed simulate --dataset mnist --model 2nn --nodes 100 --fraction 0.1 --partition shards:2 --strategy fedavg ' +
    `--local-epochs 1 --batch-size 10 --optimizer sgd --lr ${args.lr} --rounds ${args.maxRounds} --target-accuracy ${TARGET} ` +
    `--seed ${args.seed} --validation 0 --workers ${workers} --json`;
  const machine = machineInfo(workers);
  process.stderr.write(
    `${BENCH}: lr ${args.lr}, seed ${args.seed}, up to ${args.maxRounds} rounds, target ${TARGET}, ${workers} workers\n`,
  );
  printEnvironment(BENCH, machine);

  const wallStart = performance.now();
  let best = 0;
  let bestRound = 0;
  let roundSeconds = 0;
  let announced = false;
  const result = await runSimulation(options, (r: RoundRecord) => {
    if (r.testAccuracy > best) {
      best = r.testAccuracy;
      bestRound = r.round;
    }
    roundSeconds += r.seconds;
    const hit = r.testAccuracy >= TARGET && !announced;
    if (hit) announced = true;
    if (r.round % PROGRESS_EVERY === 0 || r.round === 1 || hit || r.round === args.maxRounds) {
      const elapsed = (performance.now() - wallStart) / 1000;
      process.stderr.write(
        `round ${String(r.round).padStart(5)}/${args.maxRounds} test acc ${r.testAccuracy.toFixed(4)} ` +
          `loss ${r.testLoss.toFixed(4)} best ${best.toFixed(4)}@${bestRound} | ${(roundSeconds / r.round).toFixed(3)} s/round, ` +
          `${elapsed.toFixed(0)} s elapsed${hit ? `  <-- reached ${TARGET}` : ''}\n`,
      );
    }
  });

  const wallSeconds = (performance.now() - wallStart) / 1000;
  const acc = result.rounds.map((r) => r.testAccuracy);
  const n = acc.length;
  const secs = result.rounds.map((r) => r.seconds).sort((a, b) => a - b);
  const milestones = [0.9, 0.95, 0.96, 0.97];
  const at = [50, 100, 200, 300, 500, 664, 1000, 1500].filter((k) => k <= n);
  const record: RunRecord = {
    key: `lr=${args.lr},seed=${args.seed},max=${args.maxRounds}`,
    lr: args.lr,
    seed: args.seed,
    max_rounds: args.maxRounds,
    reached_target: result.reachedTarget,
    rounds_to_target: result.reachedTarget ? n : null,
    rounds_run: n,
    final_accuracy: acc[n - 1],
    best_accuracy: best,
    best_round: bestRound,
    first_round_at: Object.fromEntries(milestones.map((t) => [t.toFixed(2), firstRoundAtLeast(acc, t)])),
    accuracy_at: Object.fromEntries(at.map((k) => [String(k), acc[k - 1]])),
    seconds: Math.round(result.seconds * 1000) / 1000,
    wall_seconds: Math.round(wallSeconds * 1000) / 1000,
    seconds_per_round: round4(result.seconds / n),
    mean_round_seconds: round4(roundSeconds / n),
    median_round_seconds: round4(secs[Math.floor(n / 2)]),
    bytes_sent: result.bytesSent,
    bytes_received: result.bytesReceived,
    bytes_per_round: Math.round((result.bytesSent + result.bytesReceived) / n),
    model_sha256: result.modelSha256,
    trainer: result.trainer,
    command,
    config: { ...result.options },
    machine,
    git_commit: gitCommit(),
    git_src_dirty: gitSrcDirty(),
    finished_at: new Date().toISOString(),
    accuracy_by_round: acc,
    loss_by_round: result.rounds.map((r) => round6(r.testLoss)),
    seconds_by_round: result.rounds.map((r) => round4(r.seconds)),
  };

  const file = saveResults(args.resultsDir, record);
  process.stderr.write(
    `${BENCH}: ${record.reached_target ? `reached ${TARGET} at round ${record.rounds_to_target}` : `did not reach ${TARGET} in ${n} rounds (best ${best.toFixed(4)} at round ${bestRound})`}` +
      ` (paper: ${PAPER.fedavg_rounds}); ${record.seconds}s, ${record.seconds_per_round} s/round, ` +
      `${((record.bytes_sent + record.bytes_received) / 1e9).toFixed(2)} GB moved\n` +
      `${BENCH}: wrote ${file.json} and ${file.md}\n`,
  );
  process.stdout.write(JSON.stringify(record) + '\n');
}

function saveResults(dir: string, record: RunRecord): { json: string; md: string } {
  mkdirSync(dir, { recursive: true });
  const jsonPath = join(dir, `${BENCH}.json`);
  const mdPath = join(dir, `${BENCH}.md`);
  let runs: RunRecord[] = [];
  if (existsSync(jsonPath)) {
    try {
      const old = JSON.parse(readFileSync(jsonPath, 'utf8')) as Partial<ResultsFile>;
      if (Array.isArray(old.runs)) runs = old.runs.filter((r) => r.key !== record.key);
    } catch {
      process.stderr.write(`${BENCH}: ${jsonPath} is not valid JSON; starting it afresh\n`);
    }
  }
  runs.push(record);
  runs.sort((a, b) => a.lr - b.lr || a.seed - b.seed || a.max_rounds - b.max_rounds);
  const out: ResultsFile = {
    benchmark: BENCH,
    description:
      'Rounds of FedAvg until the global MNIST 2NN first reaches 97% test accuracy (10,000 test images, evaluated after every round), pathological non-IID, as in McMahan et al. 2017 Table 2.',
    paper: {
      ...PAPER,
      note: 'The paper reports the best learning rate of a grid per setting; our runs use the single lr given.',
    },
    target_accuracy: TARGET,
    runs,
  };
  writeAtomic(jsonPath, JSON.stringify(out, null, 2) + '\n');
  writeAtomic(mdPath, markdown(out));
  return { json: jsonPath, md: mdPath };
}

function medianRange(runs: RunRecord[]): string {
  const v = runs.map((r) => r.median_round_seconds);
  if (v.length === 0) return '-';
  const lo = Math.min(...v).toFixed(2);
  const hi = Math.max(...v).toFixed(2);
  return lo === hi ? lo : `${lo}-${hi}`;
}

/** One paragraph on what the runs in the file show, against the paper's 664. */
function summary(runs: RunRecord[]): string {
  if (runs.length === 0) return '';
  const hit = runs.filter((r) => r.rounds_to_target !== null);
  const missed = runs.filter((r) => r.rounds_to_target === null);
  const parts: string[] = [];
  for (const lr of [...new Set(runs.map((r) => r.lr))]) {
    const rs = hit
      .filter((r) => r.lr === lr)
      .map((r) => r.rounds_to_target!)
      .sort((a, b) => a - b);
    const miss = missed.filter((r) => r.lr === lr).length;
    const seeds = runs.filter((r) => r.lr === lr).length;
    const range =
      rs.length === 0
        ? ''
        : rs.length === 1
          ? `${rs[0]} rounds`
          : `${rs[0]}-${rs[rs.length - 1]} rounds (median ${rs[Math.floor((rs.length - 1) / 2)]})`;
    parts.push(
      `lr ${lr}: ${rs.length}/${seeds} seed(s) reached 97%${range ? ` in ${range}` : ''}${miss ? `, ${miss} did not` : ''}`,
    );
  }
  const all = hit.map((r) => r.rounds_to_target!);
  let direction = '';
  if (all.length > 0 && all.every((x) => x < PAPER.fedavg_rounds)) {
    direction =
      ` Every run that reached the target did so in fewer rounds than the paper's ${PAPER.fedavg_rounds} ` +
      `(${(PAPER.fedavg_rounds / Math.max(...all)).toFixed(1)}x-${(PAPER.fedavg_rounds / Math.min(...all)).toFixed(1)}x fewer). ` +
      "We have no single verified cause; the differences listed below (initialisation, the paper's lr grid, its shard draw) are candidates. " +
      'Sanity checks done: each client holds exactly 600 images (84 clients 2 digits, 8 clients 1, 8 clients 3 for seed 1), ' +
      '60 local SGD steps per client per round, example-weighted averaging, 10 of 100 clients per round, and the 10,000 test images ' +
      'share no image with the training set.';
  } else if (all.length > 0 && all.every((x) => x > PAPER.fedavg_rounds)) {
    direction = ` Every run that reached the target needed more rounds than the paper's ${PAPER.fedavg_rounds}; the paper tuned lr on a grid.`;
  }
  return `Summary: ${parts.join('; ')}.${direction}`;
}

function markdown(f: ResultsFile): string {
  const pct = (v: number) => `${(v * 100).toFixed(2)}%`;
  const rows = f.runs.map((r) => {
    const ours = r.rounds_to_target === null ? `not reached in ${r.rounds_run}` : String(r.rounds_to_target);
    const ratio = r.rounds_to_target === null ? '-' : `${(r.rounds_to_target / PAPER.fedavg_rounds).toFixed(2)}x`;
    const r95 = r.first_round_at['0.95'] ?? '-';
    return (
      `| ${r.lr} | ${r.seed} | **${ours}** | ${PAPER.fedavg_rounds} | ${ratio} | ${r95} | ${pct(r.best_accuracy)} (round ${r.best_round}) | ` +
      `${r.seconds.toFixed(0)} | ${r.seconds_per_round.toFixed(3)} | ${((r.bytes_sent + r.bytes_received) / 1e9).toFixed(2)} |`
    );
  });
  const m = f.runs[f.runs.length - 1]?.machine;
  return [
    '# MNIST 2NN, pathological non-IID: rounds to 97% (McMahan et al. 2017, Table 2)',
    '',
    `Setting: ${PAPER.setting}. FedAvg, constant learning rate, Glorot-uniform init, seed as listed. ` +
      'Test accuracy on the 10,000 MNIST test images after every round; "rounds to 97%" is the first round at or above 0.97 ' +
      "(the same as the crossing of the paper's best-accuracy-so-far curve). " +
      '"wall s" is runSimulation\'s time (worker start-up and all rounds, data loading excluded); s/round = wall s / rounds run.',
    '',
    '| lr | seed | EdgeFed rounds to 97% | McMahan FedAvg | ratio | rounds to 95% | best acc | wall s | s/round | GB moved |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    summary(f.runs),
    '',
    m
      ? `Machine: ${m.cpu_model}, ${m.cpu_cores} cores (shared with other jobs), ${m.platform}, Node ${m.node}, kernels ${m.kernels}` +
        `${m.openblas ? ` (${m.openblas.config.trim()}, core ${m.openblas.core}, ${m.openblas.threads} BLAS thread)` : ''}, ${m.workers} worker threads.`
      : '',
    '',
    `Wall time depends on what else runs on the shared cores: the median round took ${medianRange(f.runs)} s across these runs ` +
      '(`median_round_seconds` in the JSON). Rounds-to-97% does not depend on load: a run is deterministic for a given seed and lr.',
    '',
    'Reproduce: `node --import tsx bench/noniid-2nn.ts --lr 0.1 --max-rounds 1500 --seed 1` (curves and per-round times in `noniid-2nn.json`).',
    '',
    '## Paper reference figures',
    '',
    '- FedAvg, E=1, B=10, C=0.1, non-IID, 2NN: **664 rounds** to 97% (Table 2; the same cell appears in Table 1).',
    '- From memory (the paper text could not be retrieved in this environment; check before quoting): Table 2 FedSGD (E=1, B=inf) ' +
      'needs 1468 rounds IID / 1817 non-IID, so 664 is the "2.7x" speed-up; FedAvg E=1 B=10 IID needs 350 rounds (4.2x). ' +
      'Table 1 (E=1, varying C) lists C=0.1 B=inf at 1474 IID / 1796 non-IID and C=0 B=10 non-IID at 3275 (664 = 4.9x); ' +
      "1455 is, as we recall, Table 1's C=0, B=inf, IID cell rather than a FedSGD non-IID figure.",
    '',
    '## Why our count can differ from 664',
    '',
    '- **Learning rate.** McMahan et al. report, per setting, the best of a grid of learning rates; we run one or two values ' +
      'and do not search. The rounds-to-target is very sensitive to lr in this setting.',
    '- **Few seeds.** The sampled clients (10 of 100 per round) and the shard assignment come from our seeded RNG; with pathological ' +
      'non-IID data the test accuracy swings by a percent or more from round to round near 97%, so the first crossing of 0.97 ' +
      'moves by tens of rounds between seeds (see the table). The paper gives a single number without variance either.',
    '- **Initialisation.** We use Keras defaults (Glorot-uniform kernels, zero biases); the paper does not state its initialiser.',
    '- **No learning-rate decay, no momentum, no weight decay.** Plain constant-lr SGD on every client.',
    '- **Preprocessing.** Pixels scaled to [0, 1], no mean/std normalisation, no augmentation; the paper does not detail its preprocessing.',
    '- **Shards.** 60,000 training images sorted by label (stable after a seeded shuffle), cut into 200 shards of 300, 2 random shards per client, ' +
      "as the paper describes; which images and which shard pairs land together differs from the paper's draw.",
    '- **Numerics.** float32 OpenBLAS kernels; summation order differs from TensorFlow, which changes individual trajectories but not the expected behaviour.',
    '',
  ].join('\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`${BENCH}: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
