/**
 * Benchmark: federated standardisation on examples/industrial-fault, one node per pump (natural:machine_id).
 * 1. The federated statistics (one analytics round of moments, merged with Chan's update) against the same
 *    statistics computed centrally on the pooled training rows (two float64 passes): max relative difference
 *    of mean and std over the features (target <= 1e-9).
 * 2. Accuracy with --standardize federated against --standardize node (each pump its own statistics, what a
 *    deployed CSV node does by default) and central (pooled; the reference, which no deployment can compute):
 *    final central test accuracy and final federated accuracy (each node's held-out rows, scaled as that node
 *    scales them), over a few seeds. Each run is the same as
 *      edgefed simulate --dataset 'csv:examples/industrial-fault/synthetic-pump-sensors.csv?label=fault&keep=machine_id' \
 *        --model mlp --nodes 8 --partition natural:machine_id --rounds R --seed S --eval-fraction 1 --standardize MODE
 *
 * Run:  npm run bench:standardize -- [--rounds 20] [--seeds 1,2,3]
 *       node --import tsx bench/standardize.ts --report-only    (rewrite the .md from the .json)
 */
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { runSimulation } from '../src/sim/simulate.js';
import { loadDatasetSpec } from '../src/data/load.js';
import { rawShards, federatedStandardization } from '../src/sim/analytics.js';
import { standardizeStats } from '../src/data/split.js';
import {
  environmentLines,
  machine,
  numberFlag,
  provenance,
  REPO,
  resultFiles,
  writeAtomic,
  type Provenance,
} from './support/results-io.js';
import type { StandardizeMode } from '../src/sim/standardize-shards.js';

const BENCH = 'standardize';
const DATASET = 'csv:examples/industrial-fault/synthetic-pump-sensors.csv?label=fault&keep=machine_id';
const NODES = 8;
const PARTITION = 'natural:machine_id';
const MODES: StandardizeMode[] = ['central', 'node', 'federated'];

interface RunRecord {
  mode: StandardizeMode;
  seed: number;
  final_test_accuracy: number;
  final_federated_accuracy: number;
  seconds: number;
}

interface ResultsFile extends Provenance {
  benchmark: string;
  setting: { dataset: string; nodes: number; partition: string; rounds: number; seeds: number[] };
  statistics: {
    features: number;
    max_relative_difference_mean: number;
    max_relative_difference_std: number;
    analytics_rounds: number;
    bytes_received: number;
  };
  runs: RunRecord[];
}

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const relDiff = (a: number[], b: number[]) => Math.max(...a.map((x, j) => Math.abs(x - b[j]) / Math.abs(b[j])));

function markdown(r: ResultsFile): string {
  const rows = MODES.map((mode) => {
    const runs = r.runs.filter((x) => x.mode === mode);
    const t = runs.map((x) => x.final_test_accuracy);
    const f = runs.map((x) => x.final_federated_accuracy);
    return `| ${mode} | ${mean(t).toFixed(4)} (${t.map((v) => v.toFixed(3)).join(', ')}) | ${mean(f).toFixed(4)} (${f.map((v) => v.toFixed(3)).join(', ')}) |`;
  });
  const s = r.statistics;
  return [
    '# Federated standardisation (industrial-fault, one node per pump)',
    '',
    `Setting: ${r.setting.dataset}, ${r.setting.nodes} nodes, ${r.setting.partition}, mlp, FedAvg, ${r.setting.rounds} rounds, ` +
      `seeds ${r.setting.seeds.join(', ')}; federated evaluation on every node's held-out 20% each round.`,
    '',
    '## Statistics: federated vs central (pooled training rows)',
    '',
    `Max relative difference over ${s.features} features: mean ${s.max_relative_difference_mean.toExponential(2)}, ` +
      `std ${s.max_relative_difference_std.toExponential(2)} (target <= 1e-9); ${s.analytics_rounds} analytics round, ` +
      `${s.bytes_received} bytes received from the nodes (no rows).`,
    '',
    '## Accuracy by scaling (mean over seeds, then each seed)',
    '',
    "| --standardize | final test accuracy | final federated accuracy (nodes' own held-out rows) |",
    '| --- | --- | --- |',
    ...rows,
    '',
    'central is the reference (pooled statistics, which no deployment has); node is what a deployed CSV node does by',
    'default; federated needs one analytics round. Under node, the central test set is scaled with pooled statistics',
    '(it belongs to no node), so its figure mixes scalings; the federated accuracy is the like-for-like comparison.',
    '',
    '## Environment',
    '',
    ...environmentLines(r.machine, r.git_commit).map((l) => `- ${l}`),
    `- finished ${r.finished_at}, ${r.total_seconds} s in all`,
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      rounds: { type: 'string', default: '20' },
      seeds: { type: 'string', default: '1,2,3' },
      'report-only': { type: 'boolean', default: false },
    },
  });
  const files = resultFiles<ResultsFile>(join(REPO, 'bench', 'results'), BENCH, values['report-only'], markdown);
  if (!files) return;
  const rounds = numberFlag('rounds', values.rounds, (v) => Number.isInteger(v) && v >= 1, 'a whole number >= 1');
  const seeds = values.seeds
    .split(',')
    .map((s) => numberFlag('seeds', s, (v) => Number.isInteger(v) && v >= 0, 'seeds'));
  const started = performance.now();
  for (const line of environmentLines(machine())) process.stderr.write(`${BENCH}: ${line}\n`);

  const { data, parts } = rawShards({ dataset: DATASET, partition: PARTITION, nodes: NODES, seed: seeds[0] });
  const central = standardizeStats(data.train);
  const { stats, result } = await federatedStandardization(data.train, parts);
  const check = loadDatasetSpec(DATASET).standardization!;
  if (relDiff(check.mean, central.mean) !== 0) throw new Error('pooled statistics differ between loaders');
  const statistics = {
    features: stats.mean.length,
    max_relative_difference_mean: relDiff(stats.mean, central.mean),
    max_relative_difference_std: relDiff(stats.std, central.std),
    analytics_rounds: result.rounds,
    bytes_received: result.bytes.received,
  };
  process.stderr.write(`${BENCH}: federated vs central statistics: ${JSON.stringify(statistics)}\n`);

  const runs: RunRecord[] = [];
  for (const seed of seeds) {
    for (const mode of MODES) {
      const r = await runSimulation({
        dataset: DATASET,
        model: 'mlp',
        nodes: NODES,
        partition: PARTITION,
        rounds,
        seed,
        evalFraction: 1,
        standardize: mode,
      });
      const last = r.rounds[r.rounds.length - 1];
      runs.push({
        mode,
        seed,
        final_test_accuracy: last.testAccuracy,
        final_federated_accuracy: last.federatedAccuracy,
        seconds: Math.round(r.seconds * 10) / 10,
      });
      process.stderr.write(`${BENCH}: ${JSON.stringify(runs[runs.length - 1])}\n`);
    }
  }
  const out: ResultsFile = {
    benchmark: BENCH,
    setting: { dataset: DATASET, nodes: NODES, partition: PARTITION, rounds, seeds },
    statistics,
    runs,
    ...provenance(1, started),
  };
  writeAtomic(files.json, JSON.stringify(out, null, 2) + '\n');
  writeAtomic(files.md, markdown(out));
  process.stdout.write(markdown(out));
}

await main();
