/**
 * Analytics through a gateway: a real coordinator, a gateway process with two pump nodes behind it and one pump
 * node connected directly, on loopback. The gateway answers an analytics request as one node holding its nodes'
 * rows (their sketches merged exactly), so POST /v1/analytics and a federated-standardisation run's statistics
 * pass equal the pooled rows' statistics; the site's nodes train on the committed statistics. A local node whose
 * columns differ fails the gateway's answer, by name.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  api,
  freePort,
  killAll,
  runView,
  startCoordinator,
  startNodeEnrolled,
  startNodesInOrder,
  startSite,
  waitFor,
  waitForLog,
  waitHealthy,
  waitOnline,
  type Proc,
} from './deploy-harness.js';
import {
  machineFile,
  pooledPumpRows,
  PUMP_EXAMPLE as EXAMPLE,
  PUMP_FEATURES as F,
  PUMP_OPTIONS as OPTIONS,
} from './support/pump-machines.js';
import type { AnalyticsResult } from '../src/engine/analytics-round.ts';

const procs: Proc[] = [];
after(() => killAll(procs));

const relative = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b));

test('a gateway forwards analytics to its nodes: POST /v1/analytics and the federated statistics pass see every row', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-gw-analytics-'));
  const files = ['m0', 'm1', 'm2'].map((m) => machineFile(dir, m));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  procs.push(startCoordinator(port, join(dir, 'cloud.db'), undefined, ['--dataset', `pumps=csv:${EXAMPLE}${OPTIONS}`]));
  await waitHealthy(url);
  const gatewayArgs = ['--edge-rounds', '1', '--wait-for-nodes-ms', '3000', '--round-timeout-ms', '60000'];
  const site = await startSite(url, 'gwA', gatewayArgs, [
    { data: `csv:${files[0]}${OPTIONS}`, name: 'a0' },
    { data: `csv:${files[1]}${OPTIONS}`, name: 'a1' },
  ]);
  procs.push(site.gateway, ...site.nodes);
  const direct = await startNodeEnrolled(url, `csv:${files[2]}${OPTIONS}`, 'pump2');
  procs.push(direct);
  await waitOnline(url, 'pump2');

  // The pooled rows every node trains on (the analytics rows: each CSV's training split, before scaling).
  const truth = pooledPumpRows(files);
  const pooled = truth.columns.map((v, j) => ({
    mean: truth.mean[j],
    variance: truth.variance[j],
    sorted: [...v].sort((a, b) => a - b),
  }));
  const rows = truth.count;

  const r = await api<AnalyticsResult>(url, '/v1/analytics', { query: 'stats,labels,quantiles', bins: 32 });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.equal(r.json.nodes.answered.length, 2, `the gateway and the direct node: ${JSON.stringify(r.json.nodes)}`);
  assert.deepEqual(r.json.nodes.failed, []);
  assert.equal(r.json.count, rows, 'the gateway speaks for both its nodes');
  let worst = 0;
  for (let j = 0; j < F; j++) {
    const p = pooled[j];
    assert.ok(relative(r.json.stats!.mean[j], p.mean) <= 1e-12, `mean ${j}`);
    assert.ok(relative(r.json.stats!.variance[j], p.variance) <= 1e-9, `variance ${j}`);
    worst = Math.max(worst, relative(r.json.stats!.mean[j], p.mean), relative(r.json.stats!.variance[j], p.variance));
    assert.equal(r.json.stats!.min?.[j], p.sorted[0]);
    assert.equal(r.json.stats!.max?.[j], p.sorted.at(-1));
    const median = p.sorted[Math.ceil(0.5 * p.sorted.length) - 1];
    const k = r.json.quantiles!.q.indexOf(0.5);
    assert.ok(Math.abs(r.json.quantiles!.values[j][k] - median) <= r.json.quantiles!.maxError[j] * (1 + 1e-9));
  }
  t.diagnostic(`through the gateway vs pooled rows: largest relative difference ${worst.toExponential(2)}`);
  assert.deepEqual(r.json.labels, truth.labels);
  await waitForLog(site.gateway, 'edge analytics answered', { nodes: 2 });

  // A federated-standardisation run through the gateway: its pass covers the site's rows, the site's nodes
  // train on the committed statistics, and the run completes.
  const created = await api<{ id: number }>(url, '/v1/runs', {
    evalDataset: 'pumps',
    standardize: 'federated',
    model: 'mlp',
    rounds: 2,
    minNodes: 2,
    seed: 1,
    roundTimeoutMs: 60000,
  });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const id = created.json.id;
  const done = await waitFor('run completed', async () => {
    const v = await runView(url, id);
    assert.notEqual(v.status, 'failed', JSON.stringify(v));
    return v.status === 'completed' ? v : undefined;
  });
  assert.deepEqual(done.rounds.at(-1)!.contributed, [0, 1]);
  for (const node of [...site.nodes, direct])
    await waitForLog(node, 'configured for run', { runId: id, scaling: 'federated' });
  const meta = (
    await api<{ standardization: { mean: number[]; std: number[] } }>(url, `/v1/runs/${id}/models/latest/edgefed.json`)
  ).json;
  for (let j = 0; j < F; j++) {
    assert.ok(relative(meta.standardization.mean[j], pooled[j].mean) <= 1e-9, `committed mean ${j}`);
    assert.ok(relative(meta.standardization.std[j], Math.sqrt(pooled[j].variance)) <= 1e-9, `committed std ${j}`);
  }
  const events = (await api<{ events: { kind: string; data: { count: number } }[] }>(url, `/v1/runs/${id}/events`)).json
    .events;
  assert.equal(events.find((e) => e.kind === 'standardization')?.data.count, rows);

  // A local node with other columns: the gateway's answer fails, naming it; the direct node still answers.
  const odd = machineFile(dir, 'm3', ['speed_rpm', 'shaft_speed']);
  procs.push(...(await startNodesInOrder(site.url, [{ data: `csv:${odd}${OPTIONS}`, name: 'a3' }])));
  const partial = await api<AnalyticsResult>(url, '/v1/analytics', { query: 'stats' });
  assert.equal(partial.status, 200, JSON.stringify(partial.json));
  assert.equal(partial.json.nodes.answered.length, 1);
  assert.equal(partial.json.nodes.failed.length, 1);
  assert.match(partial.json.nodes.failed[0].message, /^gateway: local node \d+'s columns are .*shaft_speed/);
});
