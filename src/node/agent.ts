/**
 * The edge-node agent: enrols with the coordinator over a WebSocket, reports its resources, heartbeats,
 * trains and evaluates on its own data (the same NodeHost as simulation) and reconnects with backoff.
 */
import { WebSocket } from 'ws';
import { availableParallelism, totalmem } from 'node:os';
import type { Logger } from 'pino';
import { makeLayout } from '../core/params.js';
import { tensorSpecs, type ModelSpec } from '../model/spec.js';
import { makeTrainer } from '../model/make-trainer.js';
import { NodeHost, type LocalData } from './host.js';
import type { NodeResources } from '../coordinator/registry.js';
import { FrameLink } from '../net/frame-link.js';
import { isBound, publicKeyOf, randomNonce, signFrame, signHello, toHex, unbindFrame, type Binding } from '../core/identity.js';
import { randomBytes } from 'node:crypto';
import { labelCounts } from './data.js';

/** What answers a run's request frames: a NodeHost on the node's own data, or a custom handler (a gateway). */
export interface RequestHandler {
  kind: string;
  handle(frame: Uint8Array): Promise<Uint8Array>;
  dispose(): void;
}

export interface AgentOptions {
  coordinator: string;
  name: string;
  /** The node's own data; a node with a custom `handler` (a gateway) has none. */
  data?: LocalData;
  /** In place of a NodeHost on `data`: builds what answers a run's requests. */
  handler?: (runId: number, spec: ModelSpec) => Promise<RequestHandler>;
  tags: Record<string, string>;
  powerClass?: string;
  log: Logger;
  /** Seconds between reconnect attempts: starts at min, doubles to max. */
  backoff?: { minMs: number; maxMs: number };
  /** Extra delay before answering a train request (to emulate a slow device in tests). */
  delayMs?: number;
  /** The node's Ed25519 secret key; with joinToken, the agent enrols it before connecting. */
  secretKey?: Uint8Array;
  joinToken?: string;
  /** Tell the coordinator how many training examples of each class this node holds (its label histogram). */
  shareLabels?: boolean;
  /** Called with each request frame and its reply (serving's metrics count rounds and bytes). */
  onFrame?: (request: Uint8Array, reply: Uint8Array) => void;
}

function wsUrl(base: string): string {
  const u = new URL(base);
  u.protocol = u.protocol === 'https:' || u.protocol === 'wss:' ? 'wss:' : 'ws:';
  u.pathname = '/v1/ws';
  return u.toString();
}

/** Training speed measured on this node's own data with a small dense model, in samples per second. */
async function measureSpeed(data: LocalData): Promise<number> {
  const spec: ModelSpec = {
    name: 'probe', inputShape: data.train.featureShape, loss: 'sparse_categorical_crossentropy',
    layers: [{ type: 'flatten', name: 'f' }, { type: 'dense', name: 'd1', units: 128, activation: 'relu' }, { type: 'dense', name: 'out', units: Math.max(2, data.train.numClasses), activation: 'softmax' }],
    optimizer: { name: 'sgd', lr: 0.01 },
  };
  if (data.train.numClasses === 0) return 0;
  const t = await makeTrainer(spec);
  try {
    const n = Math.min(512, data.train.n);
    const probe = { ...data.train, n, x: data.train.x.subarray(0, n * (data.train.x.length / data.train.n)), y: data.train.y.subarray(0, n) };
    const w = new Float32Array(tensorSpecs(spec).reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0));
    const started = performance.now();
    await t.train(w, probe, { epochs: 1, batchSize: 32, optimizer: spec.optimizer, proxMu: 0, seed: 0 });
    return Math.round(n / ((performance.now() - started) / 1000));
  } finally {
    t.dispose();
  }
}

async function measureBandwidth(base: string): Promise<number | undefined> {
  try {
    const started = performance.now();
    const r = await fetch(new URL('/v1/bandwidth-probe', base));
    const bytes = (await r.arrayBuffer()).byteLength;
    return Math.round(((bytes * 8) / 1e6 / ((performance.now() - started) / 1000)) * 10) / 10;
  } catch {
    return undefined;
  }
}

export class Agent {
  private socket: WebSocket | null = null;
  private stopped = false;
  private attempt = 0;
  private nodeId = -1;
  private heartbeat: NodeJS.Timeout | null = null;
  private host: (RequestHandler & { runId: number }) | null = null;
  private queue: Promise<void> = Promise.resolve();
  private resources: NodeResources = {};
  connected = false;

  constructor(private readonly o: AgentOptions) {}

  async start(): Promise<void> {
    const base = this.o.coordinator.replace(/^ws/, 'http');
    const data = this.o.data;
    this.resources = {
      cores: availableParallelism(), memoryMb: Math.round(totalmem() / 2 ** 20), samplesPerSecond: data ? await measureSpeed(data) : undefined,
      bandwidthMbps: await measureBandwidth(base), powerClass: this.o.powerClass ?? 'mains', examples: data?.train.n, platform: `node-${process.version}`,
      ...(this.o.shareLabels && data ? { labelCounts: labelCounts(data.train) } : {}),
    };
    this.o.log.info({ resources: this.resources }, 'resources measured');
    if (this.o.joinToken) await this.enroll(base);
    this.connect();
  }

  /** Binds this node's name to its public key with a one-time join token. */
  private async enroll(base: string): Promise<void> {
    if (!this.o.secretKey) throw new Error('enrolment needs a key');
    const r = await fetch(new URL('/v1/enroll', base), {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: this.o.name, publicKey: toHex(publicKeyOf(this.o.secretKey)), token: this.o.joinToken }),
    });
    if (r.status !== 201) {
      const body = (await r.json().catch(() => ({}))) as { error?: { message?: string } };
      throw new Error(`enrolment refused (${r.status}): ${body.error?.message ?? 'no reason given'}`);
    }
    this.o.log.info({ name: this.o.name }, 'enrolled identity');
  }

  private connect(): void {
    if (this.stopped) return;
    const ws = new WebSocket(wsUrl(this.o.coordinator), { maxPayload: 256 * 1024 * 1024 });
    const link = new FrameLink(ws, 256 * 1024 * 1024);
    this.socket = ws;
    ws.on('open', () => {
      const hello: Record<string, unknown> = { type: 'hello', protocol: 1, name: this.o.name, resources: this.resources, tags: this.o.tags };
      if (this.o.secretKey) {
        const timestamp = Date.now();
        const nonce = randomNonce((n) => new Uint8Array(randomBytes(n)));
        hello.auth = { timestamp, nonce, signature: signHello(this.o.name, timestamp, nonce, this.o.secretKey) };
      }
      ws.send(JSON.stringify(hello));
    });
    ws.on('message', (data, isBinary) => {
      const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      if (isBinary) {
        let frame: Uint8Array | null;
        try {
          frame = link.receive(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength).slice());
        } catch (e) {
          this.o.log.warn({ err: (e as Error).message }, 'dropped a malformed chunk');
          return;
        }
        if (!frame) return;
        const whole = frame;
        // One request at a time, in order: a node is one device.
        this.queue = this.queue.then(() => this.serve(ws, link, whole)).catch((e: Error) => this.o.log.warn({ err: e.message }, 'could not serve a request'));
        return;
      }
      this.control(ws, bytes.toString('utf8'));
    });
    ws.on('close', () => this.disconnected());
    ws.on('error', (e) => this.o.log.warn({ err: e.message }, 'connection error'));
  }

  private control(ws: WebSocket, text: string): void {
    let msg: { type?: string; nodeId?: number; heartbeatMs?: number; runId?: number; spec?: ModelSpec; code?: string; message?: string };
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (msg.type === 'welcome' && Number.isInteger(msg.nodeId)) {
      this.nodeId = msg.nodeId!;
      this.attempt = 0;
      this.connected = true;
      this.o.log.info({ nodeId: this.nodeId }, 'enrolled');
      if (this.heartbeat) clearInterval(this.heartbeat);
      this.heartbeat = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send('{"type":"heartbeat"}'), msg.heartbeatMs ?? 5000);
    } else if (msg.type === 'configure' && Number.isInteger(msg.runId) && msg.spec) {
      const spec = msg.spec;
      const runId = msg.runId!;
      this.queue = this.queue.then(async () => {
        if (this.host?.runId === runId) return;
        this.host?.dispose();
        this.host = { runId, ...(await (this.o.handler ?? this.nodeHost)(runId, spec)) };
        this.o.log.info({ runId, model: spec.name, trainer: this.host.kind }, 'configured for run');
      });
    } else if (msg.type === 'error') {
      this.o.log.warn({ code: msg.code, message: msg.message }, 'coordinator rejected a message');
    }
  }

  private readonly nodeHost = async (_runId: number, spec: ModelSpec): Promise<RequestHandler> => {
    if (!this.o.data) throw new Error('a node without data needs a request handler');
    const trainer = await makeTrainer(spec);
    const host = new NodeHost(makeLayout(tensorSpecs(spec)), trainer, new Map([[this.nodeId, this.o.data]]));
    return { kind: trainer.kind, handle: (frame) => host.handle(frame), dispose: () => trainer.dispose() };
  };

  private async serve(ws: WebSocket, link: FrameLink, received: Uint8Array): Promise<void> {
    if (!this.host) return;
    let binding: Binding | null = null;
    let frame = received;
    if (isBound(received)) ({ binding, frame } = unbindFrame(received));
    if (this.o.delayMs) await new Promise((r) => setTimeout(r, this.o.delayMs));
    const reply = await this.host.handle(frame);
    this.o.onFrame?.(frame, reply);
    // The reply is signed together with the request's binding: valid for that request only.
    const out = binding && this.o.secretKey ? signFrame(binding, reply, this.o.secretKey) : reply;
    if (ws.readyState === WebSocket.OPEN) link.send(out);
  }

  private disconnected(): void {
    this.connected = false;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    if (this.stopped) return;
    const { minMs, maxMs } = this.o.backoff ?? { minMs: 500, maxMs: 10_000 };
    const delay = Math.min(maxMs, minMs * 2 ** this.attempt++);
    this.o.log.info({ delayMs: delay }, 'disconnected; reconnecting');
    setTimeout(() => this.connect(), delay);
  }

  stop(): void {
    this.stopped = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.socket?.close();
    this.host?.dispose();
  }
}
