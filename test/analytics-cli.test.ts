import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from './helpers.js';
import { loadDatasetSpec } from '../src/data/load.ts';
import { featureSize } from '../src/data/types.ts';
import type { AnalyticsResult } from '../src/engine/analytics-round.ts';

const CSV = 'csv:examples/industrial-fault/synthetic-pump-sensors.csv?label=fault&keep=machine_id';
const pumps = ['--dataset', CSV, '--nodes', '8', '--partition', 'natural:machine_id'];

/** The pooled training rows, column by column, as a central statistician would see them. */
function pooledColumns(): number[][] {
  const train = loadDatasetSpec(CSV, { standardize: false }).train;
  const f = featureSize(train);
  return Array.from({ length: f }, (_, j) => Array.from({ length: train.n }, (_, r) => train.x[r * f + j]));
}

test('edgefed analytics on the pump CSV by machine equals statistics of the pooled rows', async () => {
  const r = await runCli(['analytics', ...pumps, '--query', 'stats,quantiles,labels', '--bins', '32', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as AnalyticsResult;
  const columns = pooledColumns();
  assert.deepEqual(out.nodes.answered, [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(out.count, columns[0].length);
  assert.deepEqual(out.columns?.slice(0, 2), ['bearing_temp_c', 'vibration_rms_mm_s']);
  columns.forEach((v, j) => {
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const variance = v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length;
    // Chan's merge of 8 float64 partitions vs one float64 pass: both within ~1e-13 of the truth.
    assert.ok(Math.abs(out.stats!.mean[j] - mean) <= 1e-12 * Math.abs(mean), `mean ${j}`);
    assert.ok(Math.abs(out.stats!.variance[j] - variance) <= 1e-9 * variance, `variance ${j}`);
    assert.equal(out.stats!.min![j], Math.min(...v));
    assert.equal(out.stats!.max![j], Math.max(...v));
    const sorted = [...v].sort((a, b) => a - b);
    out.quantiles!.q.forEach((q, i) => {
      const truth = sorted[Math.max(1, Math.ceil(q * v.length)) - 1];
      const err = Math.abs(out.quantiles!.values[j][i] - truth);
      assert.ok(err <= out.quantiles!.maxError[j] * (1 + 1e-9), `feature ${j} q ${q}: error ${err}`);
    });
  });
  const train = loadDatasetSpec(CSV, { standardize: false }).train;
  const labels = [0, 0, 0, 0];
  for (const y of train.y) labels[y]++;
  assert.deepEqual(out.labels, labels);
});

test('edgefed analytics on MNIST: label counts over dirichlet shards equal the pooled counts; DP noise is reported', async () => {
  const r = await runCli(['analytics', '--nodes', '5', '--partition', 'dirichlet:0.5', '--query', 'labels', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const exact = JSON.parse(r.stdout) as AnalyticsResult;
  const train = loadDatasetSpec('mnist').train;
  const naive = new Array(10).fill(0);
  for (const y of train.y) naive[y]++;
  assert.deepEqual(exact.labels, naive);
  assert.equal(exact.count, 60000);

  const dpArgs = [
    'analytics',
    '--nodes',
    '5',
    '--partition',
    'dirichlet:0.5',
    '--query',
    'labels',
    '--dp',
    '2',
    '--json',
  ];
  const [a, b] = await Promise.all([runCli(dpArgs), runCli(dpArgs)]);
  assert.equal(a.code, 0, a.stderr);
  const noisy = JSON.parse(a.stdout) as AnalyticsResult;
  assert.deepEqual(noisy, JSON.parse(b.stdout), 'seeded noise repeats');
  assert.ok(noisy.dp!.epsilon > 0 && Number.isFinite(noisy.dp!.epsilon));
  assert.equal(noisy.dp!.sigma.labels, 2);
  assert.notDeepEqual(noisy.labels, naive);
  noisy.labels!.forEach((c, i) => assert.ok(Math.abs(c - naive[i]) <= 2 * 8, `label ${i}: noise beyond 8 sigma`));
});

test('edgefed analytics --secagg on the pump CSV: pooled moments within the stated bound, clipped values counted', async () => {
  const r = await runCli(['analytics', ...pumps, '--query', 'moments', '--secagg', '--clip', '1000', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as AnalyticsResult;
  assert.deepEqual(out.secure!.nodes, [0, 1, 2, 3, 4, 5, 6, 7]);
  pooledColumns().forEach((raw, j) => {
    // The declared range [-1000, 1000] clips speed_rpm (about 1500): the moments are those of the clipped values.
    const v = raw.map((x) => Math.min(1000, Math.max(-1000, x)));
    assert.equal(out.secure!.clipped![j], raw.filter((x) => Math.abs(x) > 1000).length, `clipped ${j}`);
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const variance = v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length;
    const bound = out.secure!.errorBound!;
    assert.ok(Math.abs(out.stats!.mean[j] - mean) <= bound.mean[j] + 1e-12 * 1000, `mean ${j}`);
    assert.ok(Math.abs(out.stats!.variance[j] - variance) <= bound.variance[j] + 1e-11 * 1000 ** 2, `variance ${j}`);
  });
  assert.ok(out.secure!.clipped![5] > 0);
});

test('edgefed analytics refuses an unknown query, a bad feature index and stats under DP, saying which', async () => {
  const unknown = await runCli(['analytics', ...pumps, '--query', 'stats,median']);
  assert.equal(unknown.code, 2);
  assert.match(
    unknown.stderr,
    /--query: unknown query 'median' \(accepted: stats, moments, histogram, quantiles, labels\)/,
  );
  const feature = await runCli(['analytics', ...pumps, '--features', '1,9']);
  assert.equal(feature.code, 2);
  assert.match(feature.stderr, /no node answered .*feature index 9 is out of range: this node's data has 6 features/);
  const dp = await runCli(['analytics', ...pumps, '--query', 'stats,quantiles', '--dp', '1']);
  assert.equal(dp.code, 2);
  assert.match(dp.stderr, /stats \(mean, variance, min, max\) are refused with DP noise.*--ranges: DP histograms/);
  const secagg = await runCli(['analytics', ...pumps, '--query', 'stats,histogram', '--secagg']);
  assert.equal(secagg.code, 2);
  assert.match(secagg.stderr, /--query: stats includes min and max, which are not additive.*--ranges: histograms/);
  assert.equal(unknown.stdout + feature.stdout + dp.stdout + secagg.stdout, '');
});
