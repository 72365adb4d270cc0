/** `edgefed gateway`: a node of the coordinator upward, a coordinator for its local nodes downward (HierFAVG). */
import type { Command } from 'commander';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { addLogFormatOption, makeLogger } from './logger.js';
import { floatArg, intArg, UsageError } from './args.js';
import { loadOrCreateKey, parseTags } from './deploy-cmds.js';
import { startGateway } from '../gateway/gateway.js';
import { ADMIN_TOKEN_ENV, JOIN_TOKEN_ENV, secretFrom } from './secret-flags.js';

interface GatewayFlags {
  logFormat?: string;
  coordinator: string;
  name?: string;
  tags?: string;
  key?: string;
  joinToken?: string;
  joinTokenFile?: string;
  port: number;
  host: string;
  db: string;
  auth: string;
  adminToken?: string;
  edgeRounds: number;
  minNodes: number;
  fraction: number;
  roundTimeoutMs: number;
  waitForNodesMs: number;
}

export function addGatewayCommand(program: Command): void {
  addLogFormatOption(program.command('gateway'))
    .description(
      'hierarchical fusion: a node of the coordinator that runs --edge-rounds of FedAvg among its own local nodes per cloud round',
    )
    .requiredOption('--coordinator <url>', 'the coordinator this gateway reports to, e.g. http://10.0.0.1:8080')
    .option('--name <name>', 'stable gateway name (its identity at the coordinator)')
    .option('--tags <k=v,...>', 'tags the coordinator schedules by, e.g. site=plant1')
    .option('--key <file>', 'Ed25519 identity key (created on first use; default ~/.edgefed/<name>.key)')
    .option(
      '--join-token <token>',
      "one-time token from the coordinator admin: enrols this gateway's key (visible in ps: prefer --join-token-file or $EDGEFED_JOIN_TOKEN)",
    )
    .option('--join-token-file <file>', 'read the join token from this file')
    .option('--port <n>', 'port local nodes connect to', intArg(0, 65535), 8090)
    .option('--host <addr>', 'address to bind', '127.0.0.1')
    .option('--db <file>', 'SQLite file for the local node registry and join tokens (default: in memory)', ':memory:')
    .option(
      '--auth <mode>',
      'on: local nodes enrol with a join token and sign every frame; off: development only',
      'on',
    )
    .option(
      '--admin-token <token>',
      "bearer token for this gateway's /v1/admin/* (default: $EDGEFED_ADMIN_TOKEN, else generated and printed)",
    )
    .option('--edge-rounds <k>', 'edge rounds of FedAvg among the local nodes per cloud round', intArg(1, 1000), 2)
    .option('--min-nodes <n>', 'fewest local nodes an edge round needs', intArg(1, 1_000_000), 1)
    .option('--fraction <f>', 'fraction of the local nodes asked in each edge round', floatArg(0, 1, true), 1)
    .option(
      '--round-timeout-ms <n>',
      "an edge round's deadline for a local node's answer",
      intArg(100, 24 * 3600 * 1000),
      10 * 60 * 1000,
    )
    .option(
      '--wait-for-nodes-ms <n>',
      'how long a cloud round waits for --min-nodes local nodes',
      intArg(0, 24 * 3600 * 1000),
      60_000,
    )
    .addHelpText(
      'after',
      `
Examples:
  edgefed gateway --coordinator http://10.0.0.1:8080 --name site-a --join-token <from the coordinator> --port 8090 --edge-rounds 2
  curl -X POST localhost:8090/v1/admin/join-tokens -H 'authorization: Bearer <admin token>'
  edgefed node --coordinator http://127.0.0.1:8090 --data mnist-partition:0/6 --name a0 --join-token <from the gateway>`,
    )
    .action(async (flags: GatewayFlags) => {
      if (flags.auth !== 'on' && flags.auth !== 'off')
        throw new UsageError(`--auth: expected on or off, got '${flags.auth}'`);
      let upstream: URL;
      try {
        upstream = new URL(flags.coordinator);
      } catch {
        throw new UsageError(`--coordinator: not a URL: '${flags.coordinator}'`);
      }
      if (!['http:', 'https:', 'ws:', 'wss:'].includes(upstream.protocol))
        throw new UsageError(`--coordinator: expected an http(s) or ws(s) URL, got '${flags.coordinator}'`);
      const name = flags.name ?? `gateway-${process.pid}`;
      const tags = parseTags(flags.tags);
      const secretKey = loadOrCreateKey(flags.key ?? join(homedir(), '.edgefed', `${name}.key`));
      const log = makeLogger({ format: flags.logFormat, base: { gateway: name } });
      const joinToken = secretFrom(flags.joinToken, flags.joinTokenFile, JOIN_TOKEN_ENV, 'join-token');
      const adminToken = flags.adminToken ?? secretFrom(undefined, undefined, ADMIN_TOKEN_ENV, 'admin-token');
      const gateway = await startGateway({
        coordinator: flags.coordinator,
        name,
        tags,
        secretKey,
        joinToken,
        port: flags.port,
        host: flags.host,
        db: flags.db,
        auth: flags.auth === 'on',
        adminToken,
        log,
        edge: {
          edgeRounds: flags.edgeRounds,
          minNodes: flags.minNodes,
          fraction: flags.fraction,
          roundTimeoutMs: flags.roundTimeoutMs,
          waitForNodesMs: flags.waitForNodesMs,
        },
      });
      const { url } = gateway.local;
      process.stdout.write(
        `${JSON.stringify({ api: url, ws: url.replace('http', 'ws') + '/v1/ws', upstream: flags.coordinator, auth: gateway.local.auth, ...(adminToken ? {} : { adminToken: gateway.local.adminToken }) })}\n`,
      );
      const shutdown = () => void gateway.close().then(() => process.exit(0));
      process.on('SIGTERM', shutdown);
      process.on('SIGINT', shutdown);
    });
}
