/**
 * Federated standardisation deployed: a real coordinator and three pump nodes on loopback, each with one
 * machine's CSV. Before round 1 the coordinator runs one statistics pass, commits it (a restart with a node
 * fewer reuses it, asks nobody again; a node joining later trains on it too, and the run's view and events say
 * its rows are not in it), the nodes train on rows scaled with it, and the saved model's versions
 * carry it: the coordinator's predict, node serving and `edgefed predict` apply it to raw readings alike. Bad
 * configs are refused unstored; a node whose columns differ fails the pass by name.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ADMIN_TOKEN,
  api,
  freePort,
  killAll,
  runView,
  startCoordinator,
  startNodeEnrolled,
  waitFor,
  waitForLog,
  waitForSteady,
  waitHealthy,
  waitOnline,
  type Proc,
} from './deploy-harness.js';
import { runCli } from './helpers.js';
import { loadDatasetSpec } from '../src/data/load.ts';
import {
  machineFile,
  PUMP_EXAMPLE as EXAMPLE,
  PUMP_FEATURES as F,
  PUMP_OPTIONS as OPTIONS,
} from './support/pump-machines.js';
import type { Dataset } from '../src/data/types.ts';

const procs: Proc[] = [];
after(() => killAll(procs));

/** Naive float64 two-pass mean and population std of each feature over the pooled rows. */
function pooledStats(parts: Dataset[]): { mean: number[]; std: number[] } {
  const mean: number[] = [];
  const std: number[] = [];
  for (let j = 0; j < F; j++) {
    const v = parts.flatMap((d) => Array.from({ length: d.n }, (_, k) => d.x[k * F + j]));
    const m = v.reduce((a, b) => a + b, 0) / v.length;
    mean.push(m);
    std.push(Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length));
  }
  return { mean, std };
}

const close = (a: number, b: number, rel: number) => Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b));

async function get(url: string, path: string): Promise<Response> {
  return fetch(url + path, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
}

test('standardize federated deployed: one committed pass, nodes train on it, serving and predict apply it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-fedstd-'));
  const files = ['m0', 'm1', 'm2'].map((m) => machineFile(dir, m));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const db = join(dir, 'state.db');
  const coordinatorArgs = ['--dataset', `pumps=csv:${EXAMPLE}${OPTIONS}`];
  let coordinator = startCoordinator(port, db, undefined, coordinatorArgs);
  procs.push(coordinator);
  await waitHealthy(url);

  // Refused at creation, nothing stored: a dataset that is not CSV rows (secagg is accepted: the pass then
  // runs securely, see secagg-analytics-deploy.test.ts).
  const notCsv = await api<{ error: { message: string } }>(url, '/v1/runs', { standardize: 'federated' });
  assert.equal(notCsv.status, 400);
  assert.match(notCsv.json.error.message, /standardize: .*evalDataset 'mnist' is not a CSV dataset of rows/);
  const central = await api<{ error: { message: string } }>(url, '/v1/runs', {
    evalDataset: 'pumps',
    standardize: 'central',
  });
  assert.equal(central.status, 400);
  assert.match(central.json.error.message, /standardize/);
  assert.deepEqual((await api<{ runs: unknown[] }>(url, '/v1/runs')).json.runs, []);

  const servePort = await freePort();
  const nodes = [];
  for (const [i, file] of files.entries()) {
    // Each answer held 400 ms, so the 12 rounds outlast the checks below and the pause lands mid-run even on an
    // idle machine (without it the run could finish first, and the late node would never be configured).
    const slow = ['--delay-ms', '400'];
    const extra = i === 0 ? ['--serve-port', String(servePort), '--model-poll-ms', '200', ...slow] : slow;
    nodes.push(await startNodeEnrolled(url, `csv:${file}${OPTIONS}`, `pump${i}`, extra));
    procs.push(nodes[i]);
    await waitOnline(url, `pump${i}`);
  }
  const created = await api<{ id: number }>(url, '/v1/runs', {
    name: 'pumps-federated',
    evalDataset: 'pumps',
    standardize: 'federated',
    model: 'mlp',
    rounds: 12,
    minNodes: 2,
    seed: 1,
  });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const id = created.json.id;
  await waitFor('round 1', async () => ((await runView(url, id)).roundsCompleted >= 1 ? true : undefined));
  // Each node built the run's trainer on its rows scaled with the federation's statistics.
  for (const node of nodes) await waitForLog(node, 'configured for run', { runId: id, scaling: 'federated' });
  const meta = async () =>
    (await (await get(url, `/v1/runs/${id}/models/latest/edgefed.json`)).json()) as {
      columns: string[];
      standardization: { mean: number[]; std: number[] };
      standardizedWith: string;
    };
  const committed = await meta();

  // Each node summarised its CSV's training split before scaling: the pooled rows' statistics, naive float64.
  const parts = files.map((f) => loadDatasetSpec(`csv:${f}${OPTIONS}`, { standardize: false }).train);
  const pooled = pooledStats(parts);
  assert.equal(committed.standardizedWith, 'federated');
  assert.deepEqual(committed.columns, parts[0].columns);
  let worst = 0;
  for (let j = 0; j < F; j++) {
    assert.ok(close(committed.standardization.mean[j], pooled.mean[j], 1e-9), `mean ${j}`);
    assert.ok(close(committed.standardization.std[j], pooled.std[j], 1e-9), `std ${j}`);
    for (const [a, b] of [
      [committed.standardization.mean[j], pooled.mean[j]],
      [committed.standardization.std[j], pooled.std[j]],
    ])
      worst = Math.max(worst, Math.abs(a - b) / Math.abs(b));
  }
  t.diagnostic(`federated vs pooled statistics: largest relative difference ${worst.toExponential(2)}`);

  // Restart with one node fewer: the committed statistics are reused, no second pass asks the two left.
  await api(url, `/v1/runs/${id}/pause`, {});
  const pausedAt = await waitForSteady('paused run', async () => (await runView(url, id)).roundsCompleted, 1000);
  assert.ok(pausedAt < 12, `paused after ${pausedAt} of 12 rounds: the late node needs rounds left to join`);
  coordinator.child.kill('SIGKILL');
  nodes[2].child.kill('SIGKILL');
  coordinator = startCoordinator(port, db, undefined, coordinatorArgs);
  procs.push(coordinator);
  await waitHealthy(url);
  await Promise.all(['pump0', 'pump1'].map((n) => waitOnline(url, n)));
  // A node that joins after the pass trains with the run's statistics; the run says its rows are not in them.
  const lateFile = machineFile(dir, 'm4');
  const late = await startNodeEnrolled(url, `csv:${lateFile}${OPTIONS}`, 'pump4');
  procs.push(late);
  await waitOnline(url, 'pump4');
  await api(url, `/v1/runs/${id}/resume`, {});
  const done = await waitFor('run completed', async () => {
    const v = await runView(url, id);
    assert.notEqual(v.status, 'failed', JSON.stringify(v));
    return v.status === 'completed' ? v : undefined;
  });
  assert.deepEqual((await meta()).standardization, committed.standardization);
  const events = (await api<{ events: { kind: string }[] }>(url, `/v1/runs/${id}/events`)).json.events;
  assert.equal(events.filter((e) => e.kind === 'standardization').length, 1, JSON.stringify(events));
  assert.doesNotMatch(coordinator.output(), /federated statistics committed/);
  await waitForLog(late, 'configured for run', { runId: id, scaling: 'federated' });
  const nodeIds = (await api<{ nodes: { id: number; name: string }[] }>(url, '/v1/nodes')).json.nodes;
  const lateId = nodeIds.find((x) => x.name === 'pump4')!.id;
  const lateRows = loadDatasetSpec(`csv:${lateFile}${OPTIONS}`, { standardize: false }).train.n;
  type LateNode = { nodeId: number; firstRound: number; examples: number | null; name?: string };
  const coverage = (
    done as unknown as {
      standardization: { rows: number; nodes: number[]; lateNodes: number; joinedLater: LateNode[] };
    }
  ).standardization;
  const { firstRound, examples } = coverage.joinedLater[0] ?? {};
  assert.deepEqual(coverage, {
    ...coverage,
    rows: parts.reduce((sum, d) => sum + d.n, 0),
    lateNodes: 1,
    joinedLater: [{ nodeId: lateId, firstRound, examples }],
  });
  // The examples it trained on that round: its CSV's training rows less the node's own held-out split.
  assert.ok(examples !== null && examples > 0 && examples <= lateRows, `examples ${examples} of ${lateRows}`);
  assert.equal(coverage.nodes.length, 3);
  assert.ok(!coverage.nodes.includes(lateId));
  assert.ok(firstRound > 1 && firstRound <= done.roundsCompleted, `first round ${firstRound}`);
  const lateEvents = events.filter((e) => e.kind === 'standardization_late_nodes') as unknown as {
    data: { round: number; nodes: LateNode[]; statistics: { rows: number; nodes: number[] } };
  }[];
  assert.equal(lateEvents.length, 1, 'one event, the round the node first trained');
  assert.deepEqual(lateEvents[0].data, {
    round: firstRound,
    nodes: [{ nodeId: lateId, firstRound, examples, name: 'pump4' }],
    statistics: { rows: coverage.rows, nodes: coverage.nodes },
  });
  // Nodes trained on scaled rows: central accuracy on the pumps test set (raw, scaled the same way).
  const accuracy = done.rounds.at(-1)!.testAccuracy;
  t.diagnostic(`final central accuracy after ${done.roundsCompleted} rounds: ${accuracy.toFixed(4)}`);
  assert.ok(accuracy > 0.7, `final accuracy ${accuracy}`);

  // Raw readings in: the coordinator, node serving and edgefed predict all scale them with the committed
  // statistics. The coordinator on the whole raw test set scores what its own evaluation of the last round did
  // (that evaluation scaled the same rows itself), so its scaling is the trainer's; the other two answer as it does.
  const test = loadDatasetSpec(`csv:${EXAMPLE}${OPTIONS}`, { standardize: false }).test;
  const rowsOf = (n: number) => Array.from({ length: n }, (_, r) => Array.from(test.x.subarray(r * F, (r + 1) * F)));
  const { mean, std } = committed.standardization;
  type Answer = {
    scaling: { statistics: string; columns: string[]; mean: number[]; std: number[] };
    predictions: { class: number; confidence: number }[];
  };
  const whole = await api<Answer>(url, '/v1/predict', { runId: id, inputs: rowsOf(test.n) });
  assert.equal(whole.status, 200, JSON.stringify(whole.json));
  assert.equal(whole.json.scaling.statistics, 'federated');
  assert.deepEqual(whole.json.scaling.columns, committed.columns);
  assert.deepEqual([whole.json.scaling.mean, whole.json.scaling.std], [mean, std]);
  const labels = test.y as Int32Array;
  const hits = whole.json.predictions.filter((p, k) => p.class === labels[k]).length;
  t.diagnostic(`coordinator on ${test.n} raw rows: ${hits} right; its evaluation of the last round: ${accuracy}`);
  assert.ok(Math.abs(hits / test.n - accuracy) <= 1 / test.n + 1e-9, `${hits}/${test.n} vs ${accuracy}`);
  const n = 40;
  const raw = rowsOf(n);
  const reference = { json: { predictions: whole.json.predictions.slice(0, n) } };
  const serve = `http://127.0.0.1:${servePort}`;
  await waitFor('the node serves the last version', async () => {
    const m = (await (await fetch(`${serve}/v1/model`)).json()) as { version: number | null };
    return m.version === done.roundsCompleted ? true : undefined;
  });
  const served = (await (
    await fetch(`${serve}/v1/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: raw }),
    })
  ).json()) as {
    scaling: { statistics: string; mean: number[]; std: number[] };
    predictions: { class: number; confidence: number }[];
  };
  assert.equal(served.scaling.statistics, 'federated');
  assert.deepEqual(served.scaling.mean, mean);
  for (const [k, p] of served.predictions.entries()) {
    assert.equal(p.class, reference.json.predictions[k].class, `node, row ${k}`);
    assert.ok(Math.abs(p.confidence - reference.json.predictions[k].confidence) < 1e-5, `node, row ${k}`);
  }

  const modelDir = join(dir, 'model');
  mkdirSync(modelDir);
  for (const name of ['model.json', 'weights.bin', 'edgefed.json']) {
    const r = await get(url, `/v1/runs/${id}/models/latest/${name}`);
    assert.equal(r.status, 200, name);
    writeFileSync(join(modelDir, name), Buffer.from(await r.arrayBuffer()));
  }
  const inputFile = join(dir, 'readings.csv');
  const header = readFileSync(EXAMPLE, 'utf8').split('\n')[0].split(',');
  const features = header.filter((h) => h !== 'machine_id' && h !== 'fault');
  writeFileSync(inputFile, [features.join(','), ...raw.map((row) => row.join(','))].join('\n') + '\n');
  const cli = await runCli(['predict', '--model', modelDir, '--input', `csv:${inputFile}`, '--json']);
  assert.equal(cli.code, 0, cli.stderr);
  const predicted = JSON.parse(cli.stdout) as { predictions: { class: number; confidence: number }[] };
  for (const [k, p] of predicted.predictions.entries()) {
    assert.equal(p.class, reference.json.predictions[k].class, `predict, row ${k}`);
    assert.ok(Math.abs(p.confidence - reference.json.predictions[k].confidence) < 1e-5, `predict, row ${k}`);
  }

  // A node whose columns differ fails the pass, by name; the run fails before any round.
  const odd = machineFile(dir, 'm3', ['speed_rpm', 'shaft_speed']);
  procs.push(await startNodeEnrolled(url, `csv:${odd}${OPTIONS}`, 'pump3'));
  await waitOnline(url, 'pump3');
  const second = await api<{ id: number }>(url, '/v1/runs', {
    evalDataset: 'pumps',
    standardize: 'federated',
    rounds: 2,
    minNodes: 3,
  });
  assert.equal(second.status, 201);
  const failed = await waitFor('second run failed', async () => {
    const r = await api<{ status: string; error?: string; roundsCompleted: number }>(url, `/v1/runs/${second.json.id}`);
    return r.json.status === 'failed' ? r.json : undefined;
  });
  assert.equal(failed.roundsCompleted, 0);
  assert.match(failed.error ?? '', /statistics pass failed \(node \d+: feature column 5 is 'shaft_speed'/);
});
