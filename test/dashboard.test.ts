// The coordinator's operations surface against a real in-process coordinator, real agents on loopback
// sockets and real MNIST: /metrics counters move when rounds commit and when a node is refused, the live
// feed pushes runs, rounds and the node table and refuses what it must, and /dashboard/ serves the built
// page and nothing outside it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import pino from 'pino';
import { WebSocket } from 'ws';
import { startCoordinator, type Coordinator } from '../src/coordinator/server.js';
import { registerDashboard } from '../src/coordinator/routes-dashboard.js';
import { Agent } from '../src/node/agent.js';
import { labelCounts, loadNodeData } from '../src/node/data.js';
import { newIdentity } from '../src/core/identity.js';
import { parseRunConfig } from '../src/coordinator/config.js';
import type { LiveMessage } from '../src/coordinator/live-protocol.js';
import { waitFor } from './deploy-harness.js';
import { buildDashboard } from './support/dashboard.js';
import { PROTOCOL_VERSION } from '../src/net/node-protocol.js';

const quiet = pino({ level: 'silent' });

/** The value of one sample in Prometheus text format (labels as written, e.g. '{code="bad_hello"}'). */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function metrics(c: Coordinator): Promise<string> {
  const r = await fetch(`${c.url}/metrics`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^text\/plain/);
  return r.text();
}

/** A GET with the path sent exactly as written (fetch would normalise '..' away before sending). */
function rawGet(url: string, path: string): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function openLive(c: Coordinator, origin?: string): { ws: WebSocket; messages: LiveMessage[] } {
  const ws = new WebSocket(`${c.url.replace('http', 'ws')}/v1/live`, origin ? { origin } : {});
  const messages: LiveMessage[] = [];
  ws.on('message', (d) => messages.push(JSON.parse(String(d)) as LiveMessage));
  return { ws, messages };
}

describe('coordinator operations: /metrics, live feed, dashboard route', () => {
  let c: Coordinator;
  const agents: Agent[] = [];
  const db = join(mkdtempSync(join(tmpdir(), 'edgefed-dash-')), 'coordinator.db');

  before(async () => {
    buildDashboard(true);
    c = await startCoordinator({ port: 0, db, logger: quiet, heartbeatMs: 1000, publicRead: true });
  });
  after(async () => {
    for (const a of agents) a.stop();
    await c.close();
  });

  test('/metrics counts committed rounds, bytes and nodes; the live feed pushes them as they commit', {
    timeout: 120_000,
  }, async () => {
    const before = await metrics(c);
    // Per-run series exist only once a run does.
    assert.equal(sample(before, 'edgefed_rounds_completed_total'), undefined);
    assert.equal(sample(before, 'edgefed_sent_bytes_total'), undefined);
    assert.equal(sample(before, 'edgefed_nodes_connected'), 0);
    assert.equal(sample(before, 'edgefed_round_duration_seconds_count'), undefined);
    assert.ok(sample(before, 'process_cpu_user_seconds_total') !== undefined, 'process metrics are registered');

    const live = openLive(c);
    await waitFor(
      'live snapshot',
      async () => (live.messages.some((m) => m.type === 'snapshot') ? true : undefined),
      10_000,
    );

    const names = ['dash-a', 'dash-b'];
    const shards = names.map((name, i) => loadNodeData(`mnist-partition:${i}/30`, name));
    for (const [i, name] of names.entries()) {
      const data = shards[i];
      const agent = new Agent({
        coordinator: c.url,
        name,
        data,
        tags: { site: `s${i}` },
        log: quiet,
        secretKey: newIdentity().secretKey,
        joinToken: c.createJoinToken(),
        shareLabels: i === 0,
      });
      agents.push(agent);
      await agent.start();
      await waitFor(`${name} connected`, async () => (agent.connected ? true : undefined), 30_000);
    }
    const config = parseRunConfig({ name: 'metrics', model: 'mlp', rounds: 2, minNodes: 2, limitTest: 300, seed: 3 });
    const id = c.store.createRun(config, config.seed);
    await c.runs.start(id).done;
    assert.equal(c.store.getRun(id)?.status, 'completed');

    const afterRun = await metrics(c);
    const rounds = c.store.roundRecords<{ bytesSent: number; bytesReceived: number; contributed: number[] }>(id);
    assert.equal(rounds.length, 2);
    const run = `{run="${id}"}`;
    assert.equal(sample(afterRun, 'edgefed_rounds_completed_total', run), 2);
    assert.equal(sample(afterRun, 'edgefed_rounds_unfused_total', run), 0);
    assert.equal(sample(afterRun, 'edgefed_round_duration_seconds_count', run), 2);
    assert.equal(
      sample(afterRun, 'edgefed_node_updates_fused_total', run),
      rounds.reduce((a, r) => a + r.contributed.length, 0),
    );
    assert.equal(
      sample(afterRun, 'edgefed_sent_bytes_total', run),
      rounds.reduce((a, r) => a + r.bytesSent, 0),
    );
    assert.equal(
      sample(afterRun, 'edgefed_received_bytes_total', run),
      rounds.reduce((a, r) => a + r.bytesReceived, 0),
    );
    assert.ok(sample(afterRun, 'edgefed_sent_bytes_total', run)! > 0);
    // The latest round's central evaluation, as gauges per run.
    const last = c.store.roundRecords<{ testAccuracy: number; testLoss: number }>(id).at(-1)!;
    assert.equal(sample(afterRun, 'edgefed_run_test_accuracy', run), last.testAccuracy);
    assert.equal(sample(afterRun, 'edgefed_run_test_loss', run), last.testLoss);
    // Every metric the example Grafana dashboard queries is one this coordinator serves.
    const grafana = readFileSync(new URL('../deploy/grafana-dashboard.json', import.meta.url), 'utf8');
    const queried = new Set(
      [...grafana.matchAll(/\b(edgefed_[a-z_]+|process_[a-z_]+)/g)].map((m) => m[1].replace(/_bucket$/, '')),
    );
    assert.ok(queried.size >= 10, `metrics named in the Grafana dashboard: ${[...queried]}`);
    for (const name of queried)
      assert.match(afterRun, new RegExp(`^# TYPE ${name} `, 'm'), `${name} (deploy/grafana-dashboard.json) is served`);
    // README's metrics table lists exactly the edgefed_* metrics the coordinator serves.
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const documented = [...readme.matchAll(/^\| `(edgefed_[a-z_]+)` \|/gm)].map((m) => m[1]).sort();
    const served = [...afterRun.matchAll(/^# TYPE (edgefed_[a-z_]+) /gm)].map((m) => m[1]).sort();
    assert.deepEqual(documented, served, "README's metrics table and GET /metrics");
    assert.equal(sample(afterRun, 'edgefed_nodes_connected'), 2);
    assert.equal(sample(afterRun, 'edgefed_nodes_enrolled'), 2);
    assert.equal(sample(afterRun, 'edgefed_runs', '{status="completed"}'), 1);
    assert.equal(sample(afterRun, 'edgefed_live_clients'), 1);

    // The feed carried the run's creation and status changes, both rounds in order and a node table.
    await waitFor(
      'rounds and nodes on the live feed',
      async () => {
        const pushed = live.messages.filter((m) => m.type === 'round' && m.runId === id).length;
        const table = live.messages.filter((m) => m.type === 'nodes').at(-1);
        return pushed === 2 && table?.type === 'nodes' && table.nodes.every((n) => n.roundsContributed === 2)
          ? true
          : undefined;
      },
      10_000,
    );
    const pushedRounds = live.messages.flatMap((m) => (m.type === 'round' ? [m.record.round] : []));
    assert.deepEqual(pushedRounds, [1, 2]);
    const statuses = live.messages.flatMap((m) => (m.type === 'run' && m.run.id === id ? [m.run.status] : []));
    assert.deepEqual([statuses[0], statuses.at(-1)], ['created', 'completed']);
    const table = live.messages.filter((m) => m.type === 'nodes').at(-1);
    assert.ok(table?.type === 'nodes');
    const [a, b] = names.map((n) => table.nodes.find((x) => x.name === n)!);
    assert.ok(a.online && b.online);
    assert.deepEqual(
      a.resources.labelCounts,
      labelCounts(shards[0].train),
      'the sharing node reports its label histogram',
    );
    assert.equal(b.resources.labelCounts, undefined, 'a node that does not opt in shares no label counts');
    assert.ok(a.bytesSent > 0 && a.bytesReceived > 0);
    live.ws.close();
  });

  test('a refused node message is counted by code and changes no state', async () => {
    const enrolled = c.store.listNodes().length;
    const ws = new WebSocket(`${c.url.replace('http', 'ws')}/v1/ws`);
    await new Promise((r) => ws.once('open', r));
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    ws.send(
      JSON.stringify({
        type: 'hello',
        protocol: PROTOCOL_VERSION,
        name: 'bad name with spaces',
        resources: {},
        tags: {},
      }),
    );
    assert.equal(await closed, 4002);
    const m = await metrics(c);
    assert.equal(sample(m, 'edgefed_rejected_total', '{code="bad_hello"}'), 1);
    assert.equal(c.store.listNodes().length, enrolled);

    const refused = await fetch(`${c.url}/v1/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'x', publicKey: '0'.repeat(64), token: 'not-a-real-token-000' }),
    });
    assert.equal(refused.status, 401);
    assert.equal(sample(await metrics(c), 'edgefed_rejected_total', '{code="enroll_refused"}'), 1);
  });

  test('the live feed refuses cross-origin browsers and is read-only', async () => {
    const foreign = openLive(c, 'http://evil.example');
    const err = await new Promise<Error>((r) => foreign.ws.once('error', r));
    assert.match(err.message, /403/);

    const same = openLive(c, c.url);
    await waitFor('snapshot', async () => (same.messages[0]?.type === 'snapshot' ? true : undefined), 10_000);
    const first = same.messages[0];
    assert.ok(first.type === 'snapshot');
    assert.equal(first.nodes.length, c.store.listNodes().length);
    const runs = c.store.listRuns().length;
    const closed = new Promise<number>((r) => same.ws.once('close', (code) => r(code)));
    same.ws.send(JSON.stringify({ type: 'run', run: { id: 99 } }));
    assert.equal(await closed, 1008);
    assert.equal(c.store.listRuns().length, runs, 'a message to the feed changes nothing');
  });

  test('/dashboard/ serves the built page and its assets, and nothing outside dist', async () => {
    const redirect = await fetch(`${c.url}/dashboard`, { redirect: 'manual' });
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.get('location'), '/dashboard/');
    const page = await fetch(`${c.url}/dashboard/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    const html = await page.text();
    assert.match(html, /id="acc-chart"/);
    const script = /src="(\/dashboard\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    assert.ok(script, 'the page references its bundle under /dashboard/assets/');
    const js = await fetch(c.url + script);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.match(js.headers.get('cache-control') ?? '', /immutable/);

    for (const path of [
      '/dashboard/../package.json',
      '/dashboard/../../package.json',
      '/dashboard/assets/../../../package.json',
      '/dashboard/%2e%2e/%2e%2e/%2e%2e/package.json',
      '/dashboard/..%2f..%2f..%2fpackage.json',
      '/dashboard/..%5c..%5c..%5cpackage.json',
      '/dashboard/%2fetc%2fpasswd',
      '/dashboard//etc/passwd',
      '/dashboard/index.html%00.js',
      '/dashboard/assets',
      '/dashboard/no-such-file.js',
    ]) {
      const r = await rawGet(c.url, path);
      assert.equal(r.status, 404, `${path} answered ${r.status}`);
      assert.doesNotMatch(r.body, /"name": "edgefed"|root:/, `${path} leaked a file`);
    }
    assert.equal((await rawGet(c.url, '/dashboard/%E0%A4%A')).status, 400, 'a malformed escape is a bad request');
  });

  test('without a build, /dashboard/ says how to build it', async () => {
    const app = Fastify();
    registerDashboard(app, join(tmpdir(), 'edgefed-no-such-dist'));
    const r = await app.inject({ method: 'GET', url: '/dashboard/' });
    assert.equal(r.statusCode, 503);
    assert.match(r.body, /npm run build:dashboard/);
    await app.close();
  });
});
