/**
 * Federated analytics under secure aggregation deployed: a real coordinator and four pump node processes on
 * loopback, each with one machine's CSV. POST /v1/analytics with `secagg: true` returns the pooled moments and
 * label counts although the coordinator only unmasks their sum; one node vanishing after sharing its keys
 * leaves the sum of the others exact; min/max and bad queries are refused with nothing stored; and a secagg
 * run with federated standardisation starts on statistics from a secure pass.
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
  startNodesInOrder,
  waitFor,
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

test('POST /v1/analytics with secagg: the sum only, exact despite a dropout; refusals store nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-secagg-analytics-'));
  const files = ['m0', 'm1', 'm2', 'm3'].map((m) => machineFile(dir, m));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  procs.push(startCoordinator(port, join(dir, 'state.db'), undefined, ['--dataset', `pumps=csv:${EXAMPLE}${OPTIONS}`]));
  await waitHealthy(url);
  const nodes = await startNodesInOrder(
    url,
    files.map((file, i) => ({
      data: `csv:${file}${OPTIONS}`,
      name: `pump${i}`,
      extra: i === 3 ? ['--secagg-drop-after-share'] : [],
    })),
  );
  procs.push(...nodes);

  // Node 3 vanishes after sharing its keys: its masks are rebuilt from the others' shares.
  const r = await api<AnalyticsResult>(url, '/v1/analytics', { query: 'moments,labels', secagg: true });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.deepEqual(r.json.nodes.answered, [0, 1, 2]);
  assert.match(r.json.nodes.failed.find((f) => f.nodeId === 3)?.message ?? '', /connection lost|not connected/);
  assert.match(nodes[3].output(), /dropping out after sharing keys/);
  const truth = pooledPumpRows(files.slice(0, 3));
  assert.equal(r.json.count, truth.count);
  assert.deepEqual(r.json.labels, truth.labels);
  assert.equal(r.json.stats!.min, undefined);
  assert.deepEqual(r.json.secure!.clipped, new Array(F).fill(0));
  let worst = 0;
  for (let j = 0; j < F; j++) {
    const bound = r.json.secure!.errorBound!;
    const meanError = Math.abs(r.json.stats!.mean[j] - truth.mean[j]);
    const varianceError = Math.abs(r.json.stats!.variance[j] - truth.variance[j]);
    // The fixed-point bound, plus float64 rounding of sums about the clip's centre 0 (values below 2000).
    assert.ok(meanError <= bound.mean[j] + 1e-12 * 2000, `mean ${j}: ${meanError}`);
    assert.ok(varianceError <= bound.variance[j] + 1e-11 * 2000 ** 2, `variance ${j}: ${varianceError}`);
    worst = Math.max(worst, varianceError / truth.variance[j]);
  }
  t.diagnostic(`secure vs naive pooled variance: largest relative difference ${worst.toExponential(2)}`);

  // Refused before any node is asked, nothing stored.
  const refused = async (body: object, pattern: RegExp) => {
    const bad = await api<{ error: { message: string } }>(url, '/v1/analytics', body);
    assert.equal(bad.status, 400, JSON.stringify(bad.json));
    assert.match(bad.json.error.message, pattern);
  };
  await refused({ query: 'stats', secagg: true }, /stats includes min and max, which are not additive/);
  await refused({ query: 'histogram', secagg: true }, /histograms and quantiles under secagg need declared ranges/);
  await refused({ query: 'moments', secagg: 'yes' }, /secagg: expected true or false/);
  await refused({ query: 'moments', clip: 10 }, /clip: only with secagg/);
  await refused({ query: 'moments', secagg: true, ranges: '0:1,2:1' }, /ranges: expected LO:HI pairs with LO < HI/);
  assert.deepEqual((await api<{ runs: unknown[] }>(url, '/v1/runs')).json.runs, []);

  // A secagg run with federated standardisation: the statistics come from a secure pass over the three nodes.
  nodes[3].child.kill('SIGKILL');
  await waitFor('pump3 offline', async () => {
    const { json } = await api<{ nodes: { name: string; online: boolean }[] }>(url, '/v1/nodes');
    return json.nodes.some((n) => n.name === 'pump3' && !n.online) ? true : undefined;
  });
  await Promise.all(['pump0', 'pump1', 'pump2'].map((n) => waitOnline(url, n)));
  const created = await api<{ id: number }>(url, '/v1/runs', {
    evalDataset: 'pumps',
    standardize: 'federated',
    secagg: {},
    model: 'mlp',
    rounds: 1,
    minNodes: 3,
    seed: 1,
  });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const done = await waitFor('secure standardised run', async () => {
    const v = await runView(url, created.json.id);
    assert.notEqual(v.status, 'failed', JSON.stringify(v));
    return v.status === 'completed' ? v : undefined;
  });
  assert.deepEqual(done.rounds[0].contributed, [0, 1, 2]);
  const meta = (
    await api<{ standardization: { mean: number[]; std: number[] }; standardizedWith: string }>(
      url,
      `/v1/runs/${created.json.id}/models/latest/edgefed.json`,
    )
  ).json;
  assert.equal(meta.standardizedWith, 'federated');
  for (let j = 0; j < F; j++) {
    const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);
    assert.ok(rel(meta.standardization.mean[j], truth.mean[j]) <= 1e-9, `mean ${j}`);
    assert.ok(rel(meta.standardization.std[j], Math.sqrt(truth.variance[j])) <= 1e-9, `std ${j}`);
  }
});
