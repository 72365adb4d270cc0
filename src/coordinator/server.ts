/**
 * The coordinator service: REST API (fastify) for runs and nodes, and the WebSocket endpoint where edge
 * nodes enrol, heartbeat and exchange binary frames. Everything a node sends is validated before use.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import { Store } from './store.js';
import { Registry } from './registry.js';
import { RunManager } from './run-manager.js';
import type { RoundRecord } from '../engine/round-engine.js';
import { CLOSE, MAX_FRAME_BYTES, PROTOCOL_VERSION } from '../net/node-protocol.js';
import { openNodeSession } from './node-session.js';
import { HelloBatcher } from './hello-batch.js';
import { WebSocketNodeEndpoint } from './ws-node-connection.js';
import { wsMasking } from '../net/ws-mask.js';
import { MqttNodeEndpoint, mqttChunkBytes, type MqttEndpointOptions } from './mqtt-node-connection.js';
import type { NodeConnection } from './node-connection.js';
import { lockDatabase } from './db-lock.js';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CoordinatorMetrics } from './metrics.js';
import { LiveFeed } from './live.js';
import { registerDashboard } from './routes-dashboard.js';
import { loadEscalationModel, registerModelRoutes } from './routes-models.js';
import { registerNodePage } from './routes-node-page.js';
import { ApiTokens } from './api-tokens.js';
import { AuditLog } from './audit.js';
import { DatasetCatalog } from './datasets.js';
import { installRoutePolicy, type RouteEntry } from './route-policy.js';
import type { RouteContext } from './route-context.js';
import { registerNodeRoutes } from './routes-nodes.js';
import { hashJoinToken, registerEnrolRoutes } from './routes-enrol.js';
import { registerAdminRoutes } from './routes-admin.js';
import { registerRunRoutes } from './routes-runs.js';
import { registerAnalyticsRoutes } from './routes-analytics.js';
import { registerModelMetaRoutes } from './routes-model-meta.js';
import type { ByteLru } from './byte-lru.js';
import { defaultVerifyThreads, LazyVerifyPool } from './verify-pool.js';
import { checkWorkerNice, DEFAULT_WORKER_NICE } from './thread-priority.js';
import { stallAwareInterval } from './loop-stall.js';
import { selectKernels } from '../nn/kernels-select.js';

/** EDGEFED_MAX_FRAME_BYTES lowers the per-frame limit (a deployment that knows its model size should). */
const frameLimit = () => Math.min(MAX_FRAME_BYTES, Number(process.env.EDGEFED_MAX_FRAME_BYTES) || MAX_FRAME_BYTES);
/** How long a shutdown lets the round in progress finish before abandoning it uncommitted. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;
/** Rows of last-seen times written per turn of the event loop (a few ms of SQLite each). */
const LAST_SEEN_CHUNK = 1000;
export const MAX_SHUTDOWN_GRACE_MS = 10 * 60 * 1000;

export interface CoordinatorOptions {
  port: number;
  host?: string;
  db: string;
  /** Require enrolled Ed25519 identities and signed frames (default true). */
  auth?: boolean;
  /** The root credential (admin routes, creating scoped tokens); generated when absent (see Coordinator.adminToken). */
  adminToken?: string;
  /** Reads (runs, nodes, live feed, metrics) without a token. Control, models and admin stay locked. */
  publicRead?: boolean;
  /** Viewing only (`edgefed open`): no run resumes, no node is accepted, every route that writes answers 403. */
  readOnly?: boolean;
  /** Datasets a run config may name as evalDataset (NAME -> spec), besides the built-ins (datasets.ts). */
  datasets?: Record<string, string>;
  /** TLS: serve https and wss with these PEM files. */
  tls?: { cert: string; key: string };
  heartbeatMs?: number;
  /** A gateway's local side: its rounds come from its coordinator, so it refuses POST /v1/runs. */
  gateway?: boolean;
  logger?: Logger;
  onRound?: (runId: number, record: RoundRecord) => void;
  /** A tfjs model.json (or its folder) served for escalated low-confidence samples (POST /v1/predict, model 'escalation'). */
  escalationModel?: string;
  /** On close: how long the round in progress may take to finish before it is abandoned uncommitted (ms). */
  shutdownGraceMs?: number;
  /**
   * Worker threads that check node frames' signatures off the event loop (verify-pool.ts), started once
   * `verifyOffThreadFrom` nodes are connected (default 256; 0: at start); 0 threads: always on the event loop.
   */
  verifyThreads?: number;
  verifyOffThreadFrom?: number;
  /**
   * Nice value (0-19) of the coordinator's worker threads (verify pool, dataset loading), so that on a busy machine
   * the event loop runs first (thread-priority.ts; Linux only, elsewhere one warning). Default DEFAULT_WORKER_NICE;
   * 0: as the event loop.
   */
  workerNice?: number;
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
  tokens: ApiTokens;
  audit: AuditLog;
  /** Every HTTP route registered, with its declared access policy. */
  routes: RouteEntry[];
  /** Encoded MNIST shards served to browser nodes (bounded by bytes). */
  shardCache: ByteLru<Uint8Array>;
  /** Creates a one-time join token (what POST /v1/admin/join-tokens does). */
  createJoinToken(ttlSeconds?: number): string;
  /** Stops taking work, lets the round in progress finish within the grace period (else abandons it), and
   * closes; runs stay 'running' in the store, so a coordinator restarted on the same database resumes them. */
  close(): Promise<void>;
}

export async function startCoordinator(options: CoordinatorOptions): Promise<Coordinator> {
  const workerNice = checkWorkerNice(options.workerNice ?? DEFAULT_WORKER_NICE, 'workerNice');
  const log = options.logger ?? pino({ level: process.env.EDGEFED_LOG ?? 'info' }, pino.destination(2));
  // One coordinator per database: a second one would drive the same runs (db-lock.ts).
  const lock = options.db === ':memory:' ? null : lockDatabase(options.db);
  let store: Store;
  try {
    store = new Store(options.db);
  } catch (e) {
    lock?.release();
    throw e;
  }
  const registry = new Registry();
  let recordVersion: (runId: number, record: RoundRecord) => void = () => undefined;
  const runs = new RunManager(
    store,
    registry,
    log,
    (id, record) => {
      recordVersion(id, record);
      options.onRound?.(id, record);
    },
    options.auth ?? true,
    new DatasetCatalog(options.datasets, workerNice),
  );
  const heartbeatMs = options.heartbeatMs ?? 5000;
  const auth = options.auth ?? true;
  const adminToken = options.adminToken ?? randomBytes(24).toString('hex');
  const tokens = new ApiTokens(store.database, adminToken);
  const audit = new AuditLog(store.database);
  const live = new LiveFeed(store, registry, log, heartbeatMs, {
    auth,
    publicRead: options.publicRead ?? false,
    tokens,
  });
  const metrics = new CoordinatorMetrics(store, registry, () => live.size);
  const app = Fastify({
    logger: false,
    bodyLimit: 1024 * 1024,
    ...(options.tls ? { https: { cert: readFileSync(options.tls.cert), key: readFileSync(options.tls.key) } } : {}),
  } as object) as unknown as FastifyInstance;
  const createJoinToken = (ttlSeconds = 24 * 3600): string => {
    const token = randomBytes(24).toString('hex');
    store.createJoinToken(hashJoinToken(token), Date.now() + ttlSeconds * 1000);
    return token;
  };

  app.setErrorHandler((err: { statusCode?: number; message: string }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    void reply
      .code(status)
      .send({ error: { code: status === 500 ? 'internal' : 'bad_request', message: err.message } });
  });

  // Every HTTP route lives in a routes-*.ts module with its access policy beside it (route-policy.ts).
  const routes = installRoutePolicy(app, {
    auth,
    publicRead: options.publicRead ?? false,
    readOnly: options.readOnly ?? false,
    tokens,
    store,
    audit,
  });
  const ctx: RouteContext = {
    app,
    store,
    registry,
    runs,
    metrics,
    tokens,
    audit,
    log,
    gateway: !!options.gateway,
    createJoinToken,
  };
  registerNodeRoutes(ctx, PROTOCOL_VERSION);
  registerEnrolRoutes(ctx);
  registerAdminRoutes(ctx);
  registerRunRoutes(ctx);
  registerAnalyticsRoutes(ctx, auth);
  registerModelMetaRoutes(ctx);
  registerDashboard(app);
  const models = registerModelRoutes(app, {
    store,
    runs,
    escalation: options.escalationModel ? await loadEscalationModel(options.escalationModel) : null,
  });
  recordVersion = models.committed;
  const shardCache = registerNodePage(app);
  // The kernels' one-time load and check against the TypeScript reference (100-250 ms of this thread, measured at
  // 10,000 nodes) happen now, with no node connected yet, not when a run starts with the whole fleet waiting on the
  // loop. A failure here changes nothing: the run that needs the kernels reports it, as before.
  if (!options.readOnly) await selectKernels().catch(() => undefined);

  // A fleet connecting at once overflows Node's default accept queue (511) while the loop is busy: the bench saw the
  // kernel's ListenOverflows climb and nodes reset before their welcome. The kernel caps this at somaxconn.
  await app.listen({ port: options.port, host: options.host ?? '127.0.0.1', backlog: 8192 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;

  let accepting = !options.readOnly;
  // Only signed frames are worth a thread: with auth off nothing is verified.
  const verifyPool = new LazyVerifyPool(
    auth ? (options.verifyThreads ?? defaultVerifyThreads()) : 0,
    options.verifyOffThreadFrom ?? 256,
    (e) => log.error({ err: e.message }, 'verify threads did not start; frames are checked on the event loop'),
    workerNice,
    (reason) =>
      log.warn(
        { workerNice, reason },
        'verify threads run at the priority of the event loop: the OS did not lower theirs (workerNice)',
      ),
  );
  if (options.verifyOffThreadFrom === 0) verifyPool.forFleet(0);
  const hellos = new HelloBatcher(store);
  const openSession = (conn: NodeConnection) =>
    openNodeSession(conn, {
      store,
      hellos,
      registry,
      runs,
      metrics,
      log,
      auth,
      heartbeatMs,
      accepting: () => accepting,
      verifyPool: () => verifyPool.forFleet(registry.size),
    });
  const nodeEndpoint = new WebSocketNodeEndpoint(frameLimit(), openSession);
  let mqttEndpoint: MqttNodeEndpoint | null = null;
  if (options.mqtt) {
    try {
      mqttEndpoint = await MqttNodeEndpoint.start(
        { ...options.mqtt, chunkBytes: mqttChunkBytes(options.mqtt.chunkBytes), maxFrameBytes: frameLimit(), log },
        openSession,
      );
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
  // Last-seen times live in the registry; the store gets them once per heartbeat interval, LAST_SEEN_CHUNK rows
  // per turn of the event loop and without an fsync (Store.touchNodes): at 10,000 nodes one durable transaction
  // held the loop for 70-200 ms every interval. A crash loses at most an interval's last-seen times, which only
  // say when a node was last heard from; nothing a run needs.
  let persisting = false;
  const persistLastSeen = setInterval(async () => {
    if (persisting) return;
    persisting = true;
    try {
      const live = registry.all();
      for (let i = 0; i < live.length && accepting; i += LAST_SEEN_CHUNK) {
        if (i > 0) await new Promise((r) => setImmediate(r));
        if (!accepting) break;
        store.touchNodes(
          live.slice(i, i + LAST_SEEN_CHUNK).map((n) => ({ id: n.id, atMs: n.lastSeen })),
          false,
        );
      }
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'last-seen times not stored this interval');
    } finally {
      persisting = false;
    }
  }, heartbeatMs);
  // The sweep skips a tick the loop was stalled through (loop-stall.ts): heartbeats may sit unread, not missing.
  const sweeper = stallAwareInterval(heartbeatMs, () => {
    // One clock read per sweep: at 10,000 nodes a Date.now() per node showed in profiles.
    const silentSince = Date.now() - 3 * heartbeatMs;
    for (const n of registry.all())
      if (!n.waiter && n.lastSeen < silentSince) {
        // The close code tells a live but slow node why; a dead one is cut a second later.
        n.connection.close(CLOSE.heartbeatTimeout, `no heartbeat for ${(3 * heartbeatMs) / 1000} s`);
        setTimeout(() => n.connection.terminate(), 1000).unref();
      }
  });

  if (!options.readOnly) runs.resumeAll();
  const url = `${options.tls ? 'https' : 'http'}://${options.host ?? '127.0.0.1'}:${port}`;
  log.info({ url, dashboard: `${url}/dashboard/`, wsMasking }, 'coordinator listening');
  return {
    app,
    store,
    registry,
    runs,
    url,
    dashboardUrl: `${url}/dashboard/`,
    metrics,
    adminToken,
    auth,
    tokens,
    audit,
    routes,
    shardCache,
    createJoinToken,
    async close() {
      accepting = false;
      sweeper.stop();
      live.close();
      metrics.close();
      clearInterval(persistLastSeen);
      const grace = options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
      const finished = runs.shutdown(Math.min(Math.max(0, grace), MAX_SHUTDOWN_GRACE_MS));
      await finished;
      // Past the grace period the rounds in progress are abandoned: closing the nodes fails their requests.
      for (const n of registry.all()) n.connection.terminate();
      nodeEndpoint.close();
      await mqttEndpoint?.close();
      await app.close();
      await Promise.race([
        Promise.all(runs.activeRuns().map((r) => r.done)),
        new Promise((r) => setTimeout(r, 2000).unref()),
      ]);
      models.close();
      await verifyPool.close();
      store.close();
      lock?.release();
    },
  };
}
