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
import { parseRunConfig } from './config.js';
import type { RoundRecord } from '../engine/round-engine.js';
import { FrameLink } from '../net/frame-link.js';
import { FrameError } from '../core/wire.js';
import { weightsSha256 } from '../model/hash.js';

export const PROTOCOL_VERSION = 1;
export const MAX_FRAME_BYTES = 256 * 1024 * 1024;
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
  }).strict(),
  tags: z.record(z.string().max(64), z.string().max(256)).refine((t) => Object.keys(t).length <= 32, 'at most 32 tags'),
}).strict();

const ControlSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('heartbeat') }).strict(),
]);

export interface CoordinatorOptions {
  port: number;
  host?: string;
  db: string;
  heartbeatMs?: number;
  logger?: Logger;
  onRound?: (runId: number, r: RoundRecord) => void;
}

export interface Coordinator {
  app: FastifyInstance;
  store: Store;
  registry: Registry;
  runs: RunManager;
  url: string;
  close(): Promise<void>;
}

export async function startCoordinator(o: CoordinatorOptions): Promise<Coordinator> {
  const log = o.logger ?? pino({ level: process.env.EDGEFED_LOG ?? 'info' }, pino.destination(2));
  const store = new Store(o.db);
  const registry = new Registry();
  const runs = new RunManager(store, registry, log, o.onRound);
  const heartbeatMs = o.heartbeatMs ?? 5000;
  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });

  const fail = (code: number, error: string, message: string) => ({ statusCode: code, body: { error: { code: error, message } } });
  app.setErrorHandler((err: { statusCode?: number; message: string }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    void reply.code(status).send({ error: { code: status === 500 ? 'internal' : 'bad_request', message: err.message } });
  });

  app.get('/healthz', async () => ({ ok: true, protocol: PROTOCOL_VERSION }));
  // A fixed-size download the node agent times to estimate its bandwidth at enrolment.
  app.get('/v1/bandwidth-probe', async (_req, reply) => reply.type('application/octet-stream').send(Buffer.alloc(1 << 20)));
  app.post('/v1/runs', async (req, reply) => {
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
  app.get('/v1/runs', async () => ({ runs: store.listRuns() }));
  const runId = (req: { params: unknown }) => {
    const id = Number((req.params as { id: string }).id);
    return Number.isInteger(id) && id > 0 ? id : -1;
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
  app.get('/v1/nodes', async () => ({
    nodes: store.listNodes().map((n) => ({ ...n, online: registry.get(n.id) !== undefined })),
  }));

  await app.listen({ port: o.port, host: o.host ?? '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : o.port;

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES });
  app.server.on('upgrade', (req, socket, head) => {
    if (new URL(req.url ?? '/', 'http://x').pathname !== '/v1/ws') {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws));
  });

  function onConnection(ws: WebSocket): void {
    let node: LiveNode | null = null;
    const helloTimer = setTimeout(() => ws.close(4000, 'no hello'), HELLO_TIMEOUT_MS);
    const reject = (code: string, message: string) => {
      log.warn({ nodeId: node?.id, code, message }, 'rejected node message');
      if (node) store.recordEvent(null, 'rejected', { nodeId: node.id, code, message });
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
        clearTimeout(helloTimer);
        const id = store.upsertNode(hello.name, { resources: hello.resources, tags: hello.tags });
        node = { id, name: hello.name, socket: ws, link: new FrameLink(ws, MAX_FRAME_BYTES), resources: hello.resources, tags: hello.tags, lastSeen: Date.now(), configuredRun: null, waiter: null };
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
        if (node.waiter?.accept(frame)) return;
        if (node.configuredRun !== null) runs.late(node.configuredRun, node.id, frame);
        else reject('unexpected_frame', 'no request is waiting for this frame');
        return;
      }
      try {
        ControlSchema.parse(JSON.parse(bytes.toString('utf8')));
        store.touchNode(node.id, node.lastSeen);
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

  // Nodes that stop heartbeating are dropped, failing whatever they were doing.
  const sweeper = setInterval(() => {
    for (const n of registry.all()) if (Date.now() - n.lastSeen > 3 * heartbeatMs) n.socket.terminate();
  }, heartbeatMs);

  runs.resumeAll();
  const url = `http://${o.host ?? '127.0.0.1'}:${port}`;
  log.info({ url }, 'coordinator listening');
  return {
    app, store, registry, runs, url,
    async close() {
      clearInterval(sweeper);
      for (const r of runs.activeRuns()) runs.setControl(r.id, 'stop');
      for (const n of registry.all()) n.socket.terminate();
      wss.close();
      await app.close();
      await Promise.all(runs.activeRuns().map((r) => r.done));
      store.close();
    },
  };
}
