/**
 * The coordinator service: REST API (fastify) for runs and nodes, and the WebSocket endpoint where edge
 * nodes enrol, heartbeat and exchange binary frames. Everything a node sends is validated before use.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import { z } from 'zod';
import pino, { type Logger } from 'pino';
import { Store } from './store.js';
import { Registry, type LiveNode } from './registry.js';
import { RunManager } from './run-manager.js';
import type { RoundRecord } from '../engine/round-engine.js';
import { FrameLink } from '../net/frame-link.js';
import { nodeCrypto } from '../net/node-crypto.js';
import { FrameError } from '../core/wire.js';
import { fromHex, isSigned, openSignedFrame, readSignedFrameUnverified, verifyHello, type Binding } from '../core/identity.js';
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
import type { ByteLru } from './byte-lru.js';

export const PROTOCOL_VERSION = 1;
export const MAX_FRAME_BYTES = 256 * 1024 * 1024;
/** EDGEFED_MAX_FRAME_BYTES lowers the per-frame limit (a deployment that knows its model size should). */
const frameLimit = () => Math.min(MAX_FRAME_BYTES, Number(process.env.EDGEFED_MAX_FRAME_BYTES) || MAX_FRAME_BYTES);
const HELLO_TIMEOUT_MS = 10_000;

const HelloSchema = z.object({
  type: z.literal('hello'),
  protocol: z.literal(PROTOCOL_VERSION),
  name: z.string().min(1).max(128).regex(/^[A-Za-z0-9_.:-]+$/),
  resources: z.object({
    cores: z.number().int().min(0).max(4096).optional(),
    memoryMb: z.number().min(0).max(1e9).optional(),
    samplesPerSecond: z.number().min(0).max(1e12).optional(),
    bandwidthMbps: z.number().min(0).max(1e6).optional(),
    powerClass: z.string().max(32).optional(),
    examples: z.number().int().min(0).optional(),
    platform: z.string().max(64).optional(),
    /** Examples per class (opt-in, `edgefed node --share-labels`): the dashboard's label histogram. */
    labelCounts: z.array(z.number().int().min(0).max(1e12)).max(1000).optional(),
  }).strict(),
  tags: z.record(z.string().max(64), z.string().max(256)).refine((t) => Object.keys(t).length <= 32, 'at most 32 tags'),
  /** Proof of key possession: Ed25519 signature over (name, timestamp, nonce). Required when auth is on. */
  auth: z.object({ timestamp: z.number().int(), nonce: z.string().regex(/^[0-9a-f]{32}$/), signature: z.string().regex(/^[0-9a-f]{128}$/) }).strict().optional(),
}).strict();

const HELLO_SKEW_MS = 5 * 60 * 1000;

const ControlSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('heartbeat') }).strict(),
]);

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
  /** Datasets a run config may name as evalDataset (NAME -> spec), besides the built-ins (datasets.ts). */
  datasets?: Record<string, string>;
  /** TLS: serve https and wss with these PEM files. */
  tls?: { cert: string; key: string };
  heartbeatMs?: number;
  /** A gateway's local side: its rounds come from its coordinator, so it refuses POST /v1/runs. */
  gateway?: boolean;
  logger?: Logger;
  onRound?: (runId: number, r: RoundRecord) => void;
  /** A tfjs model.json (or its folder) served for escalated low-confidence samples (POST /v1/predict, model 'escalation'). */
  escalationModel?: string;
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
  close(): Promise<void>;
}

export async function startCoordinator(o: CoordinatorOptions): Promise<Coordinator> {
  const log = o.logger ?? pino({ level: process.env.EDGEFED_LOG ?? 'info' }, pino.destination(2));
  const store = new Store(o.db);
  const registry = new Registry();
  let recordVersion: (runId: number, r: RoundRecord) => void = () => undefined;
  const runs = new RunManager(store, registry, log, (id, r) => { recordVersion(id, r); o.onRound?.(id, r); }, o.auth ?? true, new DatasetCatalog(o.datasets));
  const heartbeatMs = o.heartbeatMs ?? 5000;
  const auth = o.auth ?? true;
  const adminToken = o.adminToken ?? randomBytes(24).toString('hex');
  const tokens = new ApiTokens(store.database, adminToken);
  const audit = new AuditLog(store.database);
  const live = new LiveFeed(store, registry, log, heartbeatMs, { auth, publicRead: o.publicRead ?? false, tokens });
  const metrics = new CoordinatorMetrics(store, registry, () => live.size);
  const app = Fastify({
    logger: false, bodyLimit: 1024 * 1024,
    ...(o.tls ? { https: { cert: readFileSync(o.tls.cert), key: readFileSync(o.tls.key) } } : {}),
  } as object) as unknown as FastifyInstance;
  const recentHelloNonces = new Map<string, number>();
  const createJoinToken = (ttlSeconds = 24 * 3600): string => {
    const token = randomBytes(24).toString('hex');
    store.createJoinToken(hashJoinToken(token), Date.now() + ttlSeconds * 1000);
    return token;
  };

  app.setErrorHandler((err: { statusCode?: number; message: string }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    void reply.code(status).send({ error: { code: status === 500 ? 'internal' : 'bad_request', message: err.message } });
  });

  // Every HTTP route lives in a routes-*.ts module with its access policy beside it (route-policy.ts).
  const routes = installRoutePolicy(app, { auth, publicRead: o.publicRead ?? false, tokens, store, audit });
  const ctx: RouteContext = { app, store, registry, runs, metrics, tokens, audit, log, gateway: !!o.gateway, createJoinToken };
  registerNodeRoutes(ctx, PROTOCOL_VERSION);
  registerEnrolRoutes(ctx);
  registerAdminRoutes(ctx);
  registerRunRoutes(ctx);
  registerDashboard(app);
  const models = registerModelRoutes(app, { store, runs, escalation: o.escalationModel ? await loadEscalationModel(o.escalationModel) : null });
  recordVersion = models.committed;
  const shardCache = registerNodePage(app);

  await app.listen({ port: o.port, host: o.host ?? '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : o.port;

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES });
  app.server.on('upgrade', (req, socket, head) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/v1/live') return live.handleUpgrade(req, socket, head);
    if (path !== '/v1/ws') {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws));
  });

  function onConnection(ws: WebSocket): void {
    let node: LiveNode | null = null;
    const helloTimer = setTimeout(() => ws.close(4000, 'no hello'), HELLO_TIMEOUT_MS);
    const reject = (code: string, message: string) => {
      const runId = node?.configuredRun ?? null;
      log.warn({ nodeId: node?.id, node: node?.name, runId, code, message }, 'rejected node message');
      metrics.rejected(code);
      if (node) store.recordEvent(runId !== null && store.getRun(runId) ? runId : null, 'rejected', { nodeId: node.id, code, message });
      ws.send(JSON.stringify({ type: 'error', code, message }));
    };
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      if (!node) {
        if (isBinary) return ws.close(4001, 'hello first');
        let hello;
        try {
          hello = HelloSchema.parse(JSON.parse(bytes.toString('utf8')));
        } catch (e) {
          reject('bad_hello', (e as Error).message.slice(0, 300));
          return ws.close(4002, 'bad hello');
        }
        const keyHex = store.nodeKey(hello.name);
        const publicKey = keyHex ? fromHex(keyHex, 32, 'public key') : null;
        if (auth) {
          const a = hello.auth;
          const fresh = a && Math.abs(Date.now() - a.timestamp) < HELLO_SKEW_MS && !recentHelloNonces.has(a.nonce);
          if (!publicKey || !a || !fresh || !verifyHello(hello.name, a.timestamp, a.nonce, a.signature, publicKey)) {
            store.recordEvent(null, 'rejected', { name: hello.name, code: 'unauthenticated', message: 'hello without a valid signature from an enrolled key' });
            reject('unauthenticated', publicKey ? 'hello signature invalid, stale or replayed' : 'node is not enrolled: POST /v1/enroll with a join token first');
            return ws.close(4003, 'unauthenticated');
          }
          recentHelloNonces.set(a.nonce, Date.now());
          for (const [k, t] of recentHelloNonces) if (Date.now() - t > HELLO_SKEW_MS) recentHelloNonces.delete(k);
        }
        clearTimeout(helloTimer);
        const id = store.upsertNode(hello.name, { resources: hello.resources, tags: hello.tags });
        node = { id, name: hello.name, socket: ws, link: new FrameLink(ws, frameLimit()), publicKey, resources: hello.resources, tags: hello.tags, lastSeen: Date.now(), configuredRun: null, waiter: null, seenNonces: new Set() };
        registry.add(node);
        ws.send(JSON.stringify({ type: 'welcome', nodeId: id, heartbeatMs, protocol: PROTOCOL_VERSION }));
        log.info({ nodeId: id, name: hello.name, tags: hello.tags }, 'node enrolled');
        return;
      }
      node.lastSeen = Date.now();
      if (isBinary) {
        let frame: Uint8Array | null;
        try {
          frame = node.link.receive(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
        } catch (e) {
          reject(e instanceof FrameError ? e.code : 'bad_frame', (e as Error).message);
          return;
        }
        if (!frame) return; // more chunks to come
        let binding: Binding | null = null;
        try {
          if (isSigned(frame) && node.publicKey) ({ binding, frame } = openSignedFrame(frame, node.publicKey, nodeCrypto));
          else if (isSigned(frame) && !auth) ({ binding, frame } = readSignedFrameUnverified(frame));
          else if (auth) throw new FrameError(isSigned(frame) ? 'unauthenticated' : 'unsigned', 'frames must be signed with the node\'s enrolled key');
          if (binding && (binding.node !== node.id || binding.run !== node.configuredRun)) throw new FrameError('bad_binding', `frame is bound to node ${binding.node} run ${binding.run}`);
          if (binding && (node.seenNonces.has(binding.nonce) || (node.waiter && binding.round === node.waiter.binding.round && binding.nonce !== node.waiter.binding.nonce))) {
            throw new FrameError('replayed', `frame answers a request that is not the one pending (round ${binding.round})`);
          }
          if (binding && node.waiter && binding.round !== node.waiter.binding.round && binding.round > node.waiter.binding.round) {
            throw new FrameError('wrong_round', `frame is bound to round ${binding.round}, the pending request is round ${node.waiter.binding.round}`);
          }
        } catch (e) {
          reject(e instanceof FrameError ? e.code : 'bad_frame', (e as Error).message);
          return;
        }
        if (node.waiter?.accept(frame, binding)) return;
        if (node.configuredRun !== null) runs.late(node.configuredRun, node.id, frame);
        else reject('unexpected_frame', 'no request is waiting for this frame');
        return;
      }
      try {
        ControlSchema.parse(JSON.parse(bytes.toString('utf8')));
        // lastSeen lives in the registry; the store gets it in one batched write per heartbeat interval.
      } catch (e) {
        reject('bad_message', (e as Error).message.slice(0, 300));
      }
    });
    ws.on('close', () => {
      clearTimeout(helloTimer);
      if (node) {
        registry.remove(node.id, ws);
        log.info({ nodeId: node.id }, 'node disconnected');
      }
    });
    ws.on('error', () => ws.terminate());
  }

  // Nodes that stop heartbeating are dropped. A node working on a request is exempt: a device busy training
  // may not get to its heartbeat, and the round's deadline (or the socket closing) bounds that wait anyway.
  const persistLastSeen = setInterval(() => {
    const live = registry.all();
    if (live.length > 0) store.touchNodes(live.map((n) => ({ id: n.id, atMs: n.lastSeen })));
  }, heartbeatMs);
  const sweeper = setInterval(() => {
    for (const n of registry.all()) if (!n.waiter && Date.now() - n.lastSeen > 3 * heartbeatMs) n.socket.terminate();
  }, heartbeatMs);

  runs.resumeAll();
  const url = `${o.tls ? 'https' : 'http'}://${o.host ?? '127.0.0.1'}:${port}`;
  log.info({ url, dashboard: `${url}/dashboard/` }, 'coordinator listening');
  return {
    app, store, registry, runs, url, dashboardUrl: `${url}/dashboard/`, metrics, adminToken, auth, tokens, audit, routes, shardCache, createJoinToken,
    async close() {
      clearInterval(sweeper);
      live.close();
      metrics.close();
      clearInterval(persistLastSeen);
      for (const r of runs.activeRuns()) runs.setControl(r.id, 'stop');
      for (const n of registry.all()) n.socket.terminate();
      wss.close();
      await app.close();
      await Promise.all(runs.activeRuns().map((r) => r.done));
      models.close();
      store.close();
    },
  };
}
