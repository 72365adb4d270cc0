/**
 * Benchmark: strategies on non-IID MNIST (the issue's figures). One partition per invocation; every strategy
 * and seed in it runs the same simulation with only --strategy changed:
 *   edgefed simulate --dataset mnist --model MODEL --nodes N --fraction 1 --partition PART --strategy S \
 *     --local-epochs 1 --batch-size 32 --optimizer sgd --lr 0.05 --rounds R --seed SEED --validation 0
 * Prints (stdout, markdown) per strategy: final and best test accuracy (mean over seeds), rounds to 90% and
 * 95% (per seed, '-' = not reached), MB down/up per run, wall seconds, and the environment beside them.
 *
 * Run:  node --import tsx bench/niid.ts [--partition dirichlet:0.1[,shards:1,iid]] [--seeds 1,2,3] [--rounds 50]
 *       [--nodes 10] [--model mlp] [--strategies fedavg,fedprox:0.01,fednova,scaffold,feddyn] [--limit-train N]
 *       [--limit-test N] [--lr 0.05] [--workers N] [--out NAME]
 *       node --import tsx bench/niid.ts --full [--out NAME]
 *         the issue's full setting: dirichlet:0.1, shards:1 and iid, 3 seeds, 50 rounds, all 60,000 / 10,000
 *         images (45 runs); the other flags are ignored with --full.
 * With several partitions, one table each. --out NAME also writes bench/results/NAME.md and NAME.json.
 */
import { parseArgs } from 'node:util';
import { loadavg } from 'node:os';
import { runSimulation } from '../src/sim/simulate.js';
import { join } from 'node:path';
import { environmentLines, machine, gitCommit, numberFlag, REPO, writeAtomic } from './support/results-io.js';

const { values: v } = parseArgs({
  options: {
    partition: { type: 'string', default: 'dirichlet:0.1' },
    seeds: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '50' },
    nodes: { type: 'string', default: '10' },
    model: { type: 'string', default: 'mlp' },
    strategies: { type: 'string', default: 'fedavg,fedprox:0.01,fednova,scaffold,feddyn' },
    'limit-train': { type: 'string' },
    'limit-test': { type: 'string' },
    lr: { type: 'string', default: '0.05' },
    workers: { type: 'string' },
    full: { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
if (v.full) {
  Object.assign(v, { partition: 'dirichlet:0.1,shards:1,iid', seeds: '1,2,3', rounds: '50', nodes: '10' });
  Object.assign(v, { model: 'mlp', lr: '0.05', 'limit-train': undefined, 'limit-test': undefined });
  v.strategies = 'fedavg,fedprox:0.01,fednova,scaffold,feddyn';
}
const partitions = v.partition!.split(/,(?=[a-z]+(?::|,|$))/);
const whole = (name: string, text: string) =>
  numberFlag(name, text, (x) => Number.isInteger(x) && x >= 1, 'a whole number >= 1');
const seeds = v
  .seeds!.split(',')
  .map((s) => numberFlag('seeds', s, (x) => Number.isInteger(x) && x >= 0, 'whole numbers >= 0, comma separated'));
// Strategy texts may contain commas of their own (`fedprox:mu=0.01,eta=1`): split on ',' before a known name only.
const strategies = v.strategies!.split(/,(?=[a-z]+(?::|,|$))/);
const rounds = whole('rounds', v.rounds!);
const limits = {
  ...(v['limit-train'] ? { limitTrain: whole('limit-train', v['limit-train']) } : {}),
  ...(v['limit-test'] ? { limitTest: whole('limit-test', v['limit-test']) } : {}),
  ...(v.workers ? { workers: whole('workers', v.workers) } : {}),
};

interface Row {
  strategy: string;
  final: number[];
  best: number[];
  to90: (number | null)[];
  to95: (number | null)[];
  down: number;
  up: number;
  seconds: number;
}

const firstRound = (acc: number[], target: number) => {
  const i = acc.findIndex((a) => a >= target);
  return i < 0 ? null : i + 1;
};

const started = performance.now();
const load = loadavg()[0];
const tables: { partition: string; rows: Row[] }[] = [];
for (const partition of partitions) tables.push({ partition, rows: await runPartition(partition) });

async function runPartition(partition: string): Promise<Row[]> {
  const rows: Row[] = [];
  for (const strategy of strategies) {
    const row: Row = { strategy, final: [], best: [], to90: [], to95: [], down: 0, up: 0, seconds: 0 };
    for (const seed of seeds) {
      const r = await runSimulation({
        dataset: 'mnist',
        model: v.model,
        nodes: whole('nodes', v.nodes!),
        fraction: 1,
        partition,
        strategy,
        localEpochs: 1,
        batchSize: 32,
        optimizer: 'sgd',
        lr: numberFlag('lr', v.lr!, (x) => x > 0, 'a number > 0'),
        rounds,
        seed,
        validationFraction: 0,
        ...limits,
      });
      const acc = r.rounds.map((x) => x.testAccuracy);
      row.final.push(acc.at(-1)!);
      row.best.push(Math.max(...acc));
      row.to90.push(firstRound(acc, 0.9));
      row.to95.push(firstRound(acc, 0.95));
      row.down += r.bytesSent / seeds.length;
      row.up += r.bytesReceived / seeds.length;
      row.seconds += r.seconds;
      process.stderr.write(
        `${partition} ${strategy} seed ${seed}: final ${acc.at(-1)!.toFixed(4)} in ${r.seconds.toFixed(1)}s\n`,
      );
    }
    rows.push(row);
  }
  return rows;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const pct = (x: number) => (100 * x).toFixed(2);
const env = machine(v.workers ? Number(v.workers) : 0);
const table = (partition: string, rows: Row[]) => [
  `## bench:niid — partition ${partition}, model ${v.model}, ${v.nodes} nodes (all every round), ${rounds} rounds, seeds ${seeds.join(',')}`,
  '',
  `SGD lr ${v.lr}, B=32, E=1${v['limit-train'] ? `, first ${v['limit-train']} training examples` : ''}${v['limit-test'] ? `, first ${v['limit-test']} test examples` : ''}.`,
  '',
  '| strategy | final acc % (mean) | best acc % (mean) | rounds to 90% | rounds to 95% | MB down / run | MB up / run | seconds (all seeds) |',
  '|---|---|---|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.strategy} | ${pct(mean(r.final))} | ${pct(mean(r.best))} | ${r.to90.map((x) => x ?? '-').join(', ')} | ` +
      `${r.to95.map((x) => x ?? '-').join(', ')} | ${(r.down / 1e6).toFixed(1)} | ${(r.up / 1e6).toFixed(1)} | ${r.seconds.toFixed(1)} |`,
  ),
  '',
];
const totalSeconds = (performance.now() - started) / 1000;
const runs = partitions.length * strategies.length * seeds.length;
const out = [
  `Command: \`node --import tsx bench/niid.ts ${process.argv.slice(2).join(' ')}\``,
  '',
  ...tables.flatMap((t) => table(t.partition, t.rows)),
  'Environment:',
  '',
  ...environmentLines(env).map((line) => `- ${line}`),
  `- load average ${load.toFixed(2)} at start, ${loadavg()[0].toFixed(2)} at the end; ${env.note}.`,
  '',
  `Total wall time ${totalSeconds.toFixed(1)} s for ${runs} runs of ${rounds} rounds ` +
    `(${(totalSeconds / (runs * rounds)).toFixed(2)} s per run-round).`,
];
process.stdout.write(out.join('\n') + '\n');
if (v.out) {
  const dir = join(REPO, 'bench', 'results');
  writeAtomic(join(dir, `${v.out}.md`), out.join('\n') + '\n');
  const setting = { partitions, strategies, seeds, rounds, nodes: v.nodes, model: v.model, lr: v.lr, ...limits };
  const json = {
    benchmark: 'niid',
    setting,
    tables,
    machine: env,
    total_seconds: totalSeconds,
    git_commit: gitCommit(),
  };
  writeAtomic(join(dir, `${v.out}.json`), JSON.stringify(json, null, 2) + '\n');
}
