/** `edgefed node --serve-port N ...`: starts the node's serving beside its agent (src/node/serve.ts). */
import type { Logger } from 'pino';
import type { InputScaling, NodeServer } from '../node/serve.js';
import { loadDatasetSpec } from '../data/load.js';
import type { NodeCredentials } from '../node/signed-fetch.js';
import type { PersonalModelSource } from '../node/personal-serving.js';
import { UsageError } from './args.js';
import type { Dataset } from '../data/types.js';

export interface ServeFlags {
  servePort?: number;
  serveHost: string;
  serveRun?: number;
  modelPollMs: number;
  threshold: number;
  escalate?: boolean;
  /** Serve int8: each version quantised on arrival, calibrated on the node's own training data. */
  serveQuantized?: boolean;
}

/** A CSV node takes raw column values and scales them as its trainer's data was (same file, same split, same statistics). */
function csvScaling(data: string): InputScaling | undefined {
  if (!data.startsWith('csv:')) return undefined;
  const loaded = loadDatasetSpec(data);
  return loaded.standardization && loaded.train.columns
    ? { columns: loaded.train.columns, stats: loaded.standardization }
    : undefined;
}

export async function startServingFromFlags(
  flags: ServeFlags,
  c: {
    coordinator: string;
    data: string;
    creds: NodeCredentials;
    log: Logger;
    personal?: PersonalModelSource;
    train?: Dataset;
  },
): Promise<NodeServer | null> {
  if (flags.servePort === undefined) {
    if (flags.escalate || flags.serveRun !== undefined || flags.threshold > 0 || flags.serveQuantized)
      throw new UsageError('--threshold, --escalate, --serve-run and --serve-quantized need --serve-port');
    return null;
  }
  // Loaded here, not at startup: a node that does not serve never pays for fastify and prom-client.
  const { startNodeServer } = await import('../node/serve.js');
  const { int8Loader } = await import('../predict/int8-served-model.js');
  const server = await startNodeServer({
    port: flags.servePort,
    host: flags.serveHost,
    coordinator: c.coordinator,
    creds: c.creds,
    runId: flags.serveRun,
    pollMs: flags.modelPollMs,
    threshold: flags.threshold,
    escalate: !!flags.escalate,
    log: c.log,
    inputScaling: csvScaling(c.data),
    ...(c.personal ? { personal: c.personal } : {}),
    loadModel: flags.serveQuantized && c.train ? int8Loader(c.train) : undefined,
  });
  // The serving address on stdout (one JSON line), as the coordinator prints its own.
  process.stdout.write(`${JSON.stringify({ serve: server.url })}\n`);
  return server;
}
