/** What the coordinator's HTTP route modules share (built once in server.ts). */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { Store } from './store.js';
import type { Registry } from './registry.js';
import type { RunManager } from './run-manager.js';
import type { CoordinatorMetrics } from './metrics.js';
import type { ApiTokens } from './api-tokens.js';
import type { AuditLog } from './audit.js';

export interface RouteContext {
  app: FastifyInstance;
  store: Store;
  registry: Registry;
  runs: RunManager;
  metrics: CoordinatorMetrics;
  tokens: ApiTokens;
  audit: AuditLog;
  log: Logger;
  /** A gateway's local side: it takes its rounds from its coordinator. */
  gateway: boolean;
  createJoinToken(ttlSeconds?: number): string;
}

export const sendError = (reply: FastifyReply, status: number, code: string, message: string) =>
  reply.code(status).send({ error: { code, message } });
