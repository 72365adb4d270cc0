/**
 * Benchmark: the accuracy cost of local DP (every node clips its update to C and adds discrete Gaussian noise
 * z C per coordinate before it leaves) on MNIST IID, 100 nodes, 10 a round, the seed MLP, at three noise levels
 * beside a reference without local DP. Epsilon is per node: each update a node sends costs it one step of the
 * RDP accountant at q = 1 (the coordinator knows whom it asked, so no amplification by subsampling), so a node's
 * epsilon depends on how often it was selected; the table gives the mean, min and max over the nodes that sent.
 * Each run is
 *   edgefed simulate --dataset mnist --model mlp --nodes 100 --fraction 0.1 --partition iid --rounds R --seed S \
 *     --validation 0 [--local-dp clip=C,noise=Z] --json
 *
 * Run:  node --import tsx bench/local-dp.ts [--rounds 15] [--seed 1] [--clip 1] [--noise 0.1,0.3,1]
 *       [--workers N] [--results-dir bench/results]
 *       node --import tsx bench/local-dp.ts --report-only
 */
import { parseArgs } from 'node:util';
import { availableParallelism } from 'node:os';
import { runSimulation } from '../src/sim/simulate.js';
import { PrivacyLedger } from '../src/engine/privacy-ledger.js';
import {
  environmentFooter,
  numberFlag,
  RESULT_FLAGS,
  wholeFlag,
  printEnvironment,
  provenance,
  resultFiles,
  writeAtomic,
  type Provenance,
} from './support/results-io.js';

const BENCH = 'local-dp';
const NODES = 100;
const DELTA = 1e-5;

interface RunRecord {
  /** null: the reference without local DP. */
  noise: number | null;
  final_accuracy: number;
  best_accuracy: number;
  accuracy_by_round: number[];
  epsilon: { mean: number; min: number; max: number } | null;
  /** Updates sent per node: mean, min and max over the nodes that sent any. */
  updates: { mean: number; min: number; max: number; nodes: number };
  seconds: number;
  command: string;
}

interface ResultsFile extends Provenance {
  benchmark: string;
  setting: { nodes: number; fraction: number; clip: number; delta: number; rounds: number; seed: number };
  runs: RunRecord[];
}

const { values: v } = parseArgs({
  options: {
    rounds: { type: 'string', default: '15' },
    seed: { type: 'string', default: '1' },
    clip: { type: 'string', default: '1' },
    noise: { type: 'string', default: '0.1,0.3,1' },
    ...RESULT_FLAGS,
  },
});

const whole = wholeFlag;
const stats = (xs: number[]) => ({
  mean: xs.reduce((a, b) => a + b, 0) / xs.length,
  min: Math.min(...xs),
  max: Math.max(...xs),
});

/** A node's epsilon after `updates` releases at noise z (q = 1 each), from the same ledger a node keeps. */
function epsilonAfter(noise: number, updates: number): number {
  const ledger = new PrivacyLedger(noise, DELTA);
  for (let i = 0; i < updates; i++) ledger.recordRound(1);
  return ledger.spent().epsilon;
}

function markdown(f: ResultsFile): string {
  const s = f.setting;
  const pct = (x: number) => (100 * x).toFixed(2);
  const eps = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(2));
  return [
    `# Local DP on MNIST IID: ${s.nodes} nodes, ${s.fraction * s.nodes} a round, accuracy vs per-node epsilon`,
    '',
    `The seed MLP (784-128-10, its default optimizer), E=1, B=32, ${s.rounds} rounds, seed ${s.seed}; every node clips ` +
      `its update to C = ${s.clip} and adds discrete Gaussian noise z C per coordinate (grid C / 2^16, noise from the ` +
      `seeded source: a deployed node uses its CSPRNG). Epsilon at delta ${s.delta} per node from the RDP accountant, ` +
      'one step at q = 1 per update it sent. Accuracy on the 10,000 MNIST test images.',
    '',
    '| noise z | final acc % | best acc % | epsilon per node: mean (min-max) | updates per node: mean (min-max) | seconds |',
    '|---|---|---|---|---|---|',
    ...f.runs.map(
      (r) =>
        `| ${r.noise ?? 'none (reference)'} | ${pct(r.final_accuracy)} | ${pct(r.best_accuracy)} | ` +
        `${r.epsilon ? `${eps(r.epsilon.mean)} (${eps(r.epsilon.min)}-${eps(r.epsilon.max)})` : '-'} | ` +
        `${r.updates.mean.toFixed(1)} (${r.updates.min}-${r.updates.max}) | ${r.seconds.toFixed(1)} |`,
    ),
    '',
    'Commands: ' + f.runs.map((r) => `\`${r.command}\``).join(', '),
    '',
    ...environmentFooter(f),
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const files = resultFiles<ResultsFile>(v['results-dir']!, BENCH, v['report-only']!, markdown);
  if (!files) return;
  const rounds = whole('rounds', v.rounds!);
  const seed = whole('seed', v.seed!);
  const clip = numberFlag('clip', v.clip!, (x) => x > 0, 'a number > 0');
  const noises = v.noise!.split(',').map((t) => numberFlag('noise', t, (x) => x > 0, 'numbers > 0, comma separated'));
  const workers = v.workers ? whole('workers', v.workers) : Math.max(1, availableParallelism());
  printEnvironment(BENCH);
  const started = performance.now();
  const runs: RunRecord[] = [];
  for (const noise of [null, ...noises]) {
    const localDp = noise === null ? undefined : `clip=${clip},noise=${noise},delta=${DELTA}`;
    const r = await runSimulation(
      {
        dataset: 'mnist',
        model: 'mlp',
        nodes: NODES,
        fraction: 0.1,
        partition: 'iid',
        strategy: 'fedavg',
        rounds,
        seed,
        validationFraction: 0,
        workers,
        ...(localDp ? { localDp } : {}),
      },
      (rec) =>
        process.stderr.write(`${BENCH}: noise ${noise ?? '-'} round ${rec.round} acc ${rec.testAccuracy.toFixed(4)}\n`),
    );
    const sent = new Map<number, number>();
    for (const rec of r.rounds) for (const id of rec.contributed) sent.set(id, (sent.get(id) ?? 0) + 1);
    const counts = [...sent.values()];
    const acc = r.rounds.map((x) => x.testAccuracy);
    runs.push({
      noise,
      final_accuracy: acc.at(-1)!,
      best_accuracy: Math.max(...acc),
      accuracy_by_round: acc,
      epsilon: noise === null ? null : stats(counts.map((k) => epsilonAfter(noise, k))),
      updates: { ...stats(counts), nodes: counts.length },
      seconds: r.seconds,
      command:
        `edgefed simulate --dataset mnist --model mlp --nodes ${NODES} --fraction 0.1 --partition iid --rounds ${rounds} ` +
        `--seed ${seed} --validation 0${localDp ? ` --local-dp ${localDp}` : ''} --json`,
    });
  }
  const setting = { nodes: NODES, fraction: 0.1, clip, delta: DELTA, rounds, seed };
  const out: ResultsFile = { benchmark: BENCH, setting, runs, ...provenance(workers, started) };
  writeAtomic(files.json, JSON.stringify(out, null, 2) + '\n');
  writeAtomic(files.md, markdown(out));
  process.stdout.write(markdown(out));
}

await main();
