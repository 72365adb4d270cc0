/**
 * The coordinator service: REST API (fastify) for runs and nodes, and the WebSocket endpoint where edge
 * nodes enrol, heartbeat and exchange binary frames. Everything a node sends is validated before use.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { z } from 'zod';
import pino, { type Logger } from 'pino';
import { Store } from './store.js';
import { Registry } from './registry.js';
import { RunManager } from './run-manager.js';
import { parseRunConfig } from './config.js';
import type { RoundRecord } from '../engine/round-engine.js';
import { MAX_FRAME_BYTES, PROTOCOL_VERSION } from '../net/node-protocol.js';
import { openNodeSession } from './node-session.js';
import { WebSocketNodeEndpoint } from './ws-node-connection.js';
import { MqttNodeEndpoint, mqttChunkBytes, type MqttEndpointOptions } from './mqtt-node-connection.js';
import type { NodeConnection } from './node-connection.js';
import { lockDatabase } from './db-lock.js';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { weightsSha256 } from '../model/hash.js';
import { CoordinatorMetrics } from './metrics.js';
import { LiveFeed, nodeViews } from './live.js';
import { registerDashboard } from './routes-dashboard.js';
import { loadEscalationModel, registerModelRoutes } from './routes-models.js';
import { registerNodePage } from './routes-node-page.js';

/** EDGEFED_MAX_FRAME_BYTES lowers the per-frame limit (a deployment that knows its model size should). */
const frameLimit = () => Math.min(MAX_FRAME_BYTES, Number(process.env.EDGEFED_MAX_FRAME_BYTES) || MAX_FRAME_BYTES);
/** How long a shutdown lets the round in progress finish before abandoning it uncommitted. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;
export const MAX_SHUTDOWN_GRACE_MS = 10 * 60 * 1000;

const EnrollSchema = z.object({
  name: z.string().min(1).max(128).regex(/^[A-Za-z0-9_.:-]+$/),
  publicKey: z.string().regex(/^[0-9a-f]{64}$/),
  token: z.string().min(16).max(256),
}).strict();

const hashToken = (t: string) => createHash('sha256').update(t).digest('hex');

export interface CoordinatorOptions {
  port: number;
  host?: string;
  db: string;
  /** Require enrolled Ed25519 identities and signed frames (default true). */
  auth?: boolean;
  /** Bearer token for /v1/admin/*; generated when absent (see Coordinator.adminToken). */
  adminToken?: string;
  /** TLS: serve https and wss with these PEM files. */
  tls?: { cert: string; key: string };
  heartbeatMs?: number;
  /** A gateway's local side: its rounds come from its coordinator, so it refuses POST /v1/runs. */
  gateway?: boolean;
  logger?: Logger;
  onRound?: (runId: number, r: RoundRecord) => void;
  /** A tfjs model.json (or its folder) served for escalated low-confidence samples (POST /v1/predict, model 'escalation'). */
  escalationModel?: string;
  /** On close: how long the round in progress may take to finish before it is abandoned uncommitted (ms). */
  shutdownGraceMs?: number;
  /** Also serve nodes through an MQTT broker (mqtt-node-connection.ts), beside the WebSocket endpoint. */
  mqtt?: Omit<MqttEndpointOptions, 'maxFrameBytes' | 'log' | 'chunkBytes'> & { chunkBytes?: number };
}

export interface Coordinator {
  app: FastifyInstance;
  store: Store;
  registry: Registry;
  runs: RunManager;
  url: string;
  /** The dashboard page: `${url}/dashboard/`. */
  dashboardUrl: string;
  metrics: CoordinatorMetrics;
  adminToken: string;
  auth: boolean;
  /** Creates a one-time join token (what POST /v1/admin/join-tokens does). */
  createJoinToken(ttlSeconds?: number): string;
  /** Stops taking work, lets the round in progress finish within the grace period (else abandons it), and
   * closes; runs stay 'running' in the store, so a coordinator restarted on the same database resumes them. */
  close(): Promise<void>;
}

export async function startCoordinator(o: CoordinatorOptions): Promise<Coordinator> {
  const log = o.logger ?? pino({ level: process.env.EDGEFED_LOG ?? 'info' }, pino.destination(2));
  // One coordinator per database: a second one would drive the same runs (db-lock.ts).
  const lock = o.db === ':memory:' ? null : lockDatabase(o.db);
  let store: Store;
  try {
    store = new Store(o.db);
  } catch (e) {
    lock?.release();
    throw e;
  }
  const registry = new Registry();
  let recordVersion: (runId: number, r: RoundRecord) => void = () => undefined;
  const runs = new RunManager(store, registry, log, (id, r) => { recordVersion(id, r); o.onRound?.(id, r); }, o.auth ?? true);
  const heartbeatMs = o.heartbeatMs ?? 5000;
  const live = new LiveFeed(store, registry, log, heartbeatMs);
  const metrics = new CoordinatorMetrics(store, registry, () => live.size);
  const auth = o.auth ?? true;
  const adminToken = o.adminToken ?? randomBytes(24).toString('hex');
  const app = Fastify({
    logger: false, bodyLimit: 1024 * 1024,
    ...(o.tls ? { https: { cert: readFileSync(o.tls.cert), key: readFileSync(o.tls.key) } } : {}),
  } as object) as unknown as FastifyInstance;
  const createJoinToken = (ttlSeconds = 24 * 3600): string => {
    const token = randomBytes(24).toString('hex');
    store.createJoinToken(hashToken(token), Date.now() + ttlSeconds * 1000);
    return token;
  };

  const fail = (code: number, error: string, message: string) => ({ statusCode: code, body: { error: { code: error, message } } });
  app.setErrorHandler((err: { statusCode?: number; message: string }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    void reply.code(status).send({ error: { code: status === 500 ? 'internal' : 'bad_request', message: err.message } });
  });

  app.get('/healthz', async () => ({ ok: true, protocol: PROTOCOL_VERSION }));
  // A fixed-size download the node agent times to estimate its bandwidth at enrolment.
  app.get('/v1/bandwidth-probe', async (_req, reply) => reply.type('application/octet-stream').send(Buffer.alloc(1 << 20)));
  app.post('/v1/runs', async (req, reply) => {
    if (o.gateway) return reply.code(409).send({ error: { code: 'gateway', message: 'a gateway takes its rounds from its coordinator: create runs there' } });
    let config;
    try {
      config = parseRunConfig(req.body);
    } catch (e) {
      const f = fail(400, 'invalid_config', (e as Error).message);
      return reply.code(f.statusCode).send(f.body);
    }
    const id = store.createRun(config, config.seed);
    runs.start(id);
    return reply.code(201).send({ id });
  });
  app.post('/v1/admin/join-tokens', async (req, reply) => {
    if (req.headers.authorization !== `Bearer ${adminToken}`) return reply.code(401).send({ error: { code: 'unauthorized', message: 'admin token required' } });
    const ttl = Number((req.body as { ttlSeconds?: unknown } | undefined)?.ttlSeconds ?? 24 * 3600);
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > 365 * 24 * 3600) return reply.code(400).send({ error: { code: 'bad_request', message: 'ttlSeconds must be a whole number of seconds up to a year' } });
    return reply.code(201).send({ token: createJoinToken(ttl) });
  });
  app.post('/v1/enroll', async (req, reply) => {
    const r = EnrollSchema.safeParse(req.body);
    if (!r.success) return reply.code(400).send({ error: { code: 'bad_request', message: r.error.issues[0].message } });
    try {
      store.redeemJoinToken(hashToken(r.data.token), r.data.name, r.data.publicKey);
    } catch (e) {
      const code = (e as { code?: string }).code === 'conflict' ? 409 : 401;
      store.recordEvent(null, 'rejected', { name: r.data.name, code: 'enroll_refused', message: (e as Error).message });
      metrics.rejected('enroll_refused');
      log.warn({ name: r.data.name, code: 'enroll_refused', message: (e as Error).message }, 'enrolment refused');
      return reply.code(code).send({ error: { code: 'enroll_refused', message: (e as Error).message } });
    }
    log.info({ name: r.data.name }, 'node identity enrolled');
    return reply.code(201).send({ name: r.data.name });
  });
  app.get('/v1/runs', async () => ({ runs: store.listRuns() }));
  const runId = (req: { params: unknown }) => {
    const id = Number((req.params as { id: string }).id);
    return Number.isSafeInteger(id) && id > 0 ? id : 0; // 0 names no run (ids start at 1): a 404, not a store error
  };
  app.get('/v1/runs/:id', async (req, reply) => {
    const run = store.getRun(runId(req));
    if (!run) return reply.code(404).send({ error: { code: 'not_found', message: 'no such run' } });
    return { ...run, rounds: store.roundRecords(run.id) };
  });
  for (const action of ['pause', 'resume', 'stop'] as const) {
    app.post(`/v1/runs/:id/${action}`, async (req, reply) => {
      const run = store.getRun(runId(req));
      if (!run) return reply.code(404).send({ error: { code: 'not_found', message: 'no such run' } });
      if (run.status === 'completed' || run.status === 'stopped' || run.status === 'failed') {
        return reply.code(409).send({ error: { code: 'finished', message: `run is ${run.status}` } });
      }
      runs.setControl(run.id, action === 'pause' ? 'pause' : action === 'stop' ? 'stop' : 'run');
      return { id: run.id, action };
    });
  }
  app.get('/v1/runs/:id/events', async (req, reply) => {
    const run = store.getRun(runId(req));
    if (!run) return reply.code(404).send({ error: { code: 'not_found', message: 'no such run' } });
    return { events: store.events(run.id, 500) };
  });
  app.get('/v1/runs/:id/checkpoint', async (req, reply) => {
    const run = store.getRun(runId(req));
    const ckpt = run ? store.lastCheckpoint(run.id) : null;
    if (!run || !ckpt) return reply.code(404).send({ error: { code: 'not_found', message: 'no checkpoint for this run' } });
    return { runId: run.id, round: ckpt.round, sha256: weightsSha256(ckpt.weights), numParams: ckpt.weights.length };
  });
  app.get('/v1/nodes', async () => ({ nodes: nodeViews(store, registry) }));
  app.get('/metrics', async (_req, reply) => {
    const m = await metrics.text();
    return reply.type(m.contentType).send(m.body);
  });
  registerDashboard(app);

  const models = registerModelRoutes(app, { store, runs, auth, adminToken, escalation: o.escalationModel ? await loadEscalationModel(o.escalationModel) : null });
  recordVersion = models.committed;
  registerNodePage(app);

  await app.listen({ port: o.port, host: o.host ?? '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : o.port;

  let accepting = true;
  const openSession = (conn: NodeConnection) => openNodeSession(conn, {
    store, registry, runs, metrics, log, auth, heartbeatMs, accepting: () => accepting,
  });
  const nodeEndpoint = new WebSocketNodeEndpoint(frameLimit(), openSession);
  let mqttEndpoint: MqttNodeEndpoint | null = null;
  if (o.mqtt) {
    try {
      mqttEndpoint = await MqttNodeEndpoint.start({ ...o.mqtt, chunkBytes: mqttChunkBytes(o.mqtt.chunkBytes), maxFrameBytes: frameLimit(), log }, openSession);
    } catch (e) {
      await app.close();
      store.close();
      lock?.release();
      throw e;
    }
  }
  app.server.on('upgrade', (req, socket, head) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/v1/live') return live.handleUpgrade(req, socket, head);
    if (path !== '/v1/ws') {
      socket.destroy();
      return;
    }
    nodeEndpoint.handleUpgrade(req, socket, head);
  });

  // Nodes that stop heartbeating are dropped. A node working on a request is exempt: a device busy training
  // may not get to its heartbeat, and the round's deadline (or the socket closing) bounds that wait anyway.
  const persistLastSeen = setInterval(() => {
    const live = registry.all();
    if (live.length > 0) store.touchNodes(live.map((n) => ({ id: n.id, atMs: n.lastSeen })));
  }, heartbeatMs);
  const sweeper = setInterval(() => {
    for (const n of registry.all()) if (!n.waiter && Date.now() - n.lastSeen > 3 * heartbeatMs) n.connection.terminate();
  }, heartbeatMs);

  runs.resumeAll();
  const url = `${o.tls ? 'https' : 'http'}://${o.host ?? '127.0.0.1'}:${port}`;
  log.info({ url, dashboard: `${url}/dashboard/` }, 'coordinator listening');
  return {
    app, store, registry, runs, url, dashboardUrl: `${url}/dashboard/`, metrics, adminToken, auth, createJoinToken,
    async close() {
      accepting = false;
      clearInterval(sweeper);
      live.close();
      metrics.close();
      clearInterval(persistLastSeen);
      const grace = o.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
      const finished = runs.shutdown(Math.min(Math.max(0, grace), MAX_SHUTDOWN_GRACE_MS));
      await finished;
      // Past the grace period the rounds in progress are abandoned: closing the nodes fails their requests.
      for (const n of registry.all()) n.connection.terminate();
      nodeEndpoint.close();
      await mqttEndpoint?.close();
      await app.close();
      await Promise.race([Promise.all(runs.activeRuns().map((r) => r.done)), new Promise((r) => setTimeout(r, 2000).unref())]);
      models.close();
      store.close();
      lock?.release();
    },
  };
}
