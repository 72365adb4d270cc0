/** `edgefed coordinator`, and `edgefed node` registered beside it (node-cmd.ts). */
import type { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { addLogFormatOption, LOG_LEVELS, makeLogger } from './logger.js';
import { choiceArg, intArg } from './args.js';
import { UsageError } from './args.js';
import { startCoordinator } from '../coordinator/server.js';
import { parseRunConfig } from '../coordinator/config.js';
import { DatasetError, parseDatasetFlag } from '../coordinator/datasets.js';
import { ADMIN_TOKEN_ENV, secretFrom } from './secret-flags.js';
import { addCoordinatorMqttOptions, coordinatorMqttFromFlags, type CoordinatorMqttFlags } from './mqtt-flags.js';
import { DatabaseLockedError } from '../coordinator/db-lock.js';
import { StoreError } from '../coordinator/store.js';
import { DEFAULT_SHUTDOWN_GRACE_MS, MAX_SHUTDOWN_GRACE_MS } from '../coordinator/server.js';
import { DEFAULT_WORKER_NICE, MAX_NICE } from '../coordinator/thread-priority.js';
import { addNodeCommand } from './node-cmd.js';

export { loadOrCreateKey, parseTags } from './node-cmd.js';

/** The coordinator's logger: --log-level, else $EDGEFED_LOG, else info; --log-format (see logger.ts). */
function coordinatorLogger(level?: string, format?: string) {
  return makeLogger({ level, format, base: { service: 'coordinator', pid: process.pid } });
}

export function addDeployCommands(program: Command): void {
  addCoordinatorMqttOptions(addLogFormatOption(program.command('coordinator')))
    .description('the service that runs federations: REST API + WebSocket for nodes, state in SQLite')
    .option('--port <n>', 'port to listen on', intArg(0, 65535), 8080)
    .option('--host <addr>', 'address to bind', '127.0.0.1')
    .option('--db <file>', 'SQLite database file (runs resume from it after a restart)', 'edgefed.db')
    .option('--config <file>', 'a run config (JSON) to create when the database has no runs yet')
    .option('--exit-when-done', 'exit once every run has finished')
    .option(
      '--auth <mode>',
      'on: nodes enrol with a join token and sign every frame; off: trust the network (development only)',
      'on',
    )
    .option(
      '--admin-token <token>',
      'the root credential: admin routes and creating scoped API tokens (default: generated and printed; visible in ps: prefer --admin-token-file or $EDGEFED_ADMIN_TOKEN)',
    )
    .option('--admin-token-file <file>', 'read the admin token from this file')
    .option('--public-read', 'serve reads (runs, nodes, live feed, metrics) without a token; control stays locked')
    .option(
      '--dataset <name=spec>',
      'a dataset run configs may name as evalDataset (repeatable), e.g. pumps=csv:data/pumps.csv?label=fault',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option('--tls-cert <pem>', 'serve https/wss with this certificate (with --tls-key)')
    .option('--tls-key <pem>', 'private key for --tls-cert')
    .option(
      '--log-level <level>',
      'log lines on stderr at this level and above (default: $EDGEFED_LOG or info)',
      choiceArg(LOG_LEVELS),
    )
    .option(
      '--escalation-model <path>',
      'a tfjs model.json (or its folder) served to nodes for escalated low-confidence samples',
    )
    .option(
      '--shutdown-grace-ms <n>',
      `on SIGTERM/SIGINT: how long the round in progress may take to finish before it is abandoned uncommitted (at most ${MAX_SHUTDOWN_GRACE_MS})`,
      intArg(0, MAX_SHUTDOWN_GRACE_MS),
      DEFAULT_SHUTDOWN_GRACE_MS,
    )
    .option(
      '--worker-nice <n>',
      `nice value (0-${MAX_NICE}) of the worker threads that verify node signatures, so the event loop (heartbeats, API) runs first on a busy machine; Linux only, 0: same priority`,
      intArg(0, MAX_NICE),
      DEFAULT_WORKER_NICE,
    )
    .addHelpText(
      'after',
      `
SIGTERM or SIGINT: stop taking work, let the round in progress finish (or abandon it uncommitted after
--shutdown-grace-ms) and exit; runs stay 'running' in the database and resume when a coordinator starts on it
again. Only POST /v1/runs/:id/stop stops a run. One coordinator per database: a second one exits with code 2.

Examples:
  edgefed coordinator --port 8080 --db edgefed.db --config examples/industrial-fault/run.json
  curl -X POST localhost:8080/v1/runs -H 'content-type: application/json' -H "authorization: Bearer $ADMIN" -d '{"model":"mlp","rounds":10}'`,
    )
    .action(
      async (
        f: {
          port: number;
          host: string;
          db: string;
          config?: string;
          exitWhenDone?: boolean;
          auth: string;
          adminToken?: string;
          adminTokenFile?: string;
          tlsCert?: string;
          tlsKey?: string;
          logLevel?: string;
          logFormat?: string;
          escalationModel?: string;
          publicRead?: boolean;
          dataset: string[];
          shutdownGraceMs: number;
          workerNice: number;
        } & CoordinatorMqttFlags,
      ) => {
        if (f.auth !== 'on' && f.auth !== 'off') throw new UsageError(`--auth: expected on or off, got '${f.auth}'`);
        if (!!f.tlsCert !== !!f.tlsKey) throw new UsageError('--tls-cert and --tls-key go together');
        for (const file of [f.tlsCert, f.tlsKey])
          if (file && !existsSync(file)) throw new UsageError(`TLS file ${file} does not exist`);
        if (f.escalationModel && !existsSync(f.escalationModel))
          throw new UsageError(`--escalation-model ${f.escalationModel} does not exist`);
        const mqtt = coordinatorMqttFromFlags(f);
        const adminToken = secretFrom(f.adminToken, f.adminTokenFile, ADMIN_TOKEN_ENV, 'admin-token');
        let config: unknown;
        if (f.config) {
          try {
            config = parseRunConfig(JSON.parse(readFileSync(f.config, 'utf8')), f.config);
          } catch (e) {
            throw new UsageError(`--config ${f.config}: ${(e as Error).message}`);
          }
        }
        const datasets: Record<string, string> = {};
        for (const text of f.dataset) {
          try {
            const { name, spec } = parseDatasetFlag(text);
            datasets[name] = spec;
          } catch (e) {
            throw new UsageError((e as DatasetError).message);
          }
        }
        // The operator's own --config may name a dataset spec directly: it is registered under that spec.
        const configData = (config as { evalDataset?: string } | undefined)?.evalDataset;
        if (configData && !(configData in datasets) && configData !== 'mnist') datasets[configData] = configData;
        const coordinator = await startCoordinator({
          port: f.port,
          host: f.host,
          db: f.db,
          auth: f.auth === 'on',
          adminToken,
          logger: coordinatorLogger(f.logLevel, f.logFormat),
          escalationModel: f.escalationModel,
          publicRead: !!f.publicRead,
          datasets,
          tls: f.tlsCert && f.tlsKey ? { cert: f.tlsCert, key: f.tlsKey } : undefined,
          shutdownGraceMs: f.shutdownGraceMs,
          workerNice: f.workerNice,
          mqtt,
        }).catch((e: Error) => {
          // A database held by another coordinator, or one that is not an EdgeFed store: one line, exit code 2.
          throw e instanceof DatabaseLockedError || e instanceof StoreError ? new UsageError(e.message) : e;
        });
        if (config && coordinator.store.listRuns().length === 0) {
          const id = coordinator.store.createRun(config, (config as { seed: number }).seed);
          try {
            coordinator.runs.start(id);
          } catch {
            // marked failed with its reason; the coordinator serves on
          }
        }
        process.stdout.write(
          `${JSON.stringify({ api: coordinator.url, ws: coordinator.url.replace('http', 'ws') + '/v1/ws', dashboard: coordinator.dashboardUrl, metrics: `${coordinator.url}/metrics`, auth: coordinator.auth, ...(adminToken ? {} : { adminToken: coordinator.adminToken }) })}\n`,
        );
        let closing = false;
        const shutdown = () => {
          if (closing) return; // a second signal does not cut the grace period short of a clean close
          closing = true;
          void coordinator.close().then(
            () => process.exit(0),
            (e: Error) => {
              process.stderr.write(`edgefed: shutdown: ${e.message}\n`);
              process.exit(1);
            },
          );
        };
        process.on('SIGTERM', shutdown);
        process.on('SIGINT', shutdown);
        if (f.exitWhenDone) {
          const timer = setInterval(() => {
            if (coordinator.runs.activeRuns().length === 0 && coordinator.store.listRuns().length > 0) {
              clearInterval(timer);
              shutdown();
            }
          }, 500);
        }
      },
    );
  addNodeCommand(program);
}
