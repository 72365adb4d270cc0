/**
 * Fuzzing with fast-check (fixed seeds, bounded runs): the frame decoders on random and mutated bytes, and
 * a REAL coordinator (server.ts, in this process, on a loopback port) under random and mutated HTTP
 * requests, sent once with the admin token and once with none, and WebSocket messages from an enrolled
 * node. Nothing crashes (/healthz keeps answering), every bad request gets a 4xx (without a token: a
 * 401 or, for paths that name no route, a 404), every bad frame a rejection with a code, and no state changes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import pino from 'pino';
import { WebSocket } from 'ws';
import { startCoordinator, type Coordinator } from '../src/coordinator/server.js';
import { decodeFrame, FrameError } from '../src/core/wire.js';
import { decodeMessage, encodeEvalReply, encodeTrainReply } from '../src/engine/messages.js';
import { decodeSecAggFrame, encodeSecAggFrame } from '../src/engine/secure-messages.js';
import { makeLayout } from '../src/core/params.js';
import { builtinModel, tensorSpecs } from '../src/model/spec.js';
import { helloOnChallenge } from './support/node-socket.js';
import { newIdentity, openSignedFrame, signFrame, toHex } from '../src/core/identity.js';
import { Reassembler } from '../src/core/chunks.js';
import { waitFor } from './deploy-harness.js';

const layout = makeLayout(tensorSpecs(builtinModel('linear', [4], 3)));
const identity = newIdentity();
const binding = { run: 1, round: 1, node: 0, nonce: 'a'.repeat(32) };
const validFrames = [
  encodeTrainReply(layout, {
    round: 1,
    nodeId: 0,
    numExamples: 10,
    steps: 2,
    metrics: { loss: 1, accuracy: 0.5 },
    vector: new Float32Array(15).fill(0.5),
  }),
  encodeEvalReply({ round: 1, nodeId: 0, numExamples: 10, loss: 1, accuracy: 0.5 }),
  encodeSecAggFrame({ type: 'secagg.masked-input', session: 's', from: 1, masked: new Uint32Array([1, 2, 3]) }, 1, 0),
  encodeSecAggFrame({ type: 'secagg.unmask-request', session: 's', survivors: [1, 2] }, 1, 0),
];
const signedFrames = validFrames.map((f) => signFrame(binding, f, identity.secretKey));

/** A valid frame with random byte flips, a cut or an extension. */
const mutated = (frames: Uint8Array[]) =>
  fc
    .tuple(
      fc.constantFrom(...frames),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
      fc.oneof(fc.constant('flip'), fc.constant('cut'), fc.constant('grow')),
    )
    .map(([frame, edits, how]) => {
      let out = frame.slice();
      if (how === 'cut') out = out.subarray(0, edits[0][0] % out.length);
      if (how === 'grow') out = Uint8Array.from([...out, ...edits.map((e) => e[1])]);
      for (const [at, byte] of edits) if (out.length > 0) out[at % out.length] = byte;
      return out;
    });
const anyBytes = (frames: Uint8Array[]) => fc.oneof(fc.uint8Array({ maxLength: 512 }), mutated(frames));

test('frame decoders on random and mutated bytes: a value or a FrameError, nothing else', () => {
  const onlyFrameErrors = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      if (!(e instanceof FrameError)) throw new Error(`not a FrameError: ${(e as Error).stack}`);
    }
  };
  fc.assert(
    fc.property(anyBytes([...validFrames, ...signedFrames]), (bytes) => {
      onlyFrameErrors(() => decodeFrame(bytes));
      onlyFrameErrors(() => decodeMessage(layout, bytes));
      onlyFrameErrors(() => decodeSecAggFrame(bytes));
      onlyFrameErrors(() => openSignedFrame(bytes, identity.publicKey));
      onlyFrameErrors(() => new Reassembler(1 << 20).push(bytes));
    }),
    { seed: 11, numRuns: 1500 },
  );
  // The mutations are not all rejected by construction: some still decode (the property is not vacuous).
  assert.ok(validFrames.every((f) => decodeFrame(f).header.type));
});

interface Snapshot {
  runs: unknown;
  nodes: unknown;
  checkpoint: unknown;
}

const ADMIN_TOKEN = 'fuzz-admin-token-0123456789';
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

async function snapshot(url: string): Promise<Snapshot> {
  const get = async (p: string) =>
    (await fetch(url + p, { headers: admin })).json() as Promise<Record<string, unknown>>;
  const nodes = ((await get('/v1/nodes')).nodes as Record<string, unknown>[]).map((n) => ({
    id: n.id,
    name: n.name,
    tags: n.tags,
    resources: n.resources,
    roundsContributed: n.roundsContributed,
  }));
  const runs = ((await get('/v1/runs')).runs as Record<string, unknown>[]).map(({ updatedAt: _u, ...r }) => r);
  return { runs, nodes, checkpoint: await get('/v1/runs/1/checkpoint') };
}

/** Run config fields whose values must be numbers: any other JSON type is invalid. */
const NUMERIC = [
  'rounds',
  'fraction',
  'minNodes',
  'localEpochs',
  'batchSize',
  'seed',
  'evalFraction',
  'roundTimeoutMs',
  'overSelect',
  'waitForNodesMs',
  'lr',
  'limitTest',
  'targetAccuracy',
];
const notNumber = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 2 }),
);
const VALID_RUN = { model: 'linear', rounds: 1, minNodes: 1, limitTest: 50, waitForNodesMs: 0 };

interface Req {
  method: 'GET' | 'POST';
  path: string;
  body?: string;
  headers?: Record<string, string>;
}
const json = (path: string, body: unknown, headers: Record<string, string> = {}): Req => ({
  method: 'POST',
  path,
  body: JSON.stringify(body),
  headers: { 'content-type': 'application/json', ...headers },
});
/** Path ids that never name run 1 (the only run). */
const badId = fc
  .oneof(fc.string({ maxLength: 12 }), fc.integer({ min: -5, max: 1e9 }).map(String), fc.double().map(String))
  .filter((s) => Number(s) !== 1 && s.trim() !== '1');

const badRequests: fc.Arbitrary<Req> = fc.oneof(
  fc.tuple(fc.constantFrom(...NUMERIC), notNumber).map(([k, v]) => json('/v1/runs', { ...VALID_RUN, [k]: v })),
  fc
    .tuple(fc.string({ maxLength: 10 }), fc.jsonValue())
    .map(([k, v]) => json('/v1/runs', { ...VALID_RUN, [`x_${k}`]: v })),
  fc
    .jsonValue()
    .filter((v) => typeof v !== 'object' || v === null || Array.isArray(v))
    .map((v) => json('/v1/runs', v)),
  fc
    .constantFrom('fedmedian', 'krum:f=1', 'fednova', 'nope', 'fedavg:clip=x')
    .map((s) => json('/v1/runs', { ...VALID_RUN, strategy: s, secagg: {} })),
  fc.oneof(fc.double({ max: 0 }), fc.constant(-1)).map((clip) => json('/v1/runs', { ...VALID_RUN, secagg: { clip } })),
  fc
    .string({ maxLength: 40 })
    .filter((s) => {
      try {
        JSON.parse(s);
        return false;
      } catch {
        return true;
      }
    })
    .map((body): Req => ({ method: 'POST', path: '/v1/runs', body, headers: { 'content-type': 'application/json' } })),
  fc.constant<Req>({
    method: 'POST',
    path: '/v1/runs',
    body: `{"name":"${'x'.repeat(1_200_000)}"}`,
    headers: { 'content-type': 'application/json' },
  }),
  fc
    .string({ maxLength: 30 })
    .map(
      (body): Req => ({ method: 'POST', path: '/v1/runs', body, headers: { 'content-type': 'application/x-fuzz' } }),
    ),
  fc
    .oneof(
      fc.jsonValue(),
      fc.record({ name: fc.string(), publicKey: fc.string(), token: fc.string() }),
      fc.constant({ name: 'n', publicKey: 'ab'.repeat(32), token: 't'.repeat(32) }),
    )
    .map((b) => json('/v1/enroll', b)),
  fc
    .option(fc.string({ maxLength: 40 }), { nil: undefined })
    .map((h) => json('/v1/admin/join-tokens', {}, h === undefined ? {} : { authorization: `Bearer ${h}` })),
  fc
    .tuple(badId, fc.constantFrom('', '/events', '/checkpoint'))
    .map(([id, tail]): Req => ({ method: 'GET', path: `/v1/runs/${encodeURIComponent(id)}${tail}` })),
  fc
    .tuple(fc.oneof(badId, fc.constant('1')), fc.constantFrom('pause', 'resume', 'stop'))
    .map(([id, action]) => json(`/v1/runs/${encodeURIComponent(id)}/${action}`, {})),
  fc
    .tuple(fc.constantFrom<'GET' | 'POST'>('GET', 'POST'), fc.webPath())
    .filter(([, p]) => !['/healthz', '/v1/runs', '/v1/nodes', '/v1/bandwidth-probe'].includes(p.replace(/\/$/, '')))
    .map(([method, p]): Req => ({ method, path: `/v1/zz${p}` })),
);

interface FuzzNode {
  ws: WebSocket;
  nodeId: number;
  /** Resolves with the code of the next error message the coordinator sends (rejects after 5 s). */
  nextError: () => Promise<string>;
}

async function enrolledSocket(c: Coordinator, name: string): Promise<FuzzNode> {
  const enrol = await fetch(`${c.url}/v1/enroll`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, publicKey: toHex(identity.publicKey), token: c.createJoinToken() }),
  });
  assert.equal(enrol.status, 201);
  const ws = new WebSocket(c.url.replace('http', 'ws') + '/v1/ws');
  helloOnChallenge(ws, { name, resources: {}, tags: {} }, identity.secretKey);
  await new Promise((r) => ws.once('open', r));
  let waiting: ((code: string) => void) | null = null;
  let nodeId = -1;
  ws.on('message', (data, binary) => {
    if (binary) return;
    const msg = JSON.parse(String(data)) as { type: string; nodeId?: number; code?: string };
    if (msg.type === 'welcome') nodeId = msg.nodeId!;
    if (msg.type === 'error') waiting?.(String(msg.code));
  });
  await waitFor('welcome', async () => (nodeId >= 0 ? true : undefined), 10_000);
  const nextError = () =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no rejection within 5 s')), 5000);
      waiting = (code) => {
        clearTimeout(timer);
        waiting = null;
        resolve(code);
      };
    });
  return { ws, nodeId, nextError };
}

test('a real coordinator under random and mutated HTTP requests and WebSocket frames: 4xx or a coded rejection, no crash, no state change', async (t) => {
  const c = await startCoordinator({
    port: 0,
    db: join(mkdtempSync(join(tmpdir(), 'edgefed-fuzz-')), 'state.db'),
    logger: pino({ level: 'silent' }),
    adminToken: ADMIN_TOKEN,
    heartbeatMs: 60_000,
  }); // the node stays through both HTTP passes
  try {
    // State to protect: one finished run with a committed checkpoint, and one enrolled node.
    const created = await fetch(`${c.url}/v1/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...admin },
      body: JSON.stringify(VALID_RUN),
    });
    assert.equal(created.status, 201);
    await waitFor(
      'run 1 finished',
      async () =>
        ((await (await fetch(`${c.url}/v1/runs/1`, { headers: admin })).json()) as { status: string }).status ===
          'completed' || undefined,
      60_000,
    );
    const node = await enrolledSocket(c, 'fuzz-node');
    const before = await snapshot(c.url);
    assert.equal((before.checkpoint as { round: number }).round, 1);

    // The same requests as the operator (the admin token, unless the request brings its own header) and with no token.
    const fuzzHttp = async (auth: Record<string, string>) => {
      const statuses = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(badRequests, async (req) => {
          const ownsAuth = req.path === '/v1/admin/join-tokens'; // fuzzes the admin header itself
          const headers = ownsAuth ? req.headers : { ...req.headers, ...auth };
          const r = await fetch(c.url + req.path, {
            method: req.method,
            headers,
            ...(req.body !== undefined ? { body: req.body } : {}),
          });
          await r.arrayBuffer();
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          assert.ok(
            r.status >= 400 && r.status < 500,
            `${req.method} ${req.path} ${req.body?.slice(0, 80) ?? ''} answered ${r.status}`,
          );
          const open = req.path === '/v1/enroll' || req.path.startsWith('/v1/zz');
          if (!auth.authorization && !open) assert.equal(r.status, 401, `${req.method} ${req.path} without a token`);
        }),
        { seed: 5, numRuns: 250 },
      );
      return statuses;
    };
    const statuses = await fuzzHttp(admin);
    assert.ok(
      statuses.has(400) &&
        statuses.has(401) &&
        statuses.has(404) &&
        statuses.has(409) &&
        statuses.has(413) &&
        statuses.has(415),
      `status mix ${[...statuses]}`,
    );
    const anonymous = await fuzzHttp({});
    assert.ok(anonymous.has(401) && anonymous.has(404), `status mix without a token ${[...anonymous]}`);

    // WebSocket: random and mutated binary frames (unsigned and signed) and text messages from the enrolled node.
    const wsMessage = fc.oneof(
      anyBytes([...validFrames, ...signedFrames])
        .filter((b) => b.length > 0 && Buffer.from(b.subarray(0, 4)).toString('latin1') !== 'EFC1')
        .map((b) => ({ binary: true, data: b })),
      fc
        .oneof(
          fc.string({ maxLength: 60 }),
          fc.jsonValue().map((v) => JSON.stringify(v)),
          fc.constant('{"type":"heartbeat","x":1}'),
        )
        .filter((s) => s !== '{"type":"heartbeat"}')
        .map((s) => ({ binary: false, data: s })),
    );
    const codes = new Set<string>();
    await fc.assert(
      fc.asyncProperty(wsMessage, async (m) => {
        const rejection = node.nextError();
        node.ws.send(m.data, { binary: m.binary });
        const code = await rejection;
        assert.match(code, /^[a-z_]+$/);
        codes.add(code);
      }),
      { seed: 6, numRuns: 150 },
    );
    assert.equal(node.ws.readyState, WebSocket.OPEN, 'the node is still connected');
    assert.ok(codes.size >= 3, `rejection codes ${[...codes]}`);
    t.diagnostic(
      `HTTP statuses ${JSON.stringify(Object.fromEntries(statuses))}, without a token ${JSON.stringify(Object.fromEntries(anonymous))}; WebSocket rejection codes ${[...codes].join(', ')}`,
    );

    assert.ok((await fetch(`${c.url}/healthz`)).ok);
    assert.deepEqual(await snapshot(c.url), before, 'runs, nodes and the committed model are unchanged');
    node.ws.close();
  } finally {
    await c.close();
  }
});
