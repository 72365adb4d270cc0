/**
 * bench:node-memory: peak resident memory of real `edgefed node` processes training the GRU traffic
 * forecaster (examples/traffic-flow, SYNTHETIC loop detectors) in a deployment on loopback: a coordinator with
 * a run config of model gru and two nodes, each holding two detectors' CSV (the example's --per-site files).
 * Each node's VmHWM (/proc/PID/status: the kernel's own peak RSS, so no sample is missed) is read when the run
 * has finished, with the node still up. The bound to hold: 150 MB per node.
 *
 * `--entry dist` runs the nodes from the built library (`npm run build:lib` first), as an installed package
 * runs; `--entry source` (default) through bin/edgefed.mjs, which in a checkout compiles src/ with tsx at startup.
 *
 *   npm run bench:node-memory -- [--rounds 3] [--model gru] [--entry source|dist]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import {
  freePort,
  joinToken,
  killAll,
  runView,
  startCoordinator,
  startNodesInOrder,
  waitFor,
  waitHealthy,
  waitOnline,
  type Proc,
} from '../test/deploy-harness.js';
import { numberFlag, printEnvironment, REPO } from './support/results-io.js';

const BENCH = 'node-memory';
const BOUND_MB = 150;
const WINDOW = 'window=24&horizon=1&target=flow&key=sensor&keep=slot&test=0.25';

const statusMb = (pid: number, field: string): number => {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 102.4) / 10 : NaN;
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      model: { type: 'string', default: 'gru' },
      entry: { type: 'string', default: 'source' },
    },
  });
  const rounds = numberFlag('rounds', values.rounds!, (v) => Number.isInteger(v) && v >= 1, 'a whole number >= 1');
  printEnvironment(BENCH);
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-node-memory-'));
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
  const sites = readdirSync(join(dir, 'sites')).sort().slice(0, 2);
  const config = join(dir, 'run.json');
  writeFileSync(
    config,
    JSON.stringify({
      name: 'traffic-memory',
      model: values.model,
      rounds,
      minNodes: 2,
      seed: 1,
      evalDataset: `csv:${join(dir, 'all.csv')}?${WINDOW}`,
    }),
  );
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const procs: Proc[] = [startCoordinator(port, join(dir, 'state.db'), config)];
  try {
    await waitHealthy(url);
    const specs = sites.map((f, i) => ({ data: `csv:${join(dir, 'sites', f)}?${WINDOW}`, name: `loop${i}` }));
    if (values.entry === 'dist') {
      for (const s of specs) {
        const args = ['--coordinator', url, '--data', s.data, '--name', s.name, '--key', join(dir, `${s.name}.key`)];
        const child = spawn(
          process.execPath,
          [join(REPO, 'dist', 'cli', 'main.js'), 'node', ...args, '--join-token', await joinToken(url)],
          { stdio: 'ignore', env: { ...process.env, EDGEFED_LOG: 'warn' } },
        );
        procs.push({ child, output: () => '' });
        await waitOnline(url, s.name);
      }
    } else procs.push(...(await startNodesInOrder(url, specs)));
    await waitFor(
      `${rounds} rounds`,
      async () => ((await runView(url, 1)).status === 'completed' ? true : undefined),
      600_000,
    );
    const nodes = procs.slice(1).map((p, i) => ({
      node: `loop${i} (${sites[i]})`,
      peakMb: statusMb(p.child.pid!, 'VmHWM'),
      nowMb: statusMb(p.child.pid!, 'VmRSS'),
    }));
    for (const n of nodes)
      process.stderr.write(
        `${BENCH}: ${values.model} node ${n.node}: peak RSS (VmHWM) ${n.peakMb} MB, now ${n.nowMb} MB ` +
          `(bound ${BOUND_MB} MB: ${n.peakMb <= BOUND_MB ? 'held' : 'EXCEEDED'})\n`,
      );
    process.stdout.write(
      `${JSON.stringify({ bench: BENCH, model: values.model, entry: values.entry, rounds, nodes })}\n`,
    );
  } finally {
    killAll(procs);
  }
}

await main();
