/**
 * Benchmark: compressed updates on the seed MLP.
 * MNIST, IID, 10 nodes (all every round), the seed MLP (784-128-10, its Adam, E=1, B=32), FedAvg, seed 1,
 * a fixed number of rounds, once per compression: none (float32), fp16, int8 (one scale per tensor),
 * int8-block:256, topk:0.01 with error feedback, and topk:0.01 without it (to show what feedback buys).
 * Each run is the same as
 *   edgefed simulate --model mlp --nodes 10 --partition iid --strategy fedavg --local-epochs 1 --batch-size 32 \
 *     --rounds R --seed 1 --compression SPEC --json
 * driven through runSimulation. Bytes are the frames the worker pool really carried (RoundRecord.bytesReceived:
 * every train reply's EFW1 frame, header and padding included), never estimated.
 *
 * Top-k learns more slowly per round, so `--catch-up-rounds N` also runs topk:0.01 (+EF) for N rounds and reports
 * the first round within 1 point of float's final accuracy, and the bytes received up to then against float's.
 *
 * Run:  node --import tsx bench/compression.ts [--rounds 20] [--seed 1] [--catch-up-rounds 60] [--workers N] [--reuse] [--results-dir bench/results]
 * (--reuse keeps the runs already in compression.json for the same rounds and seed instead of repeating them.)
 * Writes RESULTS_DIR/compression.json (every run: curves and bytes per round) and RESULTS_DIR/compression.md.
 */
import { parseArgs } from 'node:util';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { runSimulation } from '../src/sim/simulate.js';
import type { SimulationOptions } from '../src/sim/options.js';
import { printEnvironment, REPO } from './support/results-io.js';

interface Case {
  spec: string;
  label: string;
  /** The issue's bar for this case: accuracy within `points` of float at >= `ratio` fewer bytes. */
  target?: { points: number; ratio: number };
}

const CASES: readonly Case[] = [
  { spec: 'none', label: 'float32 (reference)' },
  { spec: 'fp16', label: 'fp16' },
  { spec: 'int8', label: 'int8, one scale per tensor', target: { points: 0.5, ratio: 4 } },
  { spec: 'int8-block:256', label: 'int8, one scale per 256 values', target: { points: 0.5, ratio: 4 } },
  { spec: 'topk:0.01', label: 'top-k 1% + error feedback', target: { points: 1, ratio: 30 } },
  { spec: 'topk:0.01,ef=off', label: 'top-k 1%, no error feedback (for comparison)' },
];

interface RunRecord {
  spec: string;
  label: string;
  command: string;
  rounds: number;
  finalAccuracy: number;
  accuracyByRound: number[];
  bytesReceivedByRound: number[];
  bytesSentByRound: number[];
  meanBytesReceivedPerRound: number;
  modelSha256: string;
  seconds: number;
}

async function runCase(c: Case, rounds: number, seed: number, workers?: number): Promise<RunRecord> {
  const options: SimulationOptions = {
    dataset: 'mnist',
    model: 'mlp',
    nodes: 10,
    fraction: 1,
    partition: 'iid',
    strategy: 'fedavg',
    localEpochs: 1,
    batchSize: 32,
    rounds,
    seed,
    compression: c.spec,
    ...(workers ? { workers } : {}),
  };
  const r = await runSimulation(options, (rec) =>
    process.stderr.write(
      `${c.spec} round ${rec.round}/${rounds} acc ${rec.testAccuracy.toFixed(4)} received ${rec.bytesReceived} B\n`,
    ),
  );
  const received = r.rounds.map((x) => x.bytesReceived);
  return {
    spec: c.spec,
    label: c.label,
    rounds: r.rounds.length,
    command: `edgefed simulate --model mlp --nodes 10 --partition iid --strategy fedavg --local-epochs 1 --batch-size 32 --rounds ${rounds} --seed ${seed} --compression ${c.spec} --json`,
    finalAccuracy: r.rounds[r.rounds.length - 1].testAccuracy,
    accuracyByRound: r.rounds.map((x) => x.testAccuracy),
    bytesReceivedByRound: received,
    bytesSentByRound: r.rounds.map((x) => x.bytesSent),
    meanBytesReceivedPerRound: received.reduce((a, b) => a + b, 0) / received.length,
    modelSha256: r.modelSha256,
    seconds: r.seconds,
  };
}

interface Row extends RunRecord {
  ratio: number;
  pointsVsFloat: number;
  target?: { points: number; ratio: number; met: boolean };
}

function rows(runs: RunRecord[]): Row[] {
  const float = runs[0];
  return runs.map((r) => {
    const ratio = float.meanBytesReceivedPerRound / r.meanBytesReceivedPerRound;
    const pointsVsFloat = 100 * (r.finalAccuracy - float.finalAccuracy);
    const t = CASES.find((c) => c.spec === r.spec)?.target;
    return {
      ...r,
      ratio,
      pointsVsFloat,
      ...(t ? { target: { ...t, met: pointsVsFloat >= -t.points && ratio >= t.ratio } } : {}),
    };
  });
}

interface CatchUp {
  spec: string;
  rounds: number;
  /** Float's final accuracy minus 1 point: the bar top-k must reach. */
  bar: number;
  /** First round at or above the bar (null: not within these rounds). */
  round: number | null;
  accuracyByRound: number[];
  /** Bytes received up to that round, and float's over its whole run. */
  bytesToRound: number | null;
  floatBytes: number;
}

function catchUp(run: RunRecord, float: RunRecord): CatchUp {
  const bar = float.finalAccuracy - 0.01;
  const i = run.accuracyByRound.findIndex((a) => a >= bar);
  return {
    spec: run.spec,
    rounds: run.rounds,
    bar,
    round: i < 0 ? null : i + 1,
    accuracyByRound: run.accuracyByRound,
    bytesToRound: i < 0 ? null : run.bytesReceivedByRound.slice(0, i + 1).reduce((a, b) => a + b, 0),
    floatBytes: float.bytesReceivedByRound.reduce((a, b) => a + b, 0),
  };
}

function catchUpMarkdown(c: CatchUp, floatRounds: number): string[] {
  const head = `Catch-up: \`${c.spec}\` run for ${c.rounds} rounds against float's ${floatRounds}-round accuracy minus 1 point (${(100 * c.bar).toFixed(2)}%):`;
  if (c.round === null)
    return [
      head,
      `not reached within ${c.rounds} rounds (final ${(100 * c.accuracyByRound[c.accuracyByRound.length - 1]).toFixed(2)}%).`,
      '',
    ];
  return [
    head,
    `reached at round ${c.round} (${(100 * c.accuracyByRound[c.round - 1]).toFixed(2)}%), having received ${c.bytesToRound} bytes against float's ${c.floatBytes} over ${floatRounds} rounds ` +
      `(${(c.floatBytes / c.bytesToRound!).toFixed(1)}x fewer in total).`,
    '',
  ];
}

function markdown(table: Row[], rounds: number, seed: number, long?: CatchUp): string {
  const lines = [
    '# Compressed updates on the seed MLP',
    '',
    `MNIST, IID, 10 nodes (all every round), seed MLP 784-128-10 (Adam), FedAvg, E=1, B=32, ${rounds} rounds, seed ${seed}.`,
    'Bytes received per round are the train-reply frames the worker pool carried (headers and padding included), averaged over the rounds;',
    'the ratio is float32 bytes / compressed bytes. Downlink (the global model sent to nodes) is not compressed. Generated by `npm run bench:compression`.',
    '',
    '| compression | spec | bytes received / round | ratio to float | final test accuracy | vs float (points) | target | met |',
    '| --- | --- | ---: | ---: | ---: | ---: | --- | --- |',
    ...table.map(
      (r) =>
        `| ${r.label} | \`${r.spec}\` | ${Math.round(r.meanBytesReceivedPerRound)} | ${r.ratio.toFixed(2)}x | ${(100 * r.finalAccuracy).toFixed(2)}% | ` +
        `${r.pointsVsFloat >= 0 ? '+' : ''}${r.pointsVsFloat.toFixed(2)} | ${r.target ? `within ${r.target.points} pt at >= ${r.target.ratio}x` : ''} | ${r.target ? (r.target.met ? 'yes' : 'NO') : ''} |`,
    ),
    '',
    ...(long ? catchUpMarkdown(long, rounds) : []),
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '20' },
      seed: { type: 'string', default: '1' },
      workers: { type: 'string' },
      'catch-up-rounds': { type: 'string', default: '0' },
      reuse: { type: 'boolean', default: false },
      'results-dir': { type: 'string', default: join(REPO, 'bench/results') },
    },
  });
  const longRounds = Number(values['catch-up-rounds']);
  printEnvironment('bench:compression');
  if (!Number.isInteger(longRounds) || longRounds < 0)
    throw new Error(`--catch-up-rounds must be a whole number >= 0, got ${values['catch-up-rounds']}`);
  const rounds = Number(values.rounds);
  const seed = Number(values.seed);
  const workers = values.workers === undefined ? undefined : Number(values.workers);
  if (!Number.isInteger(rounds) || rounds < 1)
    throw new Error(`--rounds must be a whole number >= 1, got ${values.rounds}`);
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed must be a whole number >= 0, got ${values.seed}`);
  if (workers !== undefined && !(Number.isInteger(workers) && workers >= 1))
    throw new Error(`--workers must be a whole number >= 1, got ${values.workers}`);
  const dir = resolve(values['results-dir']!);
  const file = join(dir, 'compression.json');
  const previous =
    values.reuse && existsSync(file)
      ? (JSON.parse(readFileSync(file, 'utf8')) as { rounds: number; seed: number; runs: RunRecord[] })
      : undefined;
  const kept = previous && previous.rounds === rounds && previous.seed === seed ? previous.runs : [];
  const runs: RunRecord[] = [];
  for (const c of CASES) runs.push(kept.find((r) => r.spec === c.spec) ?? (await runCase(c, rounds, seed, workers)));
  const table = rows(runs);
  const long = longRounds > 0 ? catchUp(await runCase(CASES[4], longRounds, seed, workers), runs[0]) : undefined;
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    file,
    JSON.stringify(
      {
        bench: 'compression',
        date: new Date().toISOString(),
        rounds,
        seed,
        runs: table,
        ...(long ? { catchUp: long } : {}),
      },
      null,
      2,
    ) + '\n',
  );
  const md = markdown(table, rounds, seed, long);
  writeFileSync(join(dir, 'compression.md'), md);
  process.stdout.write(md);
}

await main();
