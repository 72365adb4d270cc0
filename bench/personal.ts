/**
 * Benchmark: personalisation on pathological non-IID MNIST (two label shards per node, 100 nodes, 10 a round, the
 * 2NN). Every node keeps 20% of its shards as a held-out split; every round all 100 nodes evaluate on it, the
 * global model (federatedAccuracy: the per-node mean, nodes hold equal shares) and, for FedPer / FedRep / Ditto,
 * their personalised model (mean, 10th percentile and minimum across nodes). FedAvg is the reference. Each run is
 *   edgefed simulate --dataset mnist --model 2nn --nodes 100 --fraction 0.1 --partition shards:2 --strategy S \
 *     --local-epochs 1 --batch-size 10 --optimizer sgd --lr LR --rounds R --seed SEED --validation 0.2 \
 *     --eval-fraction 1 --json
 *
 * Run:  node --import tsx bench/personal.ts [--rounds 60] [--seed 1] [--lr 0.05] [--workers N]
 *       [--strategies fedavg,fedper,fedrep,ditto] [--results-dir bench/results] [--merge]
 *       node --import tsx bench/personal.ts --report-only
 * --merge keeps the existing results' rows of the strategies not run now (same setting only); each row names the
 * commit it was measured at.
 */
import { parseArgs } from 'node:util';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { runSimulation } from '../src/sim/simulate.js';
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

const BENCH = 'personal';

interface RunRecord {
  strategy: string;
  seed: number;
  rounds: number;
  global_test_accuracy: number;
  global_per_node_mean: number;
  personal_mean: number | null;
  personal_p10: number | null;
  personal_min: number | null;
  /**
   * First round whose personalised mean reached 0.98 (null: never). Early rounds average over the few nodes
   * selected so far, so this is in the JSON only, not the table.
   */
  personal_to_98: number | null;
  mb_down: number;
  mb_up: number;
  seconds: number;
  command: string;
  /** The commit the row was measured at (absent: the file's git_commit). */
  commit?: string | null;
}

interface ResultsFile extends Provenance {
  benchmark: string;
  setting: { nodes: number; fraction: number; partition: string; model: string; lr: number; rounds: number };
  runs: RunRecord[];
}

const { values: v } = parseArgs({
  options: {
    rounds: { type: 'string', default: '60' },
    seed: { type: 'string', default: '1' },
    lr: { type: 'string', default: '0.05' },
    strategies: { type: 'string', default: 'fedavg,fedper,fedrep,ditto' },
    merge: { type: 'boolean', default: false },
    ...RESULT_FLAGS,
  },
});

const whole = wholeFlag;

function markdown(f: ResultsFile): string {
  const s = f.setting;
  const pct = (x: number | null) => (x === null ? '-' : (100 * x).toFixed(2));
  return [
    `# Personalisation on ${s.partition}: ${s.nodes} nodes, ${s.fraction * s.nodes} a round, ${s.model}`,
    '',
    `MNIST, ${s.partition} (each node two label shards), 20% of each node held out; SGD lr ${s.lr}, B=10, E=1, ` +
      `${s.rounds} rounds. All ${s.nodes} nodes evaluate every round on their held-out split. "global per node" is the ` +
      'global model on those splits (mean over nodes); "personal" is each node\'s own model (global body + its head for ' +
      "FedPer/FedRep, Ditto's personal model), after the last round; nodes never selected have no personal model and are left " +
      'out (with 10 of 100 a round, a node is selected about once in 10 rounds: Ditto trains its personal model only then).',
    '',
    '| strategy | seed | global test acc % | global per-node mean % | personal mean % | personal P10 % | personal min % | MB down / up | seconds |',
    '|---|---|---|---|---|---|---|---|---|',
    ...f.runs.map(
      (r) =>
        `| ${r.strategy} | ${r.seed} | ${pct(r.global_test_accuracy)} | ${pct(r.global_per_node_mean)} | ` +
        `${pct(r.personal_mean)} | ${pct(r.personal_p10)} | ${pct(r.personal_min)} | ` +
        `${r.mb_down.toFixed(1)} / ${r.mb_up.toFixed(1)} | ${r.seconds.toFixed(1)} |`,
    ),
    '',
    'Commands: ' + f.runs.map((r) => `\`${r.command}\``).join(', '),
    '',
    ...commitsNote(f),
    ...environmentFooter(f),
    '',
  ].join('\n');
}

/** With rows from different commits (--merge), which row came from which: the environment below is the newest's. */
function commitsNote(f: ResultsFile): string[] {
  const at = (r: RunRecord) => (r.commit ?? f.git_commit ?? 'unknown').slice(0, 7);
  if (new Set(f.runs.map(at)).size < 2) return [];
  const rows = f.runs.map((r) => `${r.strategy} at ${at(r)}`).join(', ');
  return [`Rows measured at different commits (--merge): ${rows}; the environment below is the last run's.`, ''];
}

/** The rows of an earlier results file to keep beside this run's (--merge): same setting, other strategies. */
function keptRows(file: string, setting: ResultsFile['setting'], running: string[]): RunRecord[] {
  if (!existsSync(file)) return [];
  const old = JSON.parse(readFileSync(file, 'utf8')) as ResultsFile;
  if (JSON.stringify(old.setting) !== JSON.stringify(setting))
    throw new Error(`--merge: ${file} has setting ${JSON.stringify(old.setting)}, this run ${JSON.stringify(setting)}`);
  return old.runs
    .filter((r) => !running.includes(r.strategy))
    .map((r) => ({ ...r, commit: r.commit ?? old.git_commit }));
}

async function main(): Promise<void> {
  const files = resultFiles<ResultsFile>(v['results-dir']!, BENCH, v['report-only']!, markdown);
  if (!files) return;
  const rounds = whole('rounds', v.rounds!);
  const seed = whole('seed', v.seed!);
  const lr = numberFlag('lr', v.lr!, (x) => x > 0, 'a number > 0');
  const workers = v.workers ? whole('workers', v.workers) : Math.max(1, availableParallelism());
  printEnvironment(BENCH);
  const started = performance.now();
  const setting = { nodes: 100, fraction: 0.1, partition: 'shards:2', model: '2nn', lr, rounds };
  const strategies = v.strategies!.split(',');
  const kept = v.merge ? keptRows(files.json, setting, strategies) : [];
  const runs: RunRecord[] = [];
  for (const strategy of strategies) {
    const r = await runSimulation(
      {
        dataset: 'mnist',
        model: setting.model,
        nodes: setting.nodes,
        fraction: setting.fraction,
        partition: setting.partition,
        strategy,
        localEpochs: 1,
        batchSize: 10,
        optimizer: 'sgd',
        lr,
        rounds,
        seed,
        validationFraction: 0.2,
        evalFraction: 1,
        workers,
      },
      (rec) => {
        if (rec.round % 10 === 0 || rec.round === rounds)
          process.stderr.write(
            `${strategy} round ${rec.round}: global per node ${rec.federatedAccuracy.toFixed(4)}, personal ` +
              `${rec.personalizedAccuracyMean?.toFixed(4) ?? '-'}\n`,
          );
      },
    );
    const last = r.rounds.at(-1)!;
    const to98 = r.rounds.findIndex((x) => (x.personalizedAccuracyMean ?? 0) >= 0.98);
    runs.push({
      strategy,
      seed,
      rounds,
      global_test_accuracy: last.testAccuracy,
      global_per_node_mean: last.federatedAccuracy,
      personal_mean: last.personalizedAccuracyMean ?? null,
      personal_p10: last.personalizedAccuracyP10 ?? null,
      personal_min: last.personalizedAccuracyMin ?? null,
      personal_to_98: to98 < 0 ? null : to98 + 1,
      mb_down: r.bytesSent / 1e6,
      mb_up: r.bytesReceived / 1e6,
      seconds: r.seconds,
      command:
        `edgefed simulate --dataset mnist --model 2nn --nodes 100 --fraction 0.1 --partition shards:2 --strategy ` +
        `${strategy} --local-epochs 1 --batch-size 10 --optimizer sgd --lr ${lr} --rounds ${rounds} --seed ${seed} ` +
        '--validation 0.2 --eval-fraction 1 --json',
    });
  }
  const made = provenance(workers, started);
  const order = (r: RunRecord) => ['fedavg', 'fedper', 'fedrep', 'ditto'].indexOf(r.strategy.split(':')[0]);
  const all = [...kept, ...runs.map((r) => ({ ...r, commit: made.git_commit }))].sort((a, b) => order(a) - order(b));
  const out: ResultsFile = { benchmark: BENCH, setting, runs: all, ...made };
  writeAtomic(files.json, JSON.stringify(out, null, 2) + '\n');
  writeAtomic(files.md, markdown(out));
  process.stdout.write(markdown(out));
}

await main();
