import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './helpers.js';
import { loadDatasetSpec } from '../src/data/load.ts';

const CSV = 'csv:examples/industrial-fault/synthetic-pump-sensors.csv?label=fault&keep=machine_id';
const run = ['simulate', '--dataset', CSV, '--model', 'mlp', '--nodes', '8', '--partition', 'natural:machine_id'];

test('--standardize federated: the saved model carries the federation statistics and predict applies them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-std-'));
  try {
    const out = join(dir, 'run');
    const r = await runCli([...run, '--rounds', '4', '--standardize', 'federated', '--quiet', '--json', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const meta = JSON.parse(readFileSync(join(out, 'model', 'edgefed.json'), 'utf8'));
    assert.equal(meta.standardizedWith, 'federated');
    // The statistics equal those of the pooled training rows (computed centrally here) within 1e-9 relative.
    const central = loadDatasetSpec(CSV).standardization!;
    meta.standardization.mean.forEach((m: number, j: number) => {
      assert.ok(Math.abs(m - central.mean[j]) <= 1e-9 * Math.abs(central.mean[j]), `mean ${j}`);
      assert.ok(Math.abs(meta.standardization.std[j] - central.std[j]) <= 1e-9 * central.std[j], `std ${j}`);
    });
    const input = 'csv:examples/industrial-fault/synthetic-pump-sensors.csv?label=fault';
    const scaled = await runCli(['predict', '--model', join(out, 'model'), '--input', input, '--json']);
    assert.equal(scaled.code, 0, scaled.stderr);
    const withStats = JSON.parse(scaled.stdout).accuracy as number;
    assert.ok(withStats > 0.9, `raw readings scaled with the carried statistics: accuracy ${withStats}`);
    // The same model without the statistics sees raw readings (rpm ~1468) and does much worse.
    const bare = join(dir, 'bare');
    cpSync(join(out, 'model'), bare, { recursive: true });
    writeFileSync(join(bare, 'edgefed.json'), JSON.stringify({ ...meta, standardization: undefined }));
    const unscaled = await runCli(['predict', '--model', bare, '--input', input, '--json']);
    assert.equal(unscaled.code, 0, unscaled.stderr);
    assert.ok(JSON.parse(unscaled.stdout).accuracy < withStats - 0.1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--standardize is refused on data that is not a CSV of rows, and for an unknown mode', async () => {
  const mnist = await runCli([
    'simulate',
    '--nodes',
    '2',
    '--rounds',
    '1',
    '--limit-train',
    '200',
    '--standardize',
    'federated',
  ]);
  assert.equal(mnist.code, 2);
  assert.match(mnist.stderr, /--standardize federated: applies to CSV datasets of rows .*MNIST is not one/);
  const bad = await runCli([...run, '--rounds', '1', '--standardize', 'global']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--standardize.*'global' is invalid.*central, node, federated/);
});
