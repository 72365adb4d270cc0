/**
 * Benchmark (issue "Privacy 2"): the accuracy cost of DP-FedAvg on MNIST, 100 nodes, at three noise levels,
 * with seeded noise (simulation) and CSPRNG noise (deployment). Both sources feed the same exact discrete
 * Gaussian sampler, so their accuracies must agree within the run-to-run spread; epsilon is the same for both
 * (it depends on q, z, delta and rounds only). The reference is dpfedavg with noise 0 (clipping only).
 * Each run is the same as
 *   edgefed simulate --dataset mnist --model mlp --nodes 100 --fraction Q --partition iid --rounds R --seed S \
 *     --validation 0 --strategy dpfedavg:clip=C,noise=Z --dp-noise seeded|csprng --json
 * driven through runSimulation, one after the other; each (noise, source) pair is repeated with seeds 1..repeats.
 *
 * Run:  node --import tsx bench/dp.ts [--rounds 10] [--repeats 2] [--fraction 0.3] [--clip 1] [--noise 0.3,0.7,1.5]
 *       node --import tsx bench/dp.ts --report-only    (rewrite the .md from the .json)
 */
import { parseArgs } from 'node:util';
import { availableParallelism, loadavg } from 'node:os';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { runSimulation } from '../src/sim/simulate.js';
import type { SimulationOptions } from '../src/sim/options.js';
import type { DpNoiseSource } from '../src/engine/dp-noise.js';
import { numberFlag, provenance, REPO, resultFiles, writeAtomic, type Provenance } from './support/results-io.js';

const BENCH = 'dp';
const NODES = 100;
const DELTA = 1e-5;

interface RunRecord {
  noise: number;
  source: DpNoiseSource | 'reference';
  seed: number;
  final_accuracy: number;
  accuracy_by_round: number[];
  epsilon: number;
  /** Rounds that fused (Poisson sampling can pick too few nodes). */
  fused_rounds: number;
  seconds: number;
  command: string;
}

interface ResultsFile extends Provenance {
  benchmark: string;
  setting: {
    nodes: number;
    fraction: number;
    clip: number;
    delta: number;
    rounds: number;
    repeats: number;
    noise: number[];
  };
  load_average_1m: { before: number; after: number };
  runs: RunRecord[];
}

function parseCli(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      rounds: { type: 'string', default: '10' },
      repeats: { type: 'string', default: '2' },
      fraction: { type: 'string', default: '0.3' },
      clip: { type: 'string', default: '1' },
      noise: { type: 'string', default: '0.3,0.7,1.5' },
      workers: { type: 'string' },
      'results-dir': { type: 'string', default: join(REPO, 'bench', 'results') },
      'report-only': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const whole = (v: number) => Number.isInteger(v) && v >= 1;
  return {
    rounds: numberFlag('rounds', values.rounds!, whole, 'a whole number >= 1'),
    repeats: numberFlag('repeats', values.repeats!, whole, 'a whole number >= 1'),
    fraction: numberFlag('fraction', values.fraction!, (v) => v > 0 && v <= 1, 'a number in (0, 1]'),
    clip: numberFlag('clip', values.clip!, (v) => v > 0, 'a number > 0'),
    noise: values.noise!.split(',').map((s) => numberFlag('noise', s, (v) => v > 0, 'a comma list of numbers > 0')),
    workers:
      values.workers === undefined
        ? undefined
        : numberFlag('workers', values.workers, (v) => whole(v) && v <= 64, 'a whole number in [1, 64]'),
    resultsDir: values['results-dir']!,
    reportOnly: values['report-only']!,
  };
}

type Args = ReturnType<typeof parseCli>;

async function oneRun(
  args: Args,
  workers: number,
  noise: number,
  source: DpNoiseSource,
  seed: number,
): Promise<RunRecord> {
  const strategy = `dpfedavg:clip=${args.clip},noise=${noise},delta=${DELTA}`;
  const options: SimulationOptions = {
    dataset: 'mnist',
    model: 'mlp',
    nodes: NODES,
    fraction: args.fraction,
    minNodes: 1,
    partition: 'iid',
    strategy,
    rounds: args.rounds,
    seed,
    validationFraction: 0,
    workers,
    dpNoise: source,
  };
  const command =
    `edgefed simulate --dataset mnist --model mlp --nodes ${NODES} --fraction ${args.fraction} --min-nodes 1 --partition iid ` +
    `--rounds ${args.rounds} --seed ${seed} --validation 0 --strategy ${strategy} --dp-noise ${source} --json`;
  process.stderr.write(`${BENCH}: noise ${noise}, ${source}, seed ${seed}\n`);
  const r = await runSimulation(options, (rec) =>
    process.stderr.write(
      `  round ${rec.round}/${args.rounds} test acc ${rec.testAccuracy.toFixed(4)} eps ${rec.epsilon?.toFixed(3)}\n`,
    ),
  );
  const acc = r.rounds.map((x) => x.testAccuracy);
  return {
    noise,
    source,
    seed,
    final_accuracy: acc[acc.length - 1],
    accuracy_by_round: acc,
    epsilon: r.rounds[r.rounds.length - 1].epsilon ?? NaN,
    fused_rounds: r.rounds.filter((x) => x.fused).length,
    seconds: Math.round(r.seconds * 10) / 10,
    command,
  };
}

async function main(): Promise<void> {
  const args = parseCli(process.argv.slice(2));
  const files = resultFiles<ResultsFile>(args.resultsDir, BENCH, args.reportOnly, markdown);
  if (!files) return;
  const workers = args.workers ?? Math.max(1, Math.min(availableParallelism(), NODES));
  const started = performance.now();
  const loadBefore = loadavg()[0];
  const runs: RunRecord[] = [];
  const seeds = Array.from({ length: args.repeats }, (_, k) => k + 1);
  for (const seed of seeds) runs.push({ ...(await oneRun(args, workers, 0, 'seeded', seed)), source: 'reference' });
  for (const noise of args.noise) {
    for (const source of ['seeded', 'csprng'] as const) {
      for (const seed of seeds) runs.push(await oneRun(args, workers, noise, source, seed));
    }
  }
  const out: ResultsFile = {
    benchmark: BENCH,
    setting: {
      nodes: NODES,
      fraction: args.fraction,
      clip: args.clip,
      delta: DELTA,
      rounds: args.rounds,
      repeats: args.repeats,
      noise: args.noise,
    },
    load_average_1m: { before: loadBefore, after: loadavg()[0] },
    runs,
    ...provenance(workers, started),
  };
  mkdirSync(args.resultsDir, { recursive: true });
  writeAtomic(files.json, JSON.stringify(out, null, 2) + '\n');
  writeAtomic(files.md, markdown(out));
  process.stdout.write(markdown(out));
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const spread = (xs: number[]) => Math.max(...xs) - Math.min(...xs);
const pct = (v: number) => `${(v * 100).toFixed(2)}%`;

function markdown(f: ResultsFile): string {
  const s = f.setting;
  const group = (noise: number, source: string) => f.runs.filter((r) => r.noise === noise && r.source === source);
  const ref = f.runs.filter((r) => r.source === 'reference');
  const rows = s.noise.map((z) => {
    const seeded = group(z, 'seeded').map((r) => r.final_accuracy);
    const csprng = group(z, 'csprng').map((r) => r.final_accuracy);
    const gap = Math.abs(mean(seeded) - mean(csprng));
    const within = Math.max(spread(seeded), spread(csprng));
    const verdict =
      seeded.length < 2 ? 'one run each: no spread' : gap <= within ? 'within the spread' : '**outside the spread**';
    return (
      `| ${z} | ${group(z, 'seeded')[0]?.epsilon.toFixed(3)} | ${seeded.map(pct).join(', ')} | ${csprng.map(pct).join(', ')} | ` +
      `${(gap * 100).toFixed(2)} | ${(within * 100).toFixed(2)} | ${verdict} |`
    );
  });
  const m = f.machine;
  const command = `node --import tsx bench/dp.ts --rounds ${s.rounds} --repeats ${s.repeats} --fraction ${s.fraction} --clip ${s.clip} --noise ${s.noise.join(',')}`;
  return [
    `# DP-FedAvg on MNIST: ${s.nodes} nodes, seeded vs CSPRNG noise`,
    '',
    `Setting: MNIST IID over ${s.nodes} nodes (600 training images each), the seed MLP (784-128-10, Adam lr 0.001, E=1, B=32), ` +
      `Poisson sampling q = ${s.fraction} (expected ${s.fraction * s.nodes} nodes a round, fixed denominator qN), clip C = ${s.clip}, ` +
      `discrete Gaussian noise z C on the sum (grid C / 2^16), ${s.rounds} round${s.rounds === 1 ? '' : 's'}, delta ${s.delta}, seeds 1..${s.repeats}. ` +
      'Accuracy on the 10,000 MNIST test images after the last round. Epsilon from the per-round RDP accountant (identical for both sources).',
    '',
    `Reference (dpfedavg, noise 0: clipping only): ${ref.map((r) => pct(r.final_accuracy)).join(', ')}.`,
    '',
    '| noise z | epsilon | seeded: final accuracy by seed | CSPRNG: final accuracy by seed | gap of the means (points) | run-to-run spread (points) | same distribution? |',
    '|---:|---:|---|---|---:|---:|---|',
    ...rows,
    '',
    'Spread: the larger max - min of the final accuracies within one source. Seeds change the initial model, the data ' +
      'split, the sampling and (seeded) the noise, so with few seeds the spread understates the run-to-run variation: ' +
      'a gap "outside the spread" at 2 seeds calls for more seeds (--repeats) before it says anything about the sources.',
    '',
    `Machine: ${m.cpu_model}, ${m.cpu_cores} cores shared with other jobs (1-minute load ${f.load_average_1m.before.toFixed(1)} before, ` +
      `${f.load_average_1m.after.toFixed(1)} after), ${m.platform}, Node ${m.node}, kernels ${m.kernels}, ${m.workers} worker threads; ` +
      `${f.total_seconds.toFixed(0)} s for all ${f.runs.length} runs; commit ${f.git_commit ?? 'unknown'}.`,
    '',
    `This run: \`${command}\`. The full measurement: \`node --import tsx bench/dp.ts --rounds 20 --repeats 3\` (npm run bench:dp -- --rounds 20 --repeats 3).`,
    '',
  ].join('\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`${BENCH}: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
