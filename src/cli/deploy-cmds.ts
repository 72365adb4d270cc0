/** `edgefed coordinator`, `edgefed node` and `edgefed up` (a coordinator and local node processes). */
import { blasThreadsArg, useBlasThreads } from './threads-flag.js';
import type { Command } from 'commander';
import { readFileSync, writeFileSync, existsSync, chmodSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname } from 'node:path';
import { newIdentity, toHex, fromHex } from '../core/identity.js';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { addLogFormatOption, LOG_LEVELS, makeLogger } from './logger.js';
import { choiceArg, floatArg, intArg } from './args.js';
import { startServingFromFlags, type ServeFlags } from './serve-flags.js';
import { UsageError } from './args.js';
import { readPeerKeys } from './peer-keys.js';
import { startCoordinator } from '../coordinator/server.js';
import { parseRunConfig } from '../coordinator/config.js';
import { DatasetError, parseDatasetFlag } from '../coordinator/datasets.js';
import { Agent } from '../node/agent.js';
import { NodeStateDir } from '../node/state-file.js';
import { loadNodeData } from '../node/data.js';
import { parseLocalDp } from '../core/local-dp.js';
import { ADMIN_TOKEN_ENV, JOIN_TOKEN_ENV, secretFrom } from './secret-flags.js';
import {
  addCoordinatorMqttOptions,
  addNodeMqttOptions,
  coordinatorMqttFromFlags,
  nodeMqttFromFlags,
  type CoordinatorMqttFlags,
} from './mqtt-flags.js';
import { DatabaseLockedError } from '../coordinator/db-lock.js';
import { StoreError } from '../coordinator/store.js';
import { DEFAULT_SHUTDOWN_GRACE_MS, MAX_SHUTDOWN_GRACE_MS } from '../coordinator/server.js';

export function parseTags(s: string | undefined): Record<string, string> {
  if (!s) return {};
  const out: Record<string, string> = {};
  for (const kv of s.split(',')) {
    const [k, v] = kv.split('=');
    if (!k || v === undefined || !/^[A-Za-z0-9_.-]+$/.test(k))
      throw new UsageError(`--tags: expected k=v,k=v, got '${s}'`);
    out[k] = v;
  }
  return out;
}

/** The node's identity key: read from the file, or created there (owner-only permissions). */
export function loadOrCreateKey(file: string): Uint8Array {
  if (existsSync(file)) {
    try {
      return fromHex(readFileSync(file, 'utf8').trim(), 32, 'key');
    } catch {
      throw new UsageError(`--key ${file}: not an EdgeFed key (64 hex digits)`);
    }
  }
  mkdirSync(dirname(file), { recursive: true });
  const { secretKey } = newIdentity();
  writeFileSync(file, toHex(secretKey) + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  return secretKey;
}

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

  addNodeMqttOptions(addLogFormatOption(program.command('node')))
    .description('an edge-node agent: enrols, trains on its local data, returns updates, reconnects')
    .requiredOption('--coordinator <url>', 'coordinator address, e.g. http://127.0.0.1:8080')
    .requiredOption('--data <spec>', 'mnist-partition:I/N[:PARTITION] | idx:DIR | csv:FILE')
    .option('--name <name>', 'stable node name (its identity across restarts)')
    .option('--tags <k=v,...>', 'tags for scheduling, e.g. site=plant1,class=gateway')
    .option('--power <class>', 'power class: mains | battery', 'mains')
    .option('--delay-ms <n>', 'extra delay before each answer (emulates a slow device)', intArg(0, 3_600_000))
    .option('--key <file>', 'Ed25519 identity key (created on first use; default ~/.edgefed/<name>.key)')
    .option(
      '--join-token <token>',
      "one-time token from the coordinator admin: enrols this node's key (visible in ps: prefer --join-token-file or $EDGEFED_JOIN_TOKEN)",
    )
    .option('--join-token-file <file>', 'read the join token from this file')
    .option(
      '--secagg-peers <file>',
      "secure aggregation: the peers' identity public keys, one hex key per line (default: trust on first use)",
    )
    .option(
      '--secagg-drop-after-share',
      'fault injection for tests: in secure-aggregation rounds, disconnect right after sharing keys',
    )
    .option(
      '--local-dp <spec>',
      'local DP: clip each update to C and add noise z C (CSPRNG) before sending, clip=C,noise=Z[,delta=D]',
    )
    .option('--share-labels', 'report how many examples of each class this node holds (shown on the dashboard)')
    .option(
      '--state-dir <dir>',
      "where the node keeps each run's SCAFFOLD / FedDyn / personal-model state across restarts " +
        '(default ~/.edgefed/<name>-state)',
    )
    .option(
      '--threads <n>',
      'OpenBLAS threads for local training (native kernels): a number, or all (every core)',
      blasThreadsArg,
      1,
    )
    .option(
      '--serve-port <n>',
      'serve predictions on this port (POST /v1/predict, GET /v1/model, GET /metrics)',
      intArg(0, 65535),
    )
    .option(
      '--serve-host <addr>',
      'address the serving port binds (its API has no auth: keep it on loopback or a trusted LAN)',
      '127.0.0.1',
    )
    .option('--serve-run <id>', "serve this run's models (default: the newest run with a model)", intArg(1))
    .option('--model-poll-ms <n>', 'how often to check for a newer global model version', intArg(50, 3_600_000), 5000)
    .option('--threshold <p>', 'abstain (or escalate) when the top class probability is below this', floatArg(0, 1), 0)
    .option('--escalate', "send below-threshold samples to the coordinator's escalation model")
    .option('--serve-quantized', "serve int8: quantise each version, calibrated on this node's data (edgefed quantize)")
    .addHelpText(
      'after',
      `
Examples:
  edgefed node --coordinator http://127.0.0.1:8080 --data mnist-partition:0/5 --name n0 --tags site=a`,
    )
    .action(
      async (
        f: {
          coordinator: string;
          data: string;
          name?: string;
          tags?: string;
          power: string;
          delayMs?: number;
          key?: string;
          joinToken?: string;
          joinTokenFile?: string;
          shareLabels?: boolean;
          secaggDropAfterShare?: boolean;
          secaggPeers?: string;
          localDp?: string;
          stateDir?: string;
          logFormat?: string;
          threads: number;
          fleet?: string;
          api?: string;
        } & ServeFlags,
      ) => {
        const joinToken = secretFrom(f.joinToken, f.joinTokenFile, JOIN_TOKEN_ENV, 'join-token');
        const name = f.name ?? `node-${process.pid}`;
        useBlasThreads(f.threads);
        const secretKey = loadOrCreateKey(f.key ?? join(homedir(), '.edgefed', `${name}.key`));
        const tags = parseTags(f.tags);
        const secaggPeerKeys = f.secaggPeers !== undefined ? readPeerKeys(f.secaggPeers) : undefined;
        try {
          new URL(f.coordinator);
        } catch {
          throw new UsageError(`--coordinator: not a URL: '${f.coordinator}'`);
        }
        const link = nodeMqttFromFlags(f);
        if (joinToken && link.fleet && !link.api)
          throw new UsageError('--join-token with an MQTT coordinator: give --api URL (enrolment is one HTTP call)');
        const api = link.api ?? link.coordinator;
        let data;
        let localDp;
        try {
          localDp = f.localDp === undefined ? undefined : parseLocalDp(f.localDp);
          data = loadNodeData(f.data, name);
        } catch (e) {
          throw new UsageError((e as Error).message);
        }
        const log = makeLogger({ format: f.logFormat, base: { node: name } });
        const nodeState = new NodeStateDir(f.stateDir ?? join(homedir(), '.edgefed', `${name}-state`), log);
        const serving = await startServingFromFlags(f, {
          coordinator: api,
          data: f.data,
          creds: { name, secretKey },
          log,
          personal: nodeState,
          train: data.train,
        });
        const agent = new Agent({
          ...link,
          name,
          data,
          tags,
          powerClass: f.power,
          log,
          delayMs: f.delayMs,
          secretKey,
          joinToken,
          shareLabels: f.shareLabels,
          onFrame: serving?.metrics.onFrame,
          secaggDropAfterShare: !!f.secaggDropAfterShare,
          ...(secaggPeerKeys ? { secaggPeerKeys } : {}),
          localDp,
          nodeState,
          onLocalEpsilon: serving ? (e) => serving.metrics.localEpsilon.set(e) : undefined,
          onEvent: (e) => {
            if (e.type !== 'fatal') return;
            process.stderr.write(`edgefed: ${e.message}\n`);
            void serving?.close();
            process.exit(2);
          },
        });
        try {
          await agent.start();
        } catch (e) {
          // A refused join token is permanent too: one line, exit 2.
          throw /enrolment refused/.test((e as Error).message)
            ? new UsageError(`${(e as Error).message}: ask the coordinator's admin for a fresh join token`)
            : e;
        }
        const stop = () => {
          void serving?.close();
          agent.stop();
          process.exit(0);
        };
        process.on('SIGTERM', stop);
        process.on('SIGINT', stop);
      },
    );
}
