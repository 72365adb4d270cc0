// The control plane locked down, against a real in-process coordinator on loopback with a real SQLite
// file: every route declares a policy and is enforced before its body is read, scoped API tokens, the
// audit log, run configs that name data instead of paths, a run that cannot be set up failing alone, bounded
// caches and live-feed slots. Each test names the attack it replays.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import Fastify from 'fastify';
import pino from 'pino';
import { WebSocket } from 'ws';
import { startCoordinator, type Coordinator } from '../src/coordinator/server.js';
import { Store } from '../src/coordinator/store.js';
import { parseRunConfig } from '../src/coordinator/config.js';
import { installRoutePolicy, type RoutePolicy } from '../src/coordinator/route-policy.js';
import { ApiTokens, READ_SCOPES, sameSecret } from '../src/coordinator/api-tokens.js';
import { MAX_ENTRIES, AuditLog } from '../src/coordinator/audit.js';
import { ByteLru } from '../src/coordinator/byte-lru.js';
import { parseDatasetFlag } from '../src/coordinator/datasets.js';
import { MAX_LIVE_CLIENTS, MAX_LIVE_PER_SOURCE, MAX_LIVE_PER_TOKEN } from '../src/coordinator/live.js';
import { newIdentity, randomNonce, toHex } from '../src/core/identity.js';
import { canonicalBody, signRequestHeaders } from '../src/core/request-auth.js';
import { waitFor } from './deploy-harness.js';

const quiet = pino({ level: 'silent' });
const ADMIN = 'control-plane-admin-token-0123456789';
const admin = { authorization: `Bearer ${ADMIN}` };
const VALID_RUN = { model: 'linear', rounds: 1, minNodes: 1, limitTest: 50, waitForNodesMs: 0 };
const node = { name: 'policy-node', ...newIdentity() };

interface Answer {
  status: number;
  json: Record<string, unknown>;
}

async function call(
  c: Coordinator,
  method: string,
  path: string,
  o: { headers?: Record<string, string>; body?: unknown } = {},
): Promise<Answer> {
  const body = o.body === undefined ? undefined : JSON.stringify(o.body);
  const r = await fetch(c.url + path, {
    method,
    headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...o.headers },
    body,
  });
  const text = await r.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON (a page, a shard)
  }
  return { status: r.status, json };
}

const signed = (method: string, path: string, body?: unknown) =>
  signRequestHeaders(
    {
      name: node.name,
      timestamp: Date.now(),
      nonce: randomNonce((n) => new Uint8Array(randomBytes(n))),
      method,
      path,
      body: canonicalBody(body),
    },
    node.secretKey,
  );

async function newToken(
  c: Coordinator,
  scopes: string[],
  expiresInSeconds = 3600,
): Promise<{ token: string; id: number }> {
  const r = await call(c, 'POST', '/v1/admin/tokens', {
    headers: admin,
    body: { name: `t-${scopes.join('-')}`, scopes, expiresInSeconds },
  });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  return { token: r.json.token as string, id: r.json.id as number };
}

/** Everything a refused request must leave as it was. */
function snapshot(c: Coordinator) {
  const db = c.store.database;
  return {
    runs: c.store.listRuns().map(({ updatedAt: _u, ...r }) => r),
    nodes: c.store.listNodes().map((n) => ({ id: n.id, name: n.name })),
    tokens: c.tokens.list().map(({ lastUsedAt: _l, ...t }) => t),
    audit: c.audit.entries(),
    joinTokens: db.prepare('SELECT count(*) FROM join_tokens').pluck().get(),
    events: db.prepare('SELECT count(*) FROM events').pluck().get(),
  };
}

const bodyFor = (url: string) =>
  url === '/v1/predict'
    ? { runId: 1, inputs: [[0, 0, 0, 0]] }
    : url.startsWith('/v1/admin/tokens')
      ? { scopes: ['runs:write'], expiresInSeconds: 60 }
      : VALID_RUN;
const concrete = (url: string) => url.replace(':id', '1').replace(':version', '1').replace('*', 'index.html');

describe('control plane with auth on (the default)', () => {
  let c: Coordinator;
  let read: { token: string; id: number };
  let write: { token: string; id: number };

  before(async () => {
    const db = join(mkdtempSync(join(tmpdir(), 'edgefed-control-')), 'state.db');
    c = await startCoordinator({ port: 0, db, logger: quiet, adminToken: ADMIN, datasets: { digits: 'mnist' } });
    const enrol = await call(c, 'POST', '/v1/enroll', {
      body: { name: node.name, publicKey: toHex(node.publicKey), token: c.createJoinToken() },
    });
    assert.equal(enrol.status, 201);
    assert.equal((await call(c, 'POST', '/v1/runs', { headers: admin, body: VALID_RUN })).status, 201);
    await waitFor('run 1 finished', async () => (c.store.getRun(1)?.status === 'completed' ? true : undefined), 60_000);
    read = await newToken(c, READ_SCOPES);
    write = await newToken(c, ['runs:write']);
  });
  after(async () => c?.close());

  test('every route declares a policy; each non-public one refuses no token, a wrong token, a token without its scope and a node where nodes are not allowed, changing nothing', async (t) => {
    const routes = c.routes;
    assert.ok(routes.length >= 20, `routes registered: ${routes.length}`);
    const undeclared = routes.filter((r) => r.policy === undefined).map((r) => `${r.method} ${r.url}`);
    assert.deepEqual(undeclared, [], 'routes without a policy');
    const before = snapshot(c);
    const checked: string[] = [];
    for (const r of routes) {
      const p = r.policy as RoutePolicy;
      if (p.access === 'public') continue;
      const path = concrete(r.url);
      const body = r.method === 'POST' ? bodyFor(r.url) : undefined;
      const label = `${r.method} ${path}`;
      assert.equal((await call(c, r.method, path, { body })).status, 401, `${label} without a token`);
      assert.equal(
        (await call(c, r.method, path, { body, headers: { authorization: 'Bearer not-the-token-0123456789' } })).status,
        401,
        `${label} with a wrong token`,
      );
      assert.equal(
        (await call(c, r.method, path, { body, headers: { authorization: `Basic ${ADMIN}` } })).status,
        401,
        `${label} with a malformed header`,
      );
      const nodeAllowed = p.access === 'node' || (p.access === 'read' && p.nodes === true);
      if (!nodeAllowed)
        assert.equal(
          (await call(c, r.method, path, { body, headers: signed(r.method, path, body) })).status,
          403,
          `${label} signed by a node`,
        );
      const lacking = p.access === 'operator' ? read.token : write.token; // write has no read scope, read no control
      assert.equal(
        (await call(c, r.method, path, { body, headers: { authorization: `Bearer ${lacking}` } })).status,
        403,
        `${label} with a token lacking ${p.scope ?? 'admin'}`,
      );
      checked.push(label);
    }
    assert.deepEqual(snapshot(c), before, 'nothing changed');
    t.diagnostic(`${checked.length} non-public routes checked: ${checked.join(', ')}`);
  });

  test('a route that declares no policy is closed (403), and is listed as undeclared', async () => {
    const app = Fastify();
    const routes = installRoutePolicy(app, {
      auth: true,
      publicRead: true,
      tokens: c.tokens,
      store: c.store,
      audit: c.audit,
    });
    app.get('/forgotten', async () => ({ secret: 1 }));
    const r = await app.inject({ method: 'GET', url: '/forgotten' });
    assert.equal(r.statusCode, 403);
    assert.deepEqual(
      routes.filter((x) => x.policy === undefined).map((x) => x.url),
      ['/forgotten', '/forgotten'],
    );
    await app.close();
  });

  test('row 1: runs are created, paused, resumed and stopped only with runs:write, and each action is audited with its token', async () => {
    const runs = c.store.listRuns().length;
    for (const headers of [
      {} as Record<string, string>,
      { authorization: 'Bearer wrong-wrong-wrong-wrong' },
      { authorization: `Bearer ${read.token}` },
    ]) {
      assert.ok([401, 403].includes((await call(c, 'POST', '/v1/runs', { headers, body: VALID_RUN })).status));
    }
    assert.equal(c.store.listRuns().length, runs, 'no run created');
    const created = await call(c, 'POST', '/v1/runs', {
      headers: { authorization: `Bearer ${write.token}` },
      body: { ...VALID_RUN, rounds: 50, waitForNodesMs: 60_000 },
    });
    assert.equal(created.status, 201);
    const id = created.json.id as number;
    for (const action of ['pause', 'resume', 'stop']) {
      assert.equal((await call(c, 'POST', `/v1/runs/${id}/${action}`)).status, 401);
      assert.equal(
        (await call(c, 'POST', `/v1/runs/${id}/${action}`, { headers: { authorization: `Bearer ${read.token}` } }))
          .status,
        403,
      );
      assert.equal(
        (await call(c, 'POST', `/v1/runs/${id}/${action}`, { headers: { authorization: `Bearer ${write.token}` } }))
          .status,
        200,
      );
    }
    const audit = await call(c, 'GET', '/v1/audit', { headers: admin });
    const mine = (audit.json.entries as { action: string; actor: string; detail: { runId?: number } }[]).filter(
      (e) => e.detail.runId === id,
    );
    assert.deepEqual(mine.map((e) => e.action).reverse(), ['run.created', 'run.paused', 'run.resumed', 'run.stopped']);
    assert.ok(mine.every((e) => e.actor === `token:${write.id}`));
    assert.equal(
      (await call(c, 'GET', '/v1/audit', { headers: { authorization: `Bearer ${write.token}` } })).status,
      403,
    );
  });

  test('scoped tokens: listed with last use, revoked at once, never stored in the clear', async () => {
    const t = await newToken(c, ['runs:read']);
    assert.equal((await call(c, 'GET', '/v1/runs', { headers: { authorization: `Bearer ${t.token}` } })).status, 200);
    const listed = (await call(c, 'GET', '/v1/admin/tokens', { headers: admin })).json.tokens as {
      id: number;
      lastUsedAt: number | null;
      scopes: string[];
    }[];
    const info = listed.find((x) => x.id === t.id)!;
    assert.deepEqual(info.scopes, ['runs:read']);
    assert.ok(info.lastUsedAt !== null, 'last use recorded');
    assert.equal((await call(c, 'DELETE', `/v1/admin/tokens/${t.id}`, { headers: admin })).status, 200);
    assert.equal(
      (await call(c, 'GET', '/v1/runs', { headers: { authorization: `Bearer ${t.token}` } })).status,
      401,
      'revoked',
    );
    const raw = c.store.database.prepare('SELECT * FROM api_tokens').all();
    assert.ok(!JSON.stringify(raw).includes(t.token.slice(4)), 'the secret is not in the database');
    for (const bad of [
      { scopes: ['runs:delete'], expiresInSeconds: 60 },
      { scopes: ['runs:read'] },
      { scopes: [], expiresInSeconds: 0 },
      { scopes: ['runs:read'], expiresInSeconds: 60, x: 1 },
    ]) {
      const r = await call(c, 'POST', '/v1/admin/tokens', { headers: admin, body: bad });
      assert.equal(r.status, 400, JSON.stringify(bad));
    }
    // Expiry, on a clock the test controls.
    let now = 1_000_000;
    const tokens = new ApiTokens(c.store.database, ADMIN, () => now);
    const { token } = tokens.create({ scopes: ['runs:read'], expiresInSeconds: 10 });
    assert.equal(tokens.identify(token)?.kind, 'token');
    now += 10_000;
    assert.equal(tokens.identify(token), null, 'expired');
  });

  test('row 2: evalDataset names a registered dataset; a path is refused without opening it or quoting it', async () => {
    const w = { authorization: `Bearer ${write.token}` };
    const runs = c.store.listRuns().length;
    const existing = await call(c, 'POST', '/v1/runs', {
      headers: w,
      body: { ...VALID_RUN, evalDataset: 'csv:/etc/passwd?label=root' },
    });
    const missing = await call(c, 'POST', '/v1/runs', {
      headers: w,
      body: { ...VALID_RUN, evalDataset: 'csv:/no/such/file?label=root' },
    });
    assert.equal(existing.status, 400);
    assert.equal(missing.status, 400);
    const message = (a: Answer) => (a.json.error as { message: string }).message;
    assert.doesNotMatch(message(existing), /root:|daemon|bin\/|nologin/, 'no file content');
    assert.equal(
      message(existing).replace('/etc/passwd', 'P'),
      message(missing).replace('/no/such/file', 'P'),
      'an existing and a missing file look alike',
    );
    assert.match(message(existing), /not a registered dataset; registered: mnist, fashion-mnist, digits/);
    assert.equal(c.store.listRuns().length, runs);
    assert.deepEqual(parseDatasetFlag('pumps=csv:data/p.csv?label=fault'), {
      name: 'pumps',
      spec: 'csv:data/p.csv?label=fault',
    });
    for (const bad of ['pumps', '=mnist', 'pumps=', '../x=mnist'])
      assert.throws(() => parseDatasetFlag(bad), /--dataset .*expected NAME=SPEC/);
    const named = await call(c, 'POST', '/v1/runs', { headers: w, body: { ...VALID_RUN, evalDataset: 'digits' } });
    assert.equal(named.status, 201);
    await waitFor(
      'registered-dataset run done',
      async () => (c.store.getRun(named.json.id as number)?.status === 'completed' ? true : undefined),
      60_000,
    );
  });

  test('row 7: test sets are cached per registered dataset; runs with many limitTest values add nothing', async () => {
    const w = { authorization: `Bearer ${write.token}` };
    const cached = c.runs.datasets.cachedBytes; // the test splits of mnist and digits, loaded by earlier runs
    assert.equal(cached, 2 * (10_000 * 784 * 4 + 10_000 * 4));
    const ids: number[] = [];
    for (let i = 0; i < 6; i++)
      ids.push(
        (await call(c, 'POST', '/v1/runs', { headers: w, body: { ...VALID_RUN, limitTest: 37 + i * 101 } })).json
          .id as number,
      );
    await waitFor(
      'runs done',
      async () => (ids.every((id) => c.store.getRun(id)?.status === 'completed') ? true : undefined),
      120_000,
    );
    assert.equal(c.runs.datasets.cachedBytes, cached, 'the limits took views of the cached split, no copies');
  });

  test('row 8: MNIST shards need a read token or a node signature, and the cache is bounded by bytes', async () => {
    const path = '/v1/node-data/mnist-shard?shard=3/200';
    assert.equal((await call(c, 'GET', path)).status, 401);
    assert.equal((await call(c, 'GET', path, { headers: { authorization: `Bearer ${write.token}` } })).status, 403);
    assert.equal((await call(c, 'GET', path, { headers: { authorization: `Bearer ${read.token}` } })).status, 200);
    assert.equal(
      (
        await call(c, 'GET', '/v1/node-data/mnist-shard?shard=4/200', {
          headers: signed('GET', '/v1/node-data/mnist-shard?shard=4/200'),
        })
      ).status,
      200,
    );
    assert.equal(c.shardCache.size, 2);
    assert.ok(c.shardCache.bytes <= c.shardCache.maxBytes);
    // The cache's bound itself: least recently used out first, by bytes; an entry over the budget is not kept.
    const lru = new ByteLru<string>(100);
    lru.set('a', 'a', 40);
    lru.set('b', 'b', 40);
    lru.get('a');
    lru.set('c', 'c', 40);
    assert.deepEqual([lru.get('a'), lru.get('b'), lru.get('c'), lru.bytes], ['a', undefined, 'c', 80]);
    lru.set('huge', 'h', 101);
    assert.deepEqual([lru.get('huge'), lru.bytes], [undefined, 80]);
  });

  test('row 9: a flood of bad enrolments is counted per source, not written as a row each', async () => {
    const db = c.store.database;
    const events = db.prepare('SELECT count(*) FROM events').pluck().get() as number;
    const refusalRows = db.prepare('SELECT count(*) FROM audit_refusals').pluck().get() as number;
    const bad = { name: 'mallory', publicKey: toHex(newIdentity().publicKey), token: 'x'.repeat(32) };
    for (let i = 0; i < 300; i++) assert.equal((await call(c, 'POST', '/v1/enroll', { body: bad })).status, 401);
    assert.equal(db.prepare('SELECT count(*) FROM events').pluck().get(), events, 'no event rows');
    assert.ok(
      (db.prepare('SELECT count(*) FROM audit_refusals').pluck().get() as number) <= refusalRows + 2,
      'one counter per source and window',
    );
    const counted = c.audit
      .refusals()
      .filter((r) => r.action === 'node.refused')
      .reduce((s, r) => s + r.count, 0);
    assert.equal(counted, 300);
    // Accepted actions are rotated too: the newest MAX_ENTRIES rows stay.
    const log = new AuditLog(db);
    const insert = db.prepare(
      "INSERT INTO audit_log (at, action, actor, source, detail) VALUES (0, 'run.created', 'x', 'x', '{}')",
    );
    db.transaction(() => {
      for (let i = 0; i < MAX_ENTRIES + 50; i++) insert.run();
    })();
    log.rotate();
    assert.equal(db.prepare('SELECT count(*) FROM audit_log').pluck().get(), MAX_ENTRIES);
  });

  test('row 13: a large body without a token is refused before it is read', async () => {
    const u = new URL(c.url);
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: u.hostname,
          port: u.port,
          path: '/v1/predict',
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': String(12 * 1024 * 1024) },
        },
        (res) => {
          resolve(res.statusCode ?? 0);
          req.destroy();
        },
      );
      req.on('error', (e) => (e.message.includes('socket hang up') ? undefined : reject(e)));
      req.write(`{"runId":1,"inputs":[[${'0,'.repeat(30_000)}`); // 60 kB of the 12 MB promised; the rest never comes
      setTimeout(
        () => reject(new Error('no answer while the body was incomplete: the server waited for the whole body')),
        10_000,
      ).unref();
    });
    assert.equal(status, 401);
  });

  test('row 16: secrets are compared as hashes in constant time, and no bearer comparison is left in the code', () => {
    assert.equal(sameSecret(ADMIN, ADMIN), true);
    assert.equal(sameSecret(ADMIN, ADMIN.slice(0, -1)), false, 'different lengths do not throw');
    assert.equal(sameSecret('', ADMIN), false);
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const p = join(dir, name);
        if (statSync(p).isDirectory()) walk(p);
        else if (p.endsWith('.ts') && /(?:===|!==)\s*`Bearer|authorization\s*(?:===|!==)/.test(readFileSync(p, 'utf8')))
          offenders.push(p);
      }
    };
    walk('src');
    assert.deepEqual(offenders, []);
  });
});

test('row 3: a stored run whose dataset cannot be set up is marked failed; the coordinator starts and serves the others', async () => {
  const db = join(mkdtempSync(join(tmpdir(), 'edgefed-failrun-')), 'state.db');
  const store = new Store(db);
  const bad = parseRunConfig({ ...VALID_RUN, evalDataset: 'csv:/etc/passwd?label=root' });
  store.createRun(bad, bad.seed);
  const good = parseRunConfig(VALID_RUN);
  store.createRun(good, good.seed);
  store.close();
  const c = await startCoordinator({ port: 0, db, logger: quiet, adminToken: ADMIN });
  try {
    assert.equal((await call(c, 'GET', '/healthz')).status, 200);
    const failed = c.store.getRun(1)!;
    assert.equal(failed.status, 'failed');
    assert.match(failed.error ?? '', /run setup failed: .*not a registered dataset/);
    await waitFor(
      'the other run completes',
      async () => (c.store.getRun(2)?.status === 'completed' ? true : undefined),
      60_000,
    );
    assert.equal((await call(c, 'POST', '/v1/runs', { headers: admin, body: VALID_RUN })).status, 201);
  } finally {
    await c.close();
  }
});

describe('the live feed (row 17)', () => {
  let c: Coordinator;
  const open: WebSocket[] = [];
  const live = (o: { token?: string; localAddress?: string } = {}) => {
    const ws = new WebSocket(
      `${c.url.replace('http', 'ws')}/v1/live`,
      o.token ? ['edgefed-live', `edgefed-token.${o.token}`] : [],
      o.localAddress ? { localAddress: o.localAddress } : {},
    );
    open.push(ws);
    return ws;
  };
  const outcome = (ws: WebSocket) =>
    new Promise<string>((resolve) => {
      ws.once('message', (d) => resolve(`snapshot:${(JSON.parse(String(d)) as { type: string }).type}`));
      ws.once('unexpected-response', (_req, res) => resolve(`http:${res.statusCode}`));
      ws.once('error', (e) => resolve(`error:${e.message}`));
    });

  before(async () => {
    c = await startCoordinator({
      port: 0,
      db: join(mkdtempSync(join(tmpdir(), 'edgefed-live-')), 'state.db'),
      logger: quiet,
      adminToken: ADMIN,
      publicRead: true,
    });
  });
  after(async () => {
    for (const ws of open) ws.terminate();
    await c?.close();
  });

  test("idle anonymous clients cannot take the operator's slot; a token's newest connection always gets in", async () => {
    // MAX_LIVE_CLIENTS anonymous clients from several loopback addresses fill the anonymous pool.
    const sources = MAX_LIVE_CLIENTS / MAX_LIVE_PER_SOURCE;
    const anon = Array.from({ length: MAX_LIVE_CLIENTS }, (_, i) =>
      live({ localAddress: `127.0.0.${2 + (i % sources)}` }),
    );
    assert.ok((await Promise.all(anon.map(outcome))).every((o) => o === 'snapshot:snapshot'));
    assert.equal(await outcome(live({ localAddress: '127.0.0.99' })), 'http:503', 'the anonymous pool is full');
    const { token } = (
      await call(c, 'POST', '/v1/admin/tokens', {
        headers: admin,
        body: { scopes: READ_SCOPES, expiresInSeconds: 600 },
      })
    ).json as { token: string };
    const operator = live({ token });
    assert.equal(await outcome(operator), 'snapshot:snapshot', "the operator's read token gets a slot");
    assert.equal(await outcome(live({ token: ADMIN })), 'snapshot:snapshot', 'so does the admin token');
    // A token's own connections: the newest always gets in, the oldest makes room.
    const replaced = new Promise<number>((r) => operator.once('close', (code) => r(code)));
    for (let i = 0; i < MAX_LIVE_PER_TOKEN; i++) assert.equal(await outcome(live({ token })), 'snapshot:snapshot');
    assert.equal(await replaced, 4008);
    assert.equal(await outcome(live({ token: 'wrong-token-0123456789abcdef' })), 'http:401');
    const narrow = (
      await call(c, 'POST', '/v1/admin/tokens', {
        headers: admin,
        body: { scopes: ['metrics:read'], expiresInSeconds: 600 },
      })
    ).json as { token: string };
    assert.equal(await outcome(live({ token: narrow.token })), 'http:403');
  });

  test('without --public-read the feed needs a read token', async () => {
    const locked = await startCoordinator({
      port: 0,
      db: join(mkdtempSync(join(tmpdir(), 'edgefed-live2-')), 'state.db'),
      logger: quiet,
      adminToken: ADMIN,
    });
    try {
      const ws = new WebSocket(`${locked.url.replace('http', 'ws')}/v1/live`);
      open.push(ws);
      assert.equal(await outcome(ws), 'http:401');
      const withAdmin = new WebSocket(`${locked.url.replace('http', 'ws')}/v1/live`, { headers: admin });
      open.push(withAdmin);
      assert.equal(await outcome(withAdmin), 'snapshot:snapshot');
    } finally {
      await locked.close();
    }
  });
});
