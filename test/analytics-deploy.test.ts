/**
 * Federated analytics deployed: a real coordinator and two pump nodes on loopback, each with its own CSV;
 * POST /v1/analytics gets merged sketches whose statistics equal those of the pooled rows, and refuses bad
 * queries and callers without changing anything.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { api, killAll, startNodeEnrolled, startTestCoordinator, waitOnline, type Proc } from './deploy-harness.js';
import { loadDatasetSpec } from '../src/data/load.ts';
import type { AnalyticsResult } from '../src/engine/analytics-round.ts';

const procs: Proc[] = [];
after(() => killAll(procs));

test('POST /v1/analytics: connected nodes answer with sketches that merge to the pooled statistics', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-analytics-'));
  const lines = readFileSync('examples/industrial-fault/synthetic-pump-sensors.csv', 'utf8').trim().split('\n');
  const files = ['m0', 'm1'].map((m) => {
    const file = join(dir, `${m}.csv`);
    writeFileSync(file, [lines[0], ...lines.slice(1).filter((l) => l.startsWith(`${m},`))].join('\n') + '\n');
    return file;
  });
  const c = await startTestCoordinator();
  procs.push(c.proc);
  for (const [i, file] of files.entries()) {
    procs.push(await startNodeEnrolled(c.url, `csv:${file}?label=fault&keep=machine_id`, `pump${i}`));
  }
  await Promise.all(['pump0', 'pump1'].map((n) => waitOnline(c.url, n)));

  const r = await api<AnalyticsResult>(c.url, '/v1/analytics', { query: 'stats,labels,quantiles', bins: 32 });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  // Each node summarises its CSV's training split (the rows it trains on), before scaling.
  const pooled = files.map(
    (f) => loadDatasetSpec(`csv:${f}?label=fault&keep=machine_id`, { standardize: false }).train,
  );
  const rows = pooled.reduce((s, d) => s + d.n, 0);
  assert.equal(r.json.count, rows);
  assert.equal(r.json.nodes.answered.length, 2);
  for (let j = 0; j < 6; j++) {
    const v = pooled.flatMap((d) => Array.from({ length: d.n }, (_, k) => d.x[k * 6 + j]));
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const variance = v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length;
    assert.ok(Math.abs(r.json.stats!.mean[j] - mean) <= 1e-12 * Math.abs(mean), `mean ${j}`);
    assert.ok(Math.abs(r.json.stats!.variance[j] - variance) <= 1e-9 * variance, `variance ${j}`);
    const sorted = [...v].sort((a, b) => a - b);
    const median = sorted[Math.ceil(0.5 * v.length) - 1];
    const k = r.json.quantiles!.q.indexOf(0.5);
    assert.ok(Math.abs(r.json.quantiles!.values[j][k] - median) <= r.json.quantiles!.maxError[j] * (1 + 1e-9));
  }
  const labels = [0, 0, 0, 0];
  for (const d of pooled) for (const y of d.y) labels[y]++;
  assert.deepEqual(r.json.labels, labels);

  // DP on counts: CSPRNG noise, epsilon reported.
  const dp = await api<AnalyticsResult>(c.url, '/v1/analytics', { query: 'labels', dpNoise: 1 });
  assert.equal(dp.status, 200, JSON.stringify(dp.json));
  assert.ok(dp.json.dp!.epsilon > 0 && Number.isFinite(dp.json.dp!.epsilon));

  // Bad input: a clear error, and nothing changed (no run was created).
  const runsBefore = await api<{ runs: unknown[] }>(c.url, '/v1/runs');
  const unknown = await api<{ error: { code: string; message: string } }>(c.url, '/v1/analytics', { query: 'median' });
  assert.equal(unknown.status, 400);
  assert.match(unknown.json.error.message, /query: unknown query 'median'/);
  const feature = await api<{ error: { message: string } }>(c.url, '/v1/analytics', { features: [2, 9] });
  assert.equal(feature.status, 422);
  assert.match(feature.json.error.message, /feature index 9 is out of range: this node's data has 6 features/);
  const anonymous = await fetch(`${c.url}/v1/analytics`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"query":"stats"}',
  });
  assert.equal(anonymous.status, 401);
  assert.deepEqual((await api<{ runs: unknown[] }>(c.url, '/v1/runs')).json, runsBefore.json);
});
