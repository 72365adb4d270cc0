// The shipped examples: their SYNTHETIC data regenerates bit for bit from the seeded generators, and a short
// federated run on each learns (beats the trivial baseline: the majority class, or predicting the mean).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  freePort,
  killAll,
  startCoordinator,
  startNodesInOrder,
  waitFor,
  waitHealthy,
  runView,
  type Proc,
} from './deploy-harness.js';
import { runCli } from './helpers.js';
import { generateFaultCsv } from '../examples/industrial-fault/generate.js';
import { generateTrafficCsv } from '../examples/traffic-flow/generate.js';
import { generateLoopCsv } from '../examples/traffic-flow/generate-loops.js';
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
  assert.equal(readFileSync('examples/traffic-flow/synthetic-loop-detectors.csv', 'utf8'), generateLoopCsv().all);
  assert.notEqual(generateFaultCsv(7).all, generateFaultCsv().all, 'the seed matters');
});

test('industrial fault (classification, one node per pump): beats the majority class', async () => {
  const { test: t } = loadDatasetSpec(FAULT_SPEC);
  const counts = new Map<number, number>();
  for (const y of t.y) counts.set(y, (counts.get(y) ?? 0) + 1);
  const majority = Math.max(...counts.values()) / t.n;
  const r = await simulate([
    '--dataset',
    FAULT_SPEC,
    '--model',
    'mlp',
    '--nodes',
    '8',
    '--partition',
    'natural:machine_id',
    '--rounds',
    '4',
  ]);
  assert.ok(r.final_accuracy > majority + 0.1, `accuracy ${r.final_accuracy} vs majority class ${majority}`);
});

test('traffic flow (regression, linear/MSE, one node per site): MSE well below predicting the mean', async () => {
  const { train, test: t } = loadDatasetSpec(TRAFFIC_SPEC);
  const mean = Array.from(train.y).reduce((a, b) => a + b, 0) / train.n;
  const baseline = Array.from(t.y).reduce((a, y) => a + (y - mean) ** 2, 0) / t.n;
  const r = await simulate([
    '--dataset',
    TRAFFIC_SPEC,
    '--model',
    'linear',
    '--nodes',
    '6',
    '--partition',
    'natural:site_id',
    '--rounds',
    '5',
  ]);
  assert.ok(r.final_loss < 0.5 * baseline, `test MSE ${r.final_loss} vs ${baseline} for the train mean`);
});

test('industrial fault deployed: pump nodes train on their own CSV, one serves raw sensor rows with the global model', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-example-'));
  const { parts: perMachine } = generateFaultCsv();
  perMachine.slice(0, 2).forEach((text, m) => writeFileSync(join(dir, `m${m}.csv`), text));
  const config = { ...JSON.parse(readFileSync('examples/industrial-fault/run.json', 'utf8')), rounds: 6, minNodes: 2 };
  writeFileSync(join(dir, 'run.json'), JSON.stringify(config));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const procs: Proc[] = [startCoordinator(port, join(dir, 'state.db'), join(dir, 'run.json'))];
  try {
    await waitHealthy(url);
    const servePort = await freePort();
    procs.push(
      ...(await startNodesInOrder(
        url,
        [0, 1].map((m) => ({
          data: `csv:${join(dir, `m${m}.csv`)}?label=fault&keep=machine_id`,
          name: `pump${m}`,
          extra: m === 0 ? ['--serve-port', String(servePort), '--model-poll-ms', '200'] : [],
        })),
      )),
    );
    await waitFor('the run to finish', async () => ((await runView(url, 1)).status === 'completed' ? true : undefined));
    const serve = `http://127.0.0.1:${servePort}`;
    const model = await waitFor('the last version on the node', async () => {
      const m = (await (await fetch(`${serve}/v1/model`)).json()) as {
        version: number;
        inputs: { columns?: string[] };
      };
      return m.version === 6 ? m : undefined;
    });
    const [header, ...lines] = perMachine[0].trim().split('\n');
    const cols = header.split(',');
    assert.deepEqual(
      model.inputs.columns,
      cols.filter((c) => c !== 'machine_id' && c !== 'fault'),
    );
    const rows = lines.slice(0, 200).map((l) => l.split(','));
    const inputs = rows.map((r) => model.inputs.columns!.map((c) => Number(r[cols.indexOf(c)])));
    const labels = rows.map((r) => Number(r[cols.indexOf('fault')]));
    const r = await fetch(`${serve}/v1/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs }),
    });
    assert.equal(r.status, 200);
    const { predictions } = (await r.json()) as { predictions: { class: number; modelVersion: number }[] };
    const accuracy = predictions.filter((p, i) => p.class === labels[i]).length / labels.length;
    const majority = labels.filter((y) => y === 0).length / labels.length;
    assert.ok(predictions.every((p) => p.modelVersion === 6));
    assert.ok(accuracy > majority + 0.1, `raw-row accuracy ${accuracy} vs majority ${majority}`);
  } finally {
    killAll(procs);
  }
});
