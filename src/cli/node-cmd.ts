/**
 * `edgefed node`: an edge-node agent. Its own entry (node-main.ts) loads only this command's modules, so a
 * device does not pay for the coordinator, the simulator or the other commands it never runs.
 */
import type { Command } from 'commander';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { blasThreadsArg, useTrainingThreads } from './threads-flag.js';
import { newIdentity, toHex, fromHex } from '../core/identity.js';
import { addLogFormatOption, makeLogger } from './logger.js';
import { floatArg, intArg, UsageError } from './args.js';
import { startServingFromFlags, type ServeFlags } from './serve-flags.js';
import { readPeerKeys } from './peer-keys.js';
import { Agent } from '../node/agent.js';
import { NodeStateDir } from '../node/state-file.js';
import { loadNodeData } from '../node/data.js';
import { parseLocalDp } from '../core/local-dp.js';
import { JOIN_TOKEN_ENV, secretFrom } from './secret-flags.js';
import { addNodeMqttOptions, nodeMqttFromFlags } from './mqtt-flags.js';

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

export function addNodeCommand(program: Command): void {
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
      'threads for local training: a number, or all (every core); each batch is split over them ' +
        '(models with dropout or BatchNormalization: each gemm, by OpenBLAS)',
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
        useTrainingThreads(f.threads);
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
