/**
 * bench:node-memory: peak resident memory of real `edgefed node` processes training the GRU traffic
 * forecaster (examples/traffic-flow, SYNTHETIC loop detectors) in a deployment on loopback: a coordinator with
 * a run config of model gru and two nodes, each holding two detectors' CSV (the example's --per-site files).
 * Each node's VmHWM (/proc/PID/status: the kernel's own peak RSS, so no sample is missed) is read when the run
 * has finished, with the node still up. The bound to hold: 150 MB per node. Every run also hashes the final
 * global model (sha256 of weights.bin), so a change that moves memory can be checked not to move results.
 *
 * `--entry dist` runs each node as an installed package does: the `edgefed` command (bin/edgefed.mjs, run
 * through its shebang as a shell runs it) in a package folder with bin/, dist/ and package.json and no src/,
 * so the launcher takes the built JavaScript (`npm run build:lib`, which `npm ci` runs, builds dist/; a dist/
 * older than src/ is refused). `--entry source` runs bin/edgefed.mjs in this checkout, which compiles src/
 * with tsx at startup. The coordinator always runs from source (it is not what is measured).
 *
 * Each invocation adds one row (its --label; the same label replaces its row) to results/node-memory.json
 * and rewrites results/node-memory.md; `--report-only` rewrites the table from the JSON.
 *
 *   npm run bench:node-memory -- [--runs 3] [--rounds 3] [--model gru] [--entry dist|source] [--label TEXT]
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  ADMIN_TOKEN,
  freePort,
  joinToken,
  killAll,
  runView,
  startCoordinator,
  waitFor,
  waitHealthy,
  waitOnline,
  type Proc,
} from '../test/deploy-harness.js';
import {
  environmentFooter,
  gitCommit,
  numberFlag,
  printEnvironment,
  provenance,
  REPO,
  resultFiles,
  RESULT_FLAGS,
  writeAtomic,
  type Provenance,
} from './support/results-io.js';

const BENCH = 'node-memory';
const BOUND_MB = 150;
const WINDOW = 'window=24&horizon=1&target=flow&key=sensor&keep=slot&test=0.25';

interface RunResult {
  /** VmHWM of each node process, MB, in node order. */
  peakMb: number[];
  /** VmRSS of each node process when the run had finished, MB. */
  nowMb: number[];
  modelSha256: string;
  seconds: number;
}

interface Row {
  label: string;
  entry: string;
  model: string;
  rounds: number;
  runs: RunResult[];
  provenance: Provenance;
}

const statusMb = (pid: number, field: string): number => {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 102.4) / 10 : NaN;
};

/** The newest modification time under dir of the files that build into dist/ (tests left out). */
function newestSource(dir: string): number {
  return readdirSync(dir).reduce((newest, name) => {
    const path = join(dir, name);
    const s = statSync(path);
    if (s.isDirectory()) return Math.max(newest, newestSource(path));
    const built = (name.endsWith('.ts') && !name.endsWith('.test.ts')) || name.endsWith('.mjs');
    return built ? Math.max(newest, s.mtimeMs) : newest;
  }, 0);
}

/**
 * A package folder as npm installs one (bin/, dist/, package.json, no src/): the launcher then imports
 * dist/cli/main.js. dist/ is a link, so modules resolve node_modules from this checkout.
 */
function installedPackage(dir: string): string {
  const main = join(REPO, 'dist', 'cli', 'main.js');
  if (!existsSync(main)) throw new Error(`--entry dist: ${main} is missing: run npm run build:lib first`);
  if (newestSource(join(REPO, 'src')) > statSync(main).mtimeMs)
    throw new Error('--entry dist: dist/ is older than src/: run npm run build:lib first');
  const pkg = join(dir, 'package');
  mkdirSync(join(pkg, 'bin'), { recursive: true });
  copyFileSync(join(REPO, 'bin', 'edgefed.mjs'), join(pkg, 'bin', 'edgefed.mjs'));
  copyFileSync(join(REPO, 'package.json'), join(pkg, 'package.json'));
  symlinkSync(join(REPO, 'dist'), join(pkg, 'dist'));
  return join(pkg, 'bin', 'edgefed.mjs');
}

/** A node process; the installed entry runs the bin file itself (its `#!/usr/bin/env node` line). */
function startNodeProcess(entry: string, bin: string, args: string[]): Proc {
  const [command, argv] = entry === 'dist' ? [bin, args] : [process.execPath, [bin, ...args]];
  const child = spawn(command, argv, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, EDGEFED_LOG: 'warn' },
  });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  return { child, output: () => err };
}

async function finalModelSha256(url: string): Promise<string> {
  const r = await fetch(`${url}/v1/runs/1/models/latest/weights.bin`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  if (r.status !== 200) throw new Error(`final model: HTTP ${r.status}`);
  return createHash('sha256')
    .update(new Uint8Array(await r.arrayBuffer()))
    .digest('hex');
}

/** One deployment: a fresh coordinator and the two nodes, to the end of the run. */
async function runOnce(dir: string, run: number, o: { entry: string; bin: string; rounds: number; model: string }) {
  const sites = readdirSync(join(dir, 'sites')).sort().slice(0, 2);
  const config = join(dir, `run${run}.json`);
  writeFileSync(
    config,
    JSON.stringify({
      name: 'traffic-memory',
      model: o.model,
      rounds: o.rounds,
      minNodes: 2,
      seed: 1,
      evalDataset: `csv:${join(dir, 'all.csv')}?${WINDOW}`,
    }),
  );
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const started = performance.now();
  const procs: Proc[] = [startCoordinator(port, join(dir, `state${run}.db`), config)];
  try {
    await waitHealthy(url);
    for (const [i, site] of sites.entries()) {
      const name = `loop${i}`;
      const args = ['node', '--coordinator', url, '--data', `csv:${join(dir, 'sites', site)}?${WINDOW}`];
      args.push('--name', name, '--key', join(dir, `${name}-${run}.key`), '--state-dir', join(dir, `${name}-${run}`));
      procs.push(startNodeProcess(o.entry, o.bin, [...args, '--join-token', await joinToken(url)]));
      await waitOnline(url, name);
    }
    await waitFor(
      `${o.rounds} rounds`,
      async () => {
        for (const p of procs.slice(1))
          if (p.child.exitCode !== null) throw new Error(`a node exited (${p.child.exitCode}): ${p.output()}`);
        return (await runView(url, 1)).status === 'completed' ? true : undefined;
      },
      600_000,
    );
    const nodes = procs.slice(1).map((p) => p.child.pid!);
    const result: RunResult = {
      peakMb: nodes.map((pid) => statusMb(pid, 'VmHWM')),
      nowMb: nodes.map((pid) => statusMb(pid, 'VmRSS')),
      modelSha256: await finalModelSha256(url),
      seconds: Math.round(performance.now() - started) / 1000,
    };
    process.stderr.write(
      `${BENCH}: run ${run + 1}: node peak RSS (VmHWM) ${result.peakMb.join(' / ')} MB, ` +
        `now ${result.nowMb.join(' / ')} MB (bound ${BOUND_MB} MB: ` +
        `${Math.max(...result.peakMb) <= BOUND_MB ? 'held' : 'EXCEEDED'}); model sha256 ${result.modelSha256}\n`,
    );
    return result;
  } finally {
    killAll(procs);
  }
}

const spread = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return `${s[0]}-${s[s.length - 1]} (median ${s[Math.floor((s.length - 1) / 2)]})`;
};

function markdown(rows: Row[]): string {
  const lines = [
    '# bench:node-memory: peak RSS of an `edgefed node` training the traffic GRU',
    '',
    '`npm run bench:node-memory -- --entry dist --runs N --label TEXT` (after `npm run build:lib`)',
    '',
    'A coordinator (run config: model `gru`, 3 rounds, 2 nodes, seed 1) and two real `edgefed node` processes',
    "on loopback, each with two SYNTHETIC loop detectors' CSV (`generate-loops.ts OUT.csv --per-site DIR`,",
    `\`--data 'csv:DIR/dK.csv?${WINDOW}'\`). Peak RSS is the`,
    "kernel's VmHWM of each node process, read when the run has finished. `dist`: the `edgefed` command of an",
    'installed package (bin/edgefed.mjs through its shebang, dist/ built by `npm run build:lib`, no src/);',
    '`source`: bin/edgefed.mjs in the checkout (tsx compiles src/ at startup). The bound is 150 MB per node.',
    '',
    '| change | entry | runs | node peak RSS, MB (every node of every run) | min-max (median) | bound held | ' +
      'final model sha256 | load avg at the end | commit |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const peaks = r.runs.flatMap((x) => x.peakMb);
    const shas = [...new Set(r.runs.map((x) => x.modelSha256.slice(0, 12)))];
    const held = peaks.filter((p) => p <= BOUND_MB).length;
    lines.push(
      `| ${r.label} | ${r.entry} | ${r.runs.length} | ${peaks.join(', ')} | ${spread(peaks)} | ` +
        `${held}/${peaks.length} | ${shas.join(', ')} | ${r.provenance.machine.load_average.join(' ')} | ` +
        `${r.provenance.git_commit?.slice(0, 7) ?? '?'} |`,
    );
  }
  const shas = new Set(rows.flatMap((r) => r.runs.map((x) => x.modelSha256)));
  lines.push(
    '',
    shas.size === 1
      ? `Every run of every row ended with the same global model (sha256 ${[...shas][0]}).`
      : `The final models differ between runs or rows (${shas.size} distinct sha256).`,
  );
  const last = rows[rows.length - 1];
  if (last) lines.push('', `Environment of the last row (${last.label}):`, '', ...environmentFooter(last.provenance));
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      rounds: { type: 'string', default: '3' },
      model: { type: 'string', default: 'gru' },
      entry: { type: 'string', default: 'dist' },
      label: { type: 'string' },
      ...RESULT_FLAGS,
    },
  });
  const files = resultFiles<Row[]>(values['results-dir']!, BENCH, values['report-only']!, markdown);
  if (!files) return;
  const whole = (name: string, text: string) =>
    numberFlag(name, text, (v) => Number.isInteger(v) && v >= 1, 'a whole number >= 1');
  const runs = whole('runs', values.runs!);
  const rounds = whole('rounds', values.rounds!);
  const entry = values.entry!;
  if (entry !== 'dist' && entry !== 'source') throw new Error(`--entry: expected dist or source, got '${entry}'`);
  const label = values.label ?? `${entry} at ${gitCommit()?.slice(0, 7) ?? 'unknown commit'}`;
  printEnvironment(BENCH);
  const started = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-node-memory-'));
  const bin = entry === 'dist' ? installedPackage(dir) : join(REPO, 'bin', 'edgefed.mjs');
  process.stderr.write(`${BENCH}: nodes run ${entry === 'dist' ? bin : `node ${bin}`} node ...\n`);
  execFileSync(
    process.execPath,
    [
      '--import',
      'tsx',
      'examples/traffic-flow/generate-loops.ts',
      join(dir, 'all.csv'),
      '--per-site',
      join(dir, 'sites'),
    ],
    { cwd: REPO, stdio: 'ignore' },
  );
  const results: RunResult[] = [];
  for (let run = 0; run < runs; run++)
    results.push(await runOnce(dir, run, { entry, bin, rounds, model: values.model! }));
  const row: Row = { label, entry, model: values.model!, rounds, runs: results, provenance: provenance(1, started) };
  const rows = existsSync(files.json) ? (JSON.parse(readFileSync(files.json, 'utf8')) as Row[]) : [];
  const at = rows.findIndex((r) => r.label === label);
  if (at >= 0) rows[at] = row;
  else rows.push(row);
  writeAtomic(files.json, `${JSON.stringify(rows, null, 2)}\n`);
  writeAtomic(files.md, markdown(rows));
  const peaks = results.flatMap((r) => r.peakMb);
  process.stderr.write(
    `${BENCH}: ${label}: node peak RSS ${spread(peaks)} MB over ${runs} run(s); wrote ${files.md}\n`,
  );
  process.stdout.write(`${JSON.stringify({ bench: BENCH, label, entry, rounds, peaks })}\n`);
}

await main();
