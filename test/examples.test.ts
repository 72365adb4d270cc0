// The shipped examples: their SYNTHETIC data regenerates bit for bit from the seeded generators, and a short
// federated run on each learns (beats the trivial baseline: the majority class, or predicting the mean).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { runCli } from './helpers.js';
import { generateFaultCsv } from '../examples/industrial-fault/generate.js';
import { generateTrafficCsv } from '../examples/traffic-flow/generate.js';
import { loadDatasetSpec } from '../src/data/load.js';

const FAULT = 'examples/industrial-fault/synthetic-pump-sensors.csv';
const TRAFFIC = 'examples/traffic-flow/synthetic-traffic-flow.csv';
const FAULT_SPEC = `csv:${FAULT}?label=fault&keep=machine_id`;
const TRAFFIC_SPEC = `csv:${TRAFFIC}?label=flow_veh_min&keep=site_id&task=regression`;

async function simulate(args: string[]): Promise<{ final_accuracy: number; final_loss: number }> {
  const r = await runCli(['simulate', ...args, '--json', '--quiet', '--workers', '1']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
}

test('the committed example CSVs are exactly what the seeded generators write', () => {
  assert.equal(readFileSync(FAULT, 'utf8'), generateFaultCsv().all);
  assert.equal(readFileSync(TRAFFIC, 'utf8'), generateTrafficCsv().all);
  assert.notEqual(generateFaultCsv(7).all, generateFaultCsv().all, 'the seed matters');
});

test('industrial fault (classification, one node per pump): beats the majority class', async () => {
  const { test: t } = loadDatasetSpec(FAULT_SPEC);
  const counts = new Map<number, number>();
  for (const y of t.y) counts.set(y, (counts.get(y) ?? 0) + 1);
  const majority = Math.max(...counts.values()) / t.n;
  const r = await simulate(['--dataset', FAULT_SPEC, '--model', 'mlp', '--nodes', '8', '--partition', 'natural:machine_id', '--rounds', '4']);
  assert.ok(r.final_accuracy > majority + 0.1, `accuracy ${r.final_accuracy} vs majority class ${majority}`);
});

test('traffic flow (regression, linear/MSE, one node per site): MSE well below predicting the mean', async () => {
  const { train, test: t } = loadDatasetSpec(TRAFFIC_SPEC);
  const mean = Array.from(train.y).reduce((a, b) => a + b, 0) / train.n;
  const baseline = Array.from(t.y).reduce((a, y) => a + (y - mean) ** 2, 0) / t.n;
  const r = await simulate(['--dataset', TRAFFIC_SPEC, '--model', 'linear', '--nodes', '6', '--partition', 'natural:site_id', '--rounds', '5']);
  assert.ok(r.final_loss < 0.5 * baseline, `test MSE ${r.final_loss} vs ${baseline} for the train mean`);
});
