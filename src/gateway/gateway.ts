/**
 * `edgefed gateway`: upward, a node of the coordinator (an Agent with its own key and join token); downward,
 * a coordinator for its local nodes (the coordinator's own server: enrolment, auth, registry, heartbeats),
 * whose train and evaluate requests from the cloud are answered by the edge federation, and whose analytics
 * requests by its nodes' merged answers (edge-analytics.ts).
 */
import type { Logger } from 'pino';
import { startCoordinator, type Coordinator } from '../coordinator/server.js';
import { Agent } from '../node/agent.js';
import { edgeHandler, type EdgeOptions } from './edge-federation.js';
import { edgeAnalytics } from './edge-analytics.js';

export interface GatewayOptions {
  /** Upward: the coordinator's address, this gateway's name, tags, key and (first time) join token. */
  coordinator: string;
  name: string;
  tags: Record<string, string>;
  secretKey: Uint8Array;
  joinToken?: string;
  /** Downward: where local nodes connect, the node registry's SQLite file, auth and admin token. */
  port: number;
  host?: string;
  db: string;
  auth: boolean;
  adminToken?: string;
  edge: Omit<EdgeOptions, 'auth' | 'log'>;
  log: Logger;
}

export interface Gateway {
  local: Coordinator;
  agent: Agent;
  close(): Promise<void>;
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const local = await startCoordinator({
    port: options.port,
    host: options.host,
    db: options.db,
    auth: options.auth,
    adminToken: options.adminToken,
    gateway: true,
    logger: options.log,
  });
  const edge: EdgeOptions = { ...options.edge, auth: options.auth, log: options.log };
  const agent = new Agent({
    coordinator: options.coordinator,
    name: options.name,
    tags: options.tags,
    log: options.log,
    secretKey: options.secretKey,
    joinToken: options.joinToken,
    powerClass: 'mains',
    handler: async (runId, spec, stats) => edgeHandler(local.registry, edge, runId, spec, stats),
    analytics: edgeAnalytics(local.registry, { timeoutMs: edge.roundTimeoutMs, auth: edge.auth, log: edge.log }),
  });
  try {
    await agent.start();
  } catch (e) {
    await local.close();
    throw e;
  }
  return {
    local,
    agent,
    async close() {
      agent.stop();
      await local.close();
    },
  };
}
