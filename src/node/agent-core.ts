/**
 * The edge-node agent: enrols with the coordinator over a WebSocket, reports its resources, heartbeats,
 * trains and evaluates on its own data (the same NodeHost as simulation) and reconnects with backoff.
 * BROWSER-SAFE: everything that differs between Node.js and a browser tab comes in an AgentPlatform
 * (platform.ts); agent.ts is the Node.js agent, web/node/ the browser one.
 */
import { makeLayout } from '../core/params.js';
import { tensorSpecs, type ModelSpec } from '../model/spec.js';
import { analyticsRows, NodeHost, type LocalData } from './host.js';
import { answerAnalyticsFrame, secureAnalyticsSessions } from './analytics-answer.js';
import { ANALYTICS_REQUEST } from '../engine/analytics-messages.js';
import { labelCounts } from './local-data.js';
import type { NodeResources } from './resources.js';
import { FrameLink } from '../net/frame-link.js';
import { peekHeader, readableFrame } from '../core/wire.js';
import { isBound, publicKeyOf, signFrame, toHex, unbindFrame, type Binding } from '../core/identity.js';
import {
  HEARTBEAT,
  MAX_FRAME_BYTES,
  MAX_MESSAGE_BYTES,
  makeHello,
  PROTOCOL_VERSION,
  type CoordinatorMessage,
  type FeatureStandardization,
} from '../net/node-protocol.js';
import { encodeError } from '../engine/messages.js';
import { isMqttUrl, mqttLinkUrl } from '../net/mqtt-envelope.js';
import type { AgentPlatform, AgentSocket } from './platform.js';
import { LocalPrivacy } from './local-privacy.js';
import type { LocalDpSpec } from '../core/local-dp.js';
import type { SecureNodeOptions } from './secure-session.js';
import { keySetPeerTrust, tofuPeerTrust, type PeerTrust } from '../core/secagg/signing.js';
import type { TensorSlot } from '../core/params.js';
import type { NodeStateStore } from './local-state.js';
import { reconnectDelay, type Backoff } from './reconnect-delay.js';

/** The part of a logger the agent uses (pino's Logger has it; the browser page logs to its own panel). */
export interface AgentLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  /** Repeated detail (each retry of an outage); a log without it drops them. */
  debug?(fields: object, message: string): void;
}

function isAnalyticsRequest(frame: Uint8Array): boolean {
  try {
    return peekHeader(frame).type === ANALYTICS_REQUEST;
  } catch {
    return false; // a malformed frame goes to the run's host, which answers it with an error frame
  }
}

/** A node's data scaled with a run's statistics; throws when the node's data is not CSV rows with its columns. */
function scaledForRun(data: LocalData, runId: number, stats: FeatureStandardization): LocalData {
  if (!data.scaledWith)
    throw new Error(
      `run ${runId} scales CSV feature columns with the federation's statistics, and this node's data is not ` +
        'CSV rows (--data csv:FILE)',
    );
  return data.scaledWith(stats);
}

/** Answers every request of a run the node could not be configured for with the reason, as an error frame. */
function refusingHandler(message: string): RequestHandler {
  return {
    kind: 'unconfigured',
    handle: async (frame) => {
      let header: Record<string, unknown> = {};
      try {
        header = peekHeader(frame);
      } catch {
        // answered below without a round
      }
      const whole = (v: unknown) => (Number.isInteger(v) ? (v as number) : -1);
      return encodeError(whole(header.round), whole(header.node), message);
    },
    dispose() {},
  };
}

/** What answers a run's request frames: a NodeHost on the node's own data, or a custom handler (a gateway). */
export interface RequestHandler {
  kind: string;
  handle(frame: Uint8Array): Promise<Uint8Array>;
  dispose(): void;
}

export interface AgentOptions {
  /** http(s)://... (WebSocket link) or mqtt(s)://broker:port (with `fleet`). */
  coordinator: string;
  name: string;
  /** With an MQTT coordinator: the fleet (topic prefix) its coordinator serves. */
  fleet?: string;
  /** The coordinator's HTTP API, for enrolment and downloads when `coordinator` is a broker. */
  api?: string;
  /** The node's own data; a node with a custom `handler` (a gateway) has none. */
  data?: LocalData;
  /** In place of a NodeHost on `data`: builds what answers a run's requests (told the run's statistics, if any). */
  handler?: (runId: number, spec: ModelSpec, standardization?: FeatureStandardization) => Promise<RequestHandler>;
  /** In place of answering analytics from `data`: what answers them (a gateway asks its own nodes). */
  analytics?: (frame: Uint8Array) => Promise<Uint8Array>;
  tags: Record<string, string>;
  powerClass?: string;
  log: AgentLog;
  /** Milliseconds between reconnect attempts: the ceiling starts at min and doubles to max (reconnect-delay.ts). */
  backoff?: Backoff;
  /** Extra delay before answering a train request (to emulate a slow device in tests). */
  delayMs?: number;
  /** The node's Ed25519 secret key; with joinToken, the agent enrols it before connecting. */
  secretKey?: Uint8Array;
  joinToken?: string;
  /** Fault injection for tests: in every secure-aggregation round, disconnect right after sharing keys. */
  secaggDropAfterShare?: boolean;
  /** Local DP: clip and noise every update here (CSPRNG noise), whatever the coordinator asks. */
  localDp?: LocalDpSpec;
  /** Told the node's local-DP epsilon after each update (the serving port's metrics export it). */
  onLocalEpsilon?: (epsilon: number) => void;
  /**
   * Secure aggregation: the identity keys of the peers this node will aggregate with (from the fleet operator,
   * not the coordinator). Absent: trust on first use, per peer id, for the life of the agent process.
   */
  secaggPeerKeys?: readonly Uint8Array[];
  /** Where the node's per-run state (SCAFFOLD, FedDyn, personal models) outlives the process (node/state-file.ts). */
  nodeState?: { storeFor(runId: number, layout: readonly TensorSlot[]): NodeStateStore };
  /** Tell the coordinator how many training examples of each class this node holds (its label histogram). */
  shareLabels?: boolean;
  /** Called with each request frame and its reply (serving's metrics count rounds and bytes). */
  onFrame?: (request: Uint8Array, reply: Uint8Array) => void;
  /** Told of each step (for a UI); AgentCore.stats holds the running totals. */
  onEvent?: (e: AgentEvent) => void;
}

export type AgentEvent =
  | { type: 'measured'; resources: NodeResources }
  | { type: 'enrolled' }
  | { type: 'connected'; nodeId: number }
  | { type: 'configured'; runId: number; model: string; trainer: string }
  | { type: 'trained'; runId: number; round: number; numExamples: number; loss: number; accuracy: number }
  | { type: 'evaluated'; runId: number; round: number; numExamples: number; loss: number; accuracy: number }
  | { type: 'failed'; runId: number; round: number; message: string }
  | { type: 'rejected'; code: string; message: string }
  | { type: 'disconnected'; retryMs: number }
  /** A refusal retrying cannot fix (not enrolled, wrong key, incompatible protocol): the agent has stopped. */
  | { type: 'fatal'; code: string; message: string };

export interface AgentStats {
  /** Train requests answered with an update. */
  updatesSent: number;
  evaluations: number;
  lastTrain: { round: number; loss: number; accuracy: number } | null;
  lastEval: { round: number; loss: number; accuracy: number } | null;
  /** WebSocket payload bytes received and sent (binary chunks and control messages). */
  bytesIn: number;
  bytesOut: number;
}

/** Where the agent's link goes: the coordinator's WebSocket, or its fleet's topics at a broker. */
function linkUrl(link: { coordinator: string; fleet?: string; name: string }): string {
  return isMqttUrl(link.coordinator) ? mqttLinkUrl(link.coordinator, link.fleet, link.name) : wsUrl(link.coordinator);
}

function wsUrl(base: string): string {
  const u = new URL(base);
  u.protocol = u.protocol === 'https:' || u.protocol === 'wss:' ? 'wss:' : 'ws:';
  u.pathname = '/v1/ws';
  return u.toString();
}

/** Training speed measured on this node's own data with a small dense model, in samples per second. */
/** The platform's HTTP client, else the global fetch (a browser's). */
const httpOf = (platform: AgentPlatform) => platform.fetch ?? fetch;

async function measureSpeed(data: LocalData, platform: AgentPlatform): Promise<number> {
  const spec: ModelSpec = {
    name: 'probe',
    inputShape: data.train.featureShape,
    loss: 'sparse_categorical_crossentropy',
    layers: [
      { type: 'flatten', name: 'f' },
      { type: 'dense', name: 'd1', units: 128, activation: 'relu' },
      { type: 'dense', name: 'out', units: Math.max(2, data.train.numClasses), activation: 'softmax' },
    ],
    optimizer: { name: 'sgd', lr: 0.01 },
  };
  if (data.train.numClasses === 0) return 0;
  const t = await platform.makeTrainer(spec);
  try {
    const n = Math.min(512, data.train.n);
    const probe = {
      ...data.train,
      n,
      x: data.train.x.subarray(0, n * (data.train.x.length / data.train.n)),
      y: data.train.y.subarray(0, n),
    };
    const w = new Float32Array(tensorSpecs(spec).reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0));
    const started = performance.now();
    await t.train(w, probe, { epochs: 1, batchSize: 32, optimizer: spec.optimizer, proxMu: 0, seed: 0 });
    return Math.round(n / ((performance.now() - started) / 1000));
  } finally {
    t.dispose();
  }
}

async function measureBandwidth(base: string, platform: AgentPlatform): Promise<number | undefined> {
  try {
    const started = performance.now();
    const r = await httpOf(platform)(new URL('/v1/bandwidth-probe', base));
    const bytes = (await r.arrayBuffer()).byteLength;
    return Math.round(((bytes * 8) / 1e6 / ((performance.now() - started) / 1000)) * 10) / 10;
  } catch {
    return undefined;
  }
}

/** A train or evaluation reply's outcome, read from its header (the update itself is not decoded again). */
function replyOutcome(reply: Uint8Array): {
  type: string;
  round: number;
  numExamples: number;
  loss: number;
  accuracy: number;
  message: string;
} {
  const h = peekHeader(reply) as Record<string, unknown> & { type: string };
  const m = (h.type === 'train_result' ? h.metrics : h) as { loss?: unknown; accuracy?: unknown };
  const num = (v: unknown) => (typeof v === 'number' ? v : NaN);
  return {
    type: h.type,
    round: num(h.round),
    numExamples: num(h.numExamples),
    loss: num(m?.loss),
    accuracy: num(m?.accuracy),
    message: String(h.message ?? ''),
  };
}

export class AgentCore {
  private socket: AgentSocket | null = null;
  private stopped = false;
  private attempt = 0;
  private nodeId = -1;
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  private host: (RequestHandler & { runId: number }) | null = null;
  private queue: Promise<void> = Promise.resolve();
  private resources: NodeResources = {};
  connected = false;
  readonly stats: AgentStats = {
    updatesSent: 0,
    evaluations: 0,
    lastTrain: null,
    lastEval: null,
    bytesIn: 0,
    bytesOut: 0,
  };

  /** One ledger for the node's whole life: local DP composes across runs. */
  private readonly privacy: LocalPrivacy | undefined;

  constructor(
    private readonly options: AgentOptions,
    private readonly platform: AgentPlatform,
  ) {
    this.privacy = options.localDp
      ? new LocalPrivacy(options.localDp, 'csprng', (_id, epsilon) => {
          options.log.info({ epsilon, delta: options.localDp!.delta }, 'local DP: epsilon spent so far');
          options.onLocalEpsilon?.(epsilon);
        })
      : undefined;
  }

  private emit(e: AgentEvent): void {
    this.options.onEvent?.(e);
  }

  async start(): Promise<void> {
    const base = this.options.api ?? this.options.coordinator.replace(/^ws/, 'http');
    const data = this.options.data;
    this.resources = {
      ...this.platform.device(),
      samplesPerSecond: data ? await measureSpeed(data, this.platform) : undefined,
      bandwidthMbps: await measureBandwidth(base, this.platform),
      powerClass: this.options.powerClass ?? 'mains',
      examples: data?.train.n,
      ...(this.options.shareLabels && data ? { labelCounts: labelCounts(data.train) } : {}),
    };
    this.options.log.info({ resources: this.resources }, 'resources measured');
    this.emit({ type: 'measured', resources: this.resources });
    if (this.options.joinToken) await this.enroll(base);
    this.connect();
  }

  /** Binds this node's name to its public key with a one-time join token. */
  private async enroll(base: string): Promise<void> {
    if (!this.options.secretKey) throw new Error('enrolment needs a key');
    const r = await httpOf(this.platform)(new URL('/v1/enroll', base), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        name: this.options.name,
        publicKey: toHex(publicKeyOf(this.options.secretKey)),
        token: this.options.joinToken,
      }),
    });
    if (r.status !== 201) {
      const body = (await r.json().catch(() => ({}))) as { error?: { message?: string } };
      throw new Error(`enrolment refused (${r.status}): ${body.error?.message ?? 'no reason given'}`);
    }
    this.options.log.info({ name: this.options.name }, 'enrolled identity');
    this.emit({ type: 'enrolled' });
  }

  private connect(): void {
    if (this.stopped) return;
    let link: FrameLink | null = null;
    // One message is at most one chunk (frames above it are chunked): a node buffers no more than that at once.
    const ws = this.platform.connect(linkUrl(this.options), MAX_MESSAGE_BYTES, {
      // The hello waits for the coordinator's challenge, which it signs (node-protocol.ts).
      open: () => undefined,
      message: (data) => {
        if (typeof data === 'string') {
          this.stats.bytesIn += data.length;
          this.control(ws, data);
          return;
        }
        this.stats.bytesIn += data.byteLength;
        let frame: Uint8Array | null;
        try {
          frame = link!.receive(data);
        } catch (e) {
          this.options.log.warn({ err: (e as Error).message }, 'dropped a malformed chunk');
          return;
        }
        if (!frame) return;
        const whole = frame;
        // One request at a time, in order: a node is one device.
        this.queue = this.queue
          .then(() => this.serve(ws, link!, whole))
          .catch((e: Error) => this.options.log.warn({ err: e.message }, 'could not serve a request'));
      },
      close: () => this.disconnected(),
      // The first failure of an outage at warn; the same error on every retry after it only at debug.
      error: (message) =>
        this.attempt === 0
          ? this.options.log.warn({ err: message }, 'connection error')
          : this.options.log.debug?.({ err: message }, 'connection error'),
    });
    // Counts what goes out; the link sends chunks through it.
    const counted: AgentSocket = {
      get isOpen() {
        return ws.isOpen;
      },
      send: (data, options, cb) => {
        this.stats.bytesOut += data.byteLength;
        ws.send(data, options, cb);
      },
      sendText: (text) => this.sendText(ws, text),
      close: () => ws.close(),
    };
    link = new FrameLink(counted, MAX_FRAME_BYTES);
    this.socket = ws;
  }

  private sendText(ws: AgentSocket, text: string): void {
    this.stats.bytesOut += text.length;
    ws.sendText(text);
  }

  private control(ws: AgentSocket, text: string): void {
    let msg: Partial<Record<string, unknown>> & Partial<CoordinatorMessage>;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (msg.type === 'challenge' && typeof msg.challenge === 'string') {
      const declared = { name: this.options.name, resources: this.resources, tags: this.options.tags };
      this.sendText(
        ws,
        JSON.stringify(makeHello(msg.challenge, declared, this.options.secretKey, this.platform.crypto)),
      );
    } else if (msg.type === 'welcome' && Number.isInteger(msg.nodeId)) {
      this.nodeId = msg.nodeId!;
      this.attempt = 0;
      this.connected = true;
      this.options.log.info({ nodeId: this.nodeId }, 'enrolled');
      this.emit({ type: 'connected', nodeId: this.nodeId });
      if (this.heartbeat) clearInterval(this.heartbeat);
      this.heartbeat = setInterval(() => ws.isOpen && this.sendText(ws, HEARTBEAT), msg.heartbeatMs ?? 5000);
    } else if (msg.type === 'configure' && Number.isInteger(msg.runId) && msg.spec) {
      const spec = msg.spec;
      const runId = msg.runId!;
      const standardization = msg.standardization;
      this.queue = this.queue
        .then(async () => {
          if (this.host?.runId === runId) return;
          this.host?.dispose();
          this.host = null;
          try {
            this.host = {
              runId,
              ...(await (this.options.handler
                ? this.options.handler(runId, spec, standardization)
                : this.nodeHost(runId, spec, standardization))),
            };
          } catch (e) {
            // The run's requests get the reason as their answer, rather than waiting out their deadline.
            this.host = { runId, ...refusingHandler(`node ${this.options.name}: ${(e as Error).message}`) };
            throw e;
          }
          // Which statistics scale this run's features: the federation's (sent with the run) or the node's own.
          const scaling = standardization ? 'federated' : this.options.data?.scaledWith ? 'node' : 'none';
          this.options.log.info({ runId, model: spec.name, trainer: this.host.kind, scaling }, 'configured for run');
          this.emit({ type: 'configured', runId, model: spec.name, trainer: this.host.kind });
        })
        .catch((e: Error) => this.options.log.warn({ runId, err: e.message }, 'could not configure for run'));
    } else if (msg.type === 'error') {
      // Refused before welcome: the same hello would be refused again, so retrying forever helps nobody.
      if (!this.connected && (msg.code === 'unauthenticated' || msg.code === 'bad_hello'))
        return this.fatal(String(msg.code), String(msg.message));
      this.options.log.warn({ code: msg.code, message: msg.message }, 'coordinator rejected a message');
      this.emit({ type: 'rejected', code: String(msg.code), message: String(msg.message) });
    }
  }

  /** Stops for good with what to do about it. */
  private fatal(code: string, reason: string): void {
    const advice =
      code === 'unauthenticated'
        ? this.options.joinToken
          ? "the coordinator does not accept this node's key although it enrolled: is --key the key it enrolled with?"
          : 'this node is not enrolled there (or holds another key): start it once with --join-token-file FILE (a token from POST /v1/admin/join-tokens) or the --key it enrolled with'
        : `the coordinator refused this node's hello (${reason}); this node speaks protocol ${PROTOCOL_VERSION}: upgrade the older side`;
    this.stop();
    this.emit({
      type: 'fatal',
      code,
      message: `node ${this.options.name} refused by ${this.options.coordinator}: ${advice}`,
    });
  }

  /** How this node trusts its peers' identity keys in secure aggregation, across runs. */
  private peerTrustValue: PeerTrust | null = null;
  private get peerTrust(): PeerTrust {
    this.peerTrustValue ??= this.options.secaggPeerKeys
      ? keySetPeerTrust(this.options.secaggPeerKeys)
      : tofuPeerTrust();
    return this.peerTrustValue;
  }

  /** Secure analytics sessions, apart from any run's (their rounds are numbered apart from training rounds). */
  private readonly analyticsSecure = secureAnalyticsSessions(() => this.secureOptions());

  /** The node signs its key advertisements with its enrolled key; without one it cannot take part. */
  private secureOptions(): SecureNodeOptions {
    const secretKey = this.options.secretKey;
    return { ...this.secureFaults(), identity: () => (secretKey ? { secretKey, trust: this.peerTrust } : undefined) };
  }

  /** With --secagg-drop-after-share: vanish (close the connection, then reconnect) once keys are shared. */
  private secureFaults() {
    if (!this.options.secaggDropAfterShare) return {};
    return {
      dropAfterShareKeys: () => true,
      onDrop: (round: number) => {
        this.options.log.warn({ round }, 'secure aggregation: dropping out after sharing keys (fault injection)');
        this.socket?.close();
      },
    };
  }

  private readonly nodeHost = async (
    runId: number,
    spec: ModelSpec,
    standardization?: FeatureStandardization,
  ): Promise<RequestHandler> => {
    if (!this.options.data) throw new Error('a node without data needs a request handler');
    const data = standardization ? scaledForRun(this.options.data, runId, standardization) : this.options.data;
    const trainer = await this.platform.makeTrainer(spec);
    const layout = makeLayout(tensorSpecs(spec));
    const host = new NodeHost(
      layout,
      trainer,
      new Map([[this.nodeId, data]]),
      undefined,
      this.secureOptions(),
      this.privacy,
      this.options.nodeState?.storeFor(runId, layout),
    );
    return { kind: trainer.kind, handle: (frame) => host.handle(frame), dispose: () => trainer.dispose() };
  };

  private async serve(ws: AgentSocket, link: FrameLink, received: Uint8Array): Promise<void> {
    let binding: Binding | null = null;
    let frame = received;
    if (isBound(received)) ({ binding, frame } = unbindFrame(received));
    // Analytics needs no model: a node answers it between runs too, over its own rows. A node without rows says
    // so at once rather than leaving the pass to wait out its deadline; a gateway asks its own nodes (and refuses
    // a secure pass, whose fields it does not forward).
    if (isAnalyticsRequest(frame) || this.analyticsSecure.holds(frame)) {
      const reply = this.options.analytics
        ? await this.options.analytics(frame)
        : answerAnalyticsFrame(frame, () => analyticsRows(this.options.data), this.analyticsSecure.node);
      const out =
        binding && this.options.secretKey
          ? signFrame(binding, reply, this.options.secretKey, this.platform.crypto)
          : reply;
      if (ws.isOpen) link.send(out);
      return;
    }
    if (!this.host) return;
    if (this.options.delayMs) {
      // Logged so tests can wait for the request to be in hand instead of sleeping.
      const { type, round } = peekHeader(frame);
      this.options.log.info(
        { type, round, delayMs: this.options.delayMs },
        'holding the answer (emulated slow device)',
      );
      await new Promise((r) => setTimeout(r, this.options.delayMs));
    }
    const { runId } = this.host;
    // One aligned copy, read in place: the weights decode as one view, not a copy per tensor and another to join them.
    const reply = await this.host.handle(readableFrame(frame, false));
    this.options.onFrame?.(frame, reply);
    // The reply is signed together with the request's binding: valid for that request only.
    const out =
      binding && this.options.secretKey
        ? signFrame(binding, reply, this.options.secretKey, this.platform.crypto)
        : reply;
    if (!ws.isOpen) return;
    link.send(out);
    this.account(runId, reply);
  }

  private account(runId: number, reply: Uint8Array): void {
    const r = replyOutcome(reply);
    const outcome = { round: r.round, loss: r.loss, accuracy: r.accuracy };
    if (r.type === 'train_result') {
      this.stats.updatesSent++;
      this.stats.lastTrain = outcome;
      this.emit({ type: 'trained', runId, numExamples: r.numExamples, ...outcome });
    } else if (r.type === 'eval_result') {
      this.stats.evaluations++;
      this.stats.lastEval = outcome;
      this.emit({ type: 'evaluated', runId, numExamples: r.numExamples, ...outcome });
    } else if (r.type === 'error') {
      this.emit({ type: 'failed', runId, round: r.round, message: r.message });
    }
    // secagg.* phase replies are steps of one secure round, neither results nor failures
  }

  private disconnected(): void {
    this.connected = false;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    if (this.stopped) return;
    const delay = reconnectDelay(this.attempt++, this.options.backoff ?? { minMs: 500, maxMs: 10_000 });
    // Said once per outage (warn); each retry after it only at debug, so a long outage does not fill the log.
    if (this.attempt === 1)
      this.options.log.warn({ delayMs: delay }, 'lost the coordinator; retrying with backoff until it is back');
    else this.options.log.debug?.({ delayMs: delay }, 'still no coordinator; retrying');
    this.emit({ type: 'disconnected', retryMs: delay });
    setTimeout(() => this.connect(), delay);
  }

  stop(): void {
    this.stopped = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.socket?.close();
    this.host?.dispose();
  }
}
