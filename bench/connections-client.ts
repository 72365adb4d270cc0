/**
 * One client process of the connections benchmark (bench/connections.ts): it holds N real WebSocket
 * connections to a coordinator's /v1/ws, each behaving like an edge node (hello, heartbeats at the
 * welcome's interval, request frames answered with a reply frame), while sharing one NodeHost and one
 * trainer per run across all of its connections. Requests are answered one at a time, in arrival order,
 * for the whole process: training is CPU-bound, so concurrency inside one process would buy nothing.
 *
 * It speaks the agent's wire protocol (src/node/agent.ts): frames through a FrameLink (chunked when large),
 * requests bound to { run, round, node, nonce } and, with --auth, an Ed25519 key per connection enrolled with a
 * join token (created with the admin token in EDGEFED_BENCH_ADMIN_TOKEN), a signed hello and signed replies.
 *
 * Run (normally started by bench/connections.ts):
 *   node --import tsx bench/connections-client.ts --url http://127.0.0.1:PORT --proc 0 --conns 250
 *        [--first 0] [--examples 32] [--data mnist|synthetic] [--auth] [--transport ws|mqtt --mqtt mqtt://HOST:PORT --fleet NAME]
 * Connection i of process P is named `c<P>-<i>` and holds `--examples` rows: rows (first + i) * examples
 * onwards of the MNIST training set, or seeded random pixels and labels with --data synthetic.
 *
 * Protocol with the parent, one JSON object per line on stdout:
 *   {"type":"connecting", proc, rssBytes}   data built, connections about to open
 *   {"type":"progress", proc, welcomed, open, disconnects}   every 5 s until every connection has its welcome
 *   {"type":"ready", ...stats}   once every connection has its welcome
 *   {"type":"stats", ...stats}   whenever the parent writes "stats" on stdin
 *   {"type":"final", ...stats}   after the parent writes "stop" on stdin (or on SIGTERM); then exit 0
 *   {"type":"profile", profile}   after "profile-stop": this process's CPU profile since "profile-start", by function
 * Anything unexpected (a closed connection, an error message from the coordinator) goes to stderr and is
 * counted in the stats.
 */
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';
import { makeLayout } from '../src/core/params.js';
import { tensorSpecs, type ModelSpec } from '../src/model/spec.js';
import { makeTrainer } from '../src/model/make-trainer.js';
import type { LocalTrainer } from '../src/model/trainer.js';
import { NodeHost, type LocalData } from '../src/node/host.js';
import { loadMnist } from '../src/data/mnist.js';
import { subset, type Dataset } from '../src/data/types.js';
import { Rng } from '../src/core/rng.js';
import { peekHeader, readableFrame } from '../src/core/wire.js';
import { selectKernels } from '../src/nn/kernels-select.js';
import { FrameLink } from '../src/net/frame-link.js';
import { isBound, newIdentity, signFrame, toHex, unbindFrame, type Binding } from '../src/core/identity.js';
import { nodeCrypto } from '../src/net/node-crypto.js';
import { makeHello, MAX_FRAME_BYTES, MAX_MESSAGE_BYTES } from '../src/net/node-protocol.js';
import { mqttLinkUrl } from '../src/net/mqtt-envelope.js';
import {
  mqttNodeLink,
  wsNodeLink,
  type NodeLink,
  type NodeLinkEvents,
  type Transport,
} from './connections/node-link.js';
import { clientCauseKey, loopLagMonitor, type CauseCounts } from './connections/drop-causes.js';
import { SelfProfiler } from './connections/self-profile.js';

/** Connections of one client process between opening and their welcome at once (see admit). */
const CONNECT_WINDOW = 500;

export interface ClientStats {
  proc: number;
  pid: number;
  connections: number;
  welcomed: number;
  open: number;
  /** Connections that closed while the benchmark was running (each one reconnects). */
  disconnects: number;
  reconnects: number;
  heartbeatsSent: number;
  configures: number;
  trainRequests: number;
  evalRequests: number;
  /** Replies the NodeHost produced as error frames. */
  errorReplies: number;
  /** With --auth: seconds to create join tokens and enrol every connection's key (before connecting). */
  enrolSeconds: number;
  /** With --auth: total time spent signing replies, seconds. */
  signSeconds: number;
  /** {type:'error'} messages the coordinator sent us. */
  coordinatorErrors: number;
  bytesIn: number;
  bytesOut: number;
  /** Total time spent inside NodeHost.handle, seconds. */
  handleSeconds: number;
  /** Longest time a request frame waited in this process's queue before it was handled, ms. */
  maxQueueWaitMs: number;
  /** RSS once the local data is built, before any connection is opened. */
  rssBeforeConnectBytes: number;
  rssBytes: number;
  heapUsedBytes: number;
  externalBytes: number;
  /** The trainer and kernels the last configure built ('engine' / 'native-openblas', ...). */
  trainer: string | null;
  kernels: string | null;
  /** Every close this process saw, by cause (drop-causes.ts). */
  closeCauses: CauseCounts;
  /** The worst lag of this process's own event loop, ms. */
  maxLoopLagMs: number;
}

interface Args {
  url: string;
  proc: number;
  conns: number;
  first: number;
  examples: number;
  data: 'mnist' | 'synthetic';
  /** Enrol an Ed25519 key per connection (admin token from EDGEFED_BENCH_ADMIN_TOKEN), sign hellos and replies. */
  auth: boolean;
  /** ws: a WebSocket to --url's /v1/ws per node; mqtt: an MQTT link per node through --mqtt to fleet --fleet. */
  transport: Transport;
  mqtt: string | null;
  fleet: string | null;
}

function parseCli(argv: string[]): Args {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string' },
      proc: { type: 'string', default: '0' },
      conns: { type: 'string', default: '250' },
      first: { type: 'string', default: '0' },
      examples: { type: 'string', default: '32' },
      data: { type: 'string', default: 'mnist' },
      auth: { type: 'boolean', default: false },
      transport: { type: 'string', default: 'ws' },
      mqtt: { type: 'string' },
      fleet: { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const int = (name: string, s: string, min: number): number => {
    const v = Number(s);
    if (!Number.isInteger(v) || v < min) throw new Error(`--${name}: expected a whole number >= ${min}, got '${s}'`);
    return v;
  };
  if (!values.url) throw new Error('--url is required');
  if (values.data !== 'mnist' && values.data !== 'synthetic')
    throw new Error(`--data: expected mnist or synthetic, got '${values.data}'`);
  if (values.transport !== 'ws' && values.transport !== 'mqtt')
    throw new Error(`--transport: expected ws or mqtt, got '${values.transport}'`);
  if (values.transport === 'mqtt' && (!values.mqtt || !values.fleet))
    throw new Error('--transport mqtt needs --mqtt mqtt://host:port and --fleet NAME');
  return {
    transport: values.transport,
    mqtt: values.mqtt ?? null,
    fleet: values.fleet ?? null,
    url: values.url,
    proc: int('proc', values.proc!, 0),
    conns: int('conns', values.conns!, 1),
    first: int('first', values.first!, 0),
    examples: int('examples', values.examples!, 1),
    data: values.data,
    auth: values.auth!,
  };
}

/** Each connection's local data: `examples` rows, no validation split (evaluation then uses train). */
function makeLocalData(a: Args): LocalData[] {
  const out: LocalData[] = [];
  if (a.data === 'mnist') {
    const all = loadMnist().train;
    if ((a.first + a.conns) * a.examples > all.n)
      throw new Error(`MNIST has ${all.n} training rows, too few for ${a.first + a.conns} x ${a.examples}`);
    for (let i = 0; i < a.conns; i++) {
      const start = (a.first + i) * a.examples;
      const train = subset(
        all,
        Array.from({ length: a.examples }, (_, k) => start + k),
        `mnist:train[${start}..${start + a.examples})`,
      );
      out.push({ train, validation: subset(train, []) });
    }
    return out; // `all` (188 MB of floats) is garbage once this returns
  }
  const f = 28 * 28;
  for (let i = 0; i < a.conns; i++) {
    const rng = new Rng(1).fork(`connections:${a.first + i}`);
    const x = new Float32Array(a.examples * f);
    for (let k = 0; k < x.length; k++) x[k] = rng.next();
    const y = new Int32Array(a.examples);
    for (let k = 0; k < y.length; k++) y[k] = rng.int(10);
    const train: Dataset = {
      source: `synthetic#${a.first + i}`,
      n: a.examples,
      featureShape: [28, 28, 1],
      x,
      y,
      numClasses: 10,
    };
    out.push({ train, validation: subset(train, []) });
  }
  return out;
}

function wsUrl(base: string): string {
  const u = new URL(base);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.pathname = '/v1/ws';
  return u.toString();
}

interface Conn {
  index: number;
  name: string;
  data: LocalData;
  socket: NodeLink | null;
  nodeId: number;
  heartbeat: NodeJS.Timeout | null;
  welcomed: boolean;
  /** With --auth: the connection's Ed25519 secret key, enrolled under its name. */
  secretKey: Uint8Array | null;
  /** Tells the current socket's close handler that this socket got its welcome. */
  onWelcome: () => void;
}

/** Creates a join token with the admin token and enrols `name` with a fresh key, as an operator and an agent would. */
async function enrol(base: string, adminToken: string, name: string): Promise<Uint8Array> {
  const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
    const r = await fetch(new URL(path, base), {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    const json = (await r.json().catch(() => ({}))) as { token?: string; error?: { message?: string } };
    if (r.status !== 201) throw new Error(`POST ${path} for ${name}: ${r.status} ${json.error?.message ?? ''}`);
    return json;
  };
  const { token } = await post(
    '/v1/admin/join-tokens',
    { ttlSeconds: 3600 },
    { authorization: `Bearer ${adminToken}` },
  );
  const { secretKey, publicKey } = newIdentity();
  await post('/v1/enroll', { name, publicKey: toHex(publicKey), token });
  return secretKey;
}

async function main(): Promise<void> {
  const a = parseCli(process.argv.slice(2));
  const url = wsUrl(a.url);
  const datasets = makeLocalData(a);
  const stats: ClientStats = {
    proc: a.proc,
    pid: process.pid,
    connections: a.conns,
    welcomed: 0,
    open: 0,
    disconnects: 0,
    reconnects: 0,
    heartbeatsSent: 0,
    configures: 0,
    trainRequests: 0,
    evalRequests: 0,
    errorReplies: 0,
    enrolSeconds: 0,
    signSeconds: 0,
    coordinatorErrors: 0,
    bytesIn: 0,
    bytesOut: 0,
    handleSeconds: 0,
    maxQueueWaitMs: 0,
    rssBeforeConnectBytes: 0,
    rssBytes: 0,
    heapUsedBytes: 0,
    externalBytes: 0,
    trainer: null,
    kernels: null,
    closeCauses: {},
    maxLoopLagMs: 0,
  };
  const lag = loopLagMonitor();
  const snapshot = (type: 'ready' | 'stats' | 'final'): string => {
    const m = process.memoryUsage();
    Object.assign(stats, { rssBytes: m.rss, heapUsedBytes: m.heapUsed, externalBytes: m.external });
    stats.maxLoopLagMs = Math.max(stats.maxLoopLagMs, lag.maxSince(60_000));
    return `${JSON.stringify({ type, ...stats })}\n`;
  };

  /** Every connection's data by the node id the coordinator gave it: what the shared NodeHost serves. */
  const byNodeId = new Map<number, LocalData>();
  let current: { runId: number; host: NodeHost; trainer: LocalTrainer } | null = null;
  let queue: Promise<void> = Promise.resolve();
  let stopping = false;
  let readySent = false;

  const configure = (spec: ModelSpec, runId: number): void => {
    stats.configures++;
    queue = queue
      .then(async () => {
        if (current?.runId === runId) return;
        current?.trainer.dispose();
        const trainer = await makeTrainer(spec);
        current = { runId, trainer, host: new NodeHost(makeLayout(tensorSpecs(spec)), trainer, byNodeId) };
        stats.trainer = trainer.kind;
        stats.kernels = trainer.kind === 'engine' ? (await selectKernels()).name : null;
        process.stderr.write(
          `client ${a.proc}: configured for run ${runId} (model ${spec.name}, trainer ${trainer.kind})\n`,
        );
      })
      .catch((e: Error) => {
        process.stderr.write(`client ${a.proc}: configure failed: ${e.message}\n`);
      });
  };

  const serve = (c: Conn, ws: NodeLink, link: FrameLink, received: Uint8Array): void => {
    const queued = performance.now();
    queue = queue
      .then(async () => {
        stats.maxQueueWaitMs = Math.max(stats.maxQueueWaitMs, performance.now() - queued);
        if (!current) {
          process.stderr.write(`client ${a.proc}: request frame before any configure; dropped\n`);
          return;
        }
        // Requests come bound to { run, round, node, nonce }; with auth the reply is signed together with that binding.
        let binding: Binding | null = null;
        let frame = received;
        if (isBound(received)) ({ binding, frame } = unbindFrame(received));
        const type = String(peekHeader(frame).type);
        if (type === 'train') stats.trainRequests++;
        else if (type === 'evaluate') stats.evalRequests++;
        const started = performance.now();
        const reply = await current.host.handle(readableFrame(frame, false)); // as the agent does (agent-core.ts)
        stats.handleSeconds += (performance.now() - started) / 1000;
        if (peekHeader(reply).type === 'error') {
          stats.errorReplies++;
          process.stderr.write(
            `client ${a.proc}: NodeHost error reply: ${JSON.stringify(peekHeader(reply)).slice(0, 300)}\n`,
          );
        }
        let out = reply;
        if (binding && c.secretKey) {
          const t = performance.now();
          out = signFrame(binding, reply, c.secretKey, nodeCrypto);
          stats.signSeconds += (performance.now() - t) / 1000;
        }
        if (ws.isOpen) {
          stats.bytesOut += out.length;
          link.send(out);
        }
      })
      .catch((e: Error) => {
        process.stderr.write(`client ${a.proc}: serving a frame failed: ${e.message}\n`);
      });
  };

  const open = (c: Conn, on: NodeLinkEvents): NodeLink =>
    a.transport === 'mqtt'
      ? mqttNodeLink(mqttLinkUrl(a.mqtt!, a.fleet!, c.name), MAX_MESSAGE_BYTES, on)
      : wsNodeLink(url, MAX_MESSAGE_BYTES, on);

  // At most CONNECT_WINDOW of this process's connections between opening and their welcome (or close) at once, as
  // a fleet coming online over some seconds: all 2,500 opened in the same instant by each of 4 processes overflowed
  // the coordinator's accept queue (somaxconn, 4096 here) and the kernel reset connections before any hello.
  let handshaking = 0;
  const queued: Conn[] = [];
  const admit = (): void => {
    while (handshaking < CONNECT_WINDOW && queued.length > 0) {
      handshaking++;
      connect(queued.shift()!);
    }
  };
  const enqueue = (c: Conn): void => {
    queued.push(c);
    admit();
  };

  const connect = (c: Conn): void => {
    let link: FrameLink | null = null;
    let lastError: string | null = null;
    let welcomedHere = false;
    let handshakeOver = false;
    const endHandshake = () => {
      if (handshakeOver) return;
      handshakeOver = true;
      handshaking--;
      admit();
    };
    c.onWelcome = () => {
      welcomedHere = true;
      endHandshake();
    };
    const ws = open(c, {
      open: () => {
        stats.open++;
      },
      binary: (bytes) => {
        stats.bytesIn += bytes.length;
        let frame: Uint8Array | null;
        try {
          frame = link!.receive(bytes);
        } catch (e) {
          process.stderr.write(`client ${a.proc}: ${c.name}: dropped a malformed chunk: ${(e as Error).message}\n`);
          return;
        }
        if (frame) serve(c, ws, link!, frame);
      },
      text: (text, size) => {
        stats.bytesIn += size;
        onText(c, ws, text);
      },
      close: (why) => {
        stats.open--;
        endHandshake();
        if (c.heartbeat) {
          clearInterval(c.heartbeat);
          clearTimeout(c.heartbeat);
        }
        c.heartbeat = null;
        if (stopping) return;
        stats.disconnects++;
        // Lagging more than a heartbeat interval means this process itself held back its heartbeats.
        const stalled = lag.maxSince(15_000) > 5000;
        stats.maxLoopLagMs = Math.max(stats.maxLoopLagMs, lag.maxSince(15_000));
        const key = clientCauseKey(why, lastError);
        const o = (stats.closeCauses[key] ??= { count: 0, before_welcome: 0, client_stalled: 0 });
        o.count++;
        if (!welcomedHere) o.before_welcome++;
        if (stalled) o.client_stalled++;
        process.stderr.write(`client ${a.proc}: ${c.name} (node ${c.nodeId}) closed: ${why}; reconnecting in 1 s\n`);
        setTimeout(() => {
          stats.reconnects++;
          enqueue(c);
        }, 1000);
      },
      error: (message) => {
        lastError = message;
        process.stderr.write(`client ${a.proc}: ${c.name}: ${message}\n`);
      },
    });
    link = new FrameLink(ws, MAX_FRAME_BYTES);
    c.socket = ws;
  };

  const onText = (c: Conn, ws: NodeLink, text: string): void => {
    let msg: {
      type?: string;
      nodeId?: number;
      heartbeatMs?: number;
      runId?: number;
      spec?: ModelSpec;
      code?: string;
      message?: string;
      challenge?: string;
    };
    try {
      msg = JSON.parse(text);
    } catch {
      process.stderr.write(`client ${a.proc}: ${c.name}: unreadable text message\n`);
      return;
    }
    if (msg.type === 'challenge' && typeof msg.challenge === 'string') {
      ws.sendText(
        JSON.stringify(
          makeHello(
            msg.challenge,
            { name: c.name, resources: { cores: 1, samplesPerSecond: 1000 }, tags: {} },
            c.secretKey ?? undefined,
            nodeCrypto,
          ),
        ),
      );
    } else if (msg.type === 'welcome' && Number.isInteger(msg.nodeId)) {
      c.nodeId = msg.nodeId!;
      c.onWelcome();
      byNodeId.set(c.nodeId, c.data);
      if (!c.welcomed) {
        c.welcomed = true;
        stats.welcomed++;
      }
      const every = msg.heartbeatMs ?? 5000;
      if (c.heartbeat) {
        clearInterval(c.heartbeat);
        clearTimeout(c.heartbeat);
      }
      // Spread the connections' heartbeats over the interval instead of sending them in bursts.
      const first = setTimeout(
        () => {
          const beat = () => {
            if (ws.isOpen) {
              ws.sendText('{"type":"heartbeat"}');
              stats.heartbeatsSent++;
            }
          };
          beat();
          c.heartbeat = setInterval(beat, every);
        },
        Math.floor(Math.random() * every),
      );
      c.heartbeat = first;
      if (!readySent && stats.welcomed === a.conns) {
        readySent = true;
        process.stdout.write(snapshot('ready'));
      }
    } else if (msg.type === 'configure' && Number.isInteger(msg.runId) && msg.spec) {
      configure(msg.spec, msg.runId!);
    } else if (msg.type === 'error') {
      stats.coordinatorErrors++;
      process.stderr.write(`client ${a.proc}: ${c.name}: coordinator error ${msg.code}: ${msg.message}\n`);
    }
  };

  const conns: Conn[] = datasets.map((data, i) => ({
    index: i,
    name: `c${a.proc}-${i}`,
    data,
    socket: null,
    nodeId: -1,
    heartbeat: null,
    welcomed: false,
    secretKey: null,
    onWelcome: () => undefined,
  }));
  if (a.auth) {
    const adminToken = process.env.EDGEFED_BENCH_ADMIN_TOKEN;
    if (!adminToken) throw new Error("--auth needs the coordinator's admin token in EDGEFED_BENCH_ADMIN_TOKEN");
    const started = performance.now();
    let next = 0;
    // A few enrolments at a time, as a fleet being provisioned would arrive.
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < conns.length) {
          const c = conns[next++];
          c.secretKey = await enrol(a.url, adminToken, c.name);
        }
      }),
    );
    stats.enrolSeconds = (performance.now() - started) / 1000;
  }
  global.gc?.();
  stats.rssBeforeConnectBytes = process.memoryUsage().rss;
  process.stdout.write(
    `${JSON.stringify({ type: 'connecting', proc: a.proc, rssBytes: stats.rssBeforeConnectBytes })}\n`,
  );
  for (const c of conns) enqueue(c);

  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    for (const c of conns) {
      if (c.heartbeat) {
        clearInterval(c.heartbeat);
        clearTimeout(c.heartbeat);
      }
    }
    // Report before closing, so the figures describe the process while it held every connection.
    process.stdout.write(snapshot('final'), () => {
      for (const c of conns) c.socket?.terminate();
      current?.trainer.dispose();
      process.exit(0);
    });
  };
  const profiler = new SelfProfiler(a.proc);
  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line.trim() === 'stop') stop();
    else if (line.trim() === 'stats') process.stdout.write(snapshot('stats'));
    else if (line.trim() === 'profile-start') profiler.start();
    else if (line.trim() === 'profile-stop')
      void profiler.stop().then((p) => process.stdout.write(`${JSON.stringify({ type: 'profile', profile: p })}\n`));
  });
  process.on('SIGTERM', stop);
  // Until every connection is welcomed, say how far it got (the parent prints it while it waits).
  const progress = setInterval(() => {
    if (readySent || stopping) return clearInterval(progress);
    process.stdout.write(
      `${JSON.stringify({ type: 'progress', proc: a.proc, welcomed: stats.welcomed, open: stats.open, disconnects: stats.disconnects })}\n`,
    );
  }, 5000);
}

main().catch((e: Error) => {
  process.stderr.write(`connections-client: ${e.stack ?? e.message}\n`);
  process.exit(1);
});
