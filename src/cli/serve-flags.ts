/** `edgefed node --serve-port N ...`: starts the node's serving beside its agent (src/node/serve.ts). */
import type { Logger } from 'pino';
import { startNodeServer, type NodeServer } from '../node/serve.js';
import type { NodeCredentials } from '../node/signed-fetch.js';
import { UsageError } from './args.js';

export interface ServeFlags {
  servePort?: number;
  serveRun?: number;
  modelPollMs: number;
  threshold: number;
  escalate?: boolean;
}

export async function startServingFromFlags(f: ServeFlags, c: { coordinator: string; creds: NodeCredentials; log: Logger }): Promise<NodeServer | null> {
  if (f.servePort === undefined) {
    if (f.escalate || f.serveRun !== undefined || f.threshold > 0) throw new UsageError('--threshold, --escalate and --serve-run need --serve-port');
    return null;
  }
  const server = await startNodeServer({ port: f.servePort, coordinator: c.coordinator, creds: c.creds, runId: f.serveRun, pollMs: f.modelPollMs, threshold: f.threshold, escalate: !!f.escalate, log: c.log });
  // The serving address on stdout (one JSON line), as the coordinator prints its own.
  process.stdout.write(`${JSON.stringify({ serve: server.url })}\n`);
  return server;
}
