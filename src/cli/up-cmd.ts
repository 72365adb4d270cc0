/**
 * `edgefed up` (`npm start`): a coordinator and local node processes on loopback train the reference MNIST model,
 * with the dashboard URL (and a read token in its fragment) printed first. After the run the dashboard keeps
 * serving until Ctrl-C (`--exit-on-finish`, or CI=true, exits instead) and the command says how to reopen the run.
 * Ctrl-C during the run stops within about 2 s without committing a partial round; a second Ctrl-C exits at once.
 */
import type { Command } from 'commander';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { intArg, UsageError } from './args.js';
import { progressReporter } from './progress.js';
import { childLog, childName, lastLogLine, spawnGatewayTree, spawnNode, type UpDirs } from './up-gateways.js';
import { startCoordinator } from '../coordinator/server.js';
import { parseRunConfig } from '../coordinator/config.js';
import { addLogFormatOption, makeLogger } from './logger.js';
import { READ_SCOPES } from '../coordinator/api-tokens.js';

/** How long the round in progress may take to finish after Ctrl-C before it is abandoned uncommitted. */
export const UP_STOP_GRACE_MS = 1000;

interface UpFlags {
  nodes: number;
  rounds: number;
  port: number;
  db: string;
  targetAccuracy: number;
  gateways: number;
  exitOnFinish?: boolean;
  logFormat?: string;
}

export function addUpCommand(program: Command): void {
  const command = program
    .command('up')
    .description('a coordinator plus local edge-node processes on loopback training the reference MNIST model')
    .option('--nodes <n>', 'node processes to start', intArg(1, 64), 4)
    .option('--rounds <n>', 'rounds', intArg(1, 10000), 10)
    .option('--port <n>', 'coordinator port (0 = any free port)', intArg(0, 65535), 0)
    .option('--db <file>', 'SQLite file', '')
    .option('--target-accuracy <a>', 'stop at this test accuracy', Number, 0.97)
    .option(
      '--gateways <g>',
      'hierarchical fusion: G gateway processes between the coordinator and the nodes (node i joins gateway i mod G)',
      intArg(0, 64),
      0,
    )
    .option(
      '--exit-on-finish',
      'exit when the run ends (default: keep serving the dashboard until Ctrl-C; CI=true implies this)',
    );
  addLogFormatOption(command);
  command
    .addHelpText(
      'after',
      `
Ctrl-C stops within about 2 s (a round in progress is abandoned, never committed half-fused); a second Ctrl-C
exits at once. The state stays in runs/up-<time>/: reopen it for viewing with \`edgefed open runs/up-<time>\`.`,
    )
    .action(async (f: UpFlags) => up(f));
}

async function up(flags: UpFlags): Promise<void> {
  if (flags.gateways > flags.nodes)
    throw new UsageError(
      `--gateways ${flags.gateways}: each gateway needs a node, and there are --nodes ${flags.nodes}`,
    );
  const exitOnFinish = flags.exitOnFinish || process.env.CI === 'true';
  const dir = join('runs', `up-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  mkdirSync(dir, { recursive: true });
  const db = flags.db || join(dir, 'edgefed.db');
  // Identities live beside the database: a second `up --db same.db` reuses the names it enrolled.
  const dirs: UpDirs = { keys: join(dirname(db), 'keys'), logs: join(dir, 'logs') };
  mkdirSync(dirname(db), { recursive: true });
  // What `edgefed open` takes to show this run again: the run folder, or the database given with --db.
  const reopen = flags.db ? flags.db : dir;
  const progress = progressReporter(flags.rounds, false);
  const coordinator = await startCoordinator({
    port: flags.port,
    db,
    logger: makeLogger({ level: 'warn', format: flags.logFormat, base: { service: 'coordinator', pid: process.pid } }),
    shutdownGraceMs: UP_STOP_GRACE_MS,
    onRound: (_runId, r) => progress.onRound(r),
  });
  // The evaluation set loads synchronously, when no signal handler could run: it loads before Ctrl-C is taken
  // over (until then Ctrl-C ends the process at once, with no run started), so a later Ctrl-C is served in time.
  progress.phase('loading the MNIST test set');
  coordinator.runs.datasets.testSet('mnist');
  let children: ChildProcess[] = [];
  let stopping = false;
  const stopAll = async (code: number) => {
    progress.stop();
    for (const ch of children) ch.kill('SIGTERM');
    await coordinator.close();
    process.exit(code);
  };
  // Installed before anything is printed: a Ctrl-C as soon as the URL shows is a clean stop too.
  const onInterrupt = () => {
    if (stopping) {
      process.stderr.write('\nexiting at once\n');
      for (const ch of children) ch.kill('SIGKILL');
      process.exit(130);
    }
    stopping = true;
    process.stderr.write(
      `\nstopping: a round in progress has ${UP_STOP_GRACE_MS / 1000} s to finish, else it is abandoned uncommitted ` +
        `(Ctrl-C again to exit at once). Reopen later: edgefed open ${reopen}\n`,
    );
    void stopAll(0);
  };
  process.on('SIGINT', onInterrupt);
  process.on('SIGTERM', onInterrupt);
  // A read token for this session's dashboard, in the URL fragment (never sent to a server or logged).
  const { token: readToken } = coordinator.tokens.create({
    name: 'edgefed up dashboard',
    scopes: READ_SCOPES,
    expiresInSeconds: 7 * 24 * 3600,
  });
  const dashboard = `${coordinator.dashboardUrl}#token=${readToken}`;
  // One browser tab can join with this link (a join token is single-use; it enrols the tab's own key).
  const browserNode = `${coordinator.url}/node/?token=${coordinator.createJoinToken(3600)}&shard=0/10#token=${readToken}`;
  process.stderr.write(
    `dashboard ${dashboard}\ncoordinator API ${coordinator.url} (reads need \`Authorization: Bearer <the dashboard token>\`: ` +
      `${coordinator.url}/v1/runs, ${coordinator.url}/v1/nodes, ${coordinator.url}/metrics)\nbrowser node (one tab joins this federation; ` +
      `valid 1 h) ${browserNode}\n`,
  );
  const cli = fileURLToPath(new URL('../../bin/edgefed.mjs', import.meta.url));
  progress.phase(
    `starting ${flags.nodes} node processes${flags.gateways ? ` behind ${flags.gateways} gateways` : ''} and waiting for them to join`,
  );
  children =
    flags.gateways > 0
      ? await spawnGatewayTree(
          cli,
          dirs,
          coordinator.url,
          () => coordinator.createJoinToken(3600),
          flags.gateways,
          flags.nodes,
        )
      : Array.from({ length: flags.nodes }, (_, i) =>
          spawnNode(cli, dirs, coordinator.url, i, flags.nodes, coordinator.createJoinToken(3600)),
        );
  // A child refused for good (exit 2: not enrolled, wrong key...) cannot come back: say why and stop.
  for (const child of children) {
    child.once('exit', (code) => {
      if (code !== 2 || stopping) return;
      stopping = true;
      const name = childName(child);
      process.stderr.write(
        `\n${name} stopped for good: ${lastLogLine(dirs, name) || 'no message'} (log: ${childLog(dirs, name)})\n`,
      );
      void stopAll(1);
    });
  }
  if (stopping) return;
  const config = parseRunConfig({
    name: 'demo',
    model: 'mlp',
    rounds: flags.rounds,
    minNodes: flags.gateways || flags.nodes,
    targetAccuracy: flags.targetAccuracy,
    seed: 1,
  });
  const id = coordinator.store.createRun(config, config.seed);
  const run = coordinator.runs.start(id);
  await run.done;
  if (stopping) return;
  progress.stop();
  const ckpt = coordinator.store.lastCheckpoint(id);
  const status = coordinator.store.getRun(id);
  if (ckpt) await (await import('../model/tfjs.js')).saveTfjsModel(run.spec, ckpt.weights, join(dir, 'model'));
  const last = coordinator.store.roundRecords(id).at(-1) as { testAccuracy?: number } | undefined;
  process.stderr.write(
    `run ${id} ${status?.status} after ${ckpt?.round ?? 0} rounds: test accuracy ${last?.testAccuracy?.toFixed(4)}; ` +
      `model saved to ${join(dir, 'model')}, state in ${db}\n`,
  );
  for (const ch of children) ch.kill('SIGTERM');
  children = [];
  if (exitOnFinish) {
    await coordinator.close();
    return;
  }
  process.stderr.write(
    `the dashboard stays at ${dashboard} until Ctrl-C; reopen this run later with: edgefed open ${reopen}\n`,
  );
}
