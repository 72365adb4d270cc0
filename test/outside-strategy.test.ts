// A strategy defined outside src/ (test/support/scaled-mean-strategy.ts) and registered through the public API
// runs in a simulation and in a deployment (an in-process coordinator with real node processes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { registerStrategy, strategyHelp } from '../src/engine/strategies/index.js';
import { runSimulation } from '../src/sim/simulate.js';
import { resolveOptions } from '../src/sim/options.js';
import { startCoordinator } from '../src/coordinator/server.js';
import { weightsSha256 } from '../src/model/hash.js';
import { scaledMean, scaledMeanLog } from './support/scaled-mean-strategy.js';
import {
  ADMIN_TOKEN,
  api,
  freePort,
  killAll,
  runView,
  startNodesInOrder,
  waitFor,
  type Proc,
} from './deploy-harness.js';

registerStrategy(scaledMean);

test('an outside strategy: registered by name, parameters typed, capabilities enforced, runs in simulation', async () => {
  assert.match(strategyHelp(), /scaledmean\[:eta=1\]/);
  assert.throws(
    () => resolveOptions({ strategy: 'scaledmean:eta=0' }),
    /--strategy: strategy 'scaledmean:eta=0': eta: .*>0/,
  );
  assert.throws(
    () => resolveOptions({ strategy: 'scaledmean:eta=1', secagg: true }),
    /--strategy: secure aggregation: strategy 'scaledmean' needs the individual updates/,
  );
  assert.throws(
    () => resolveOptions({ strategy: 'scaledmean', mode: 'async' }),
    /--mode async fuses with FedBuff; use --strategy fedavg/,
  );
  assert.throws(() => registerStrategy({ ...scaledMean }), /a strategy named 'scaledmean' is already registered/);

  scaledMeanLog.length = 0;
  const r = await runSimulation({
    strategy: 'scaledmean:eta=0.5',
    nodes: 4,
    rounds: 2,
    limitTrain: 800,
    limitTest: 200,
    workers: 1,
    seed: 5,
  });
  assert.deepEqual(
    scaledMeanLog.map((l) => [l.round, l.nodeIds, l.eta]),
    [
      [1, [0, 1, 2, 3], 0.5],
      [2, [0, 1, 2, 3], 0.5],
    ],
  );
  assert.equal(
    r.modelSha256,
    weightsSha256(scaledMeanLog[1].result),
    'the final model is what the outside fusion returned',
  );
  const fedavg = await runSimulation({
    strategy: 'fedavg',
    nodes: 4,
    rounds: 2,
    limitTrain: 800,
    limitTest: 200,
    workers: 1,
    seed: 5,
  });
  assert.notEqual(fedavg.modelSha256, r.modelSha256, 'a half step is not FedAvg');
});

test('an outside strategy runs in deployment: in-process coordinator, real node processes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-outside-'));
  const port = await freePort();
  const c = await startCoordinator({
    port,
    host: '127.0.0.1',
    db: join(dir, 'state.db'),
    adminToken: ADMIN_TOKEN,
    logger: pino({ level: 'silent' }),
  });
  const url = `http://127.0.0.1:${port}`;
  let nodes: Proc[] = [];
  try {
    const bad = await api<{ error: { message: string } }>(url, '/v1/runs', { strategy: 'scaledmean:eta=20' });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error.message, /strategy: strategy 'scaledmean:eta=20': eta: .*10/);
    nodes = await startNodesInOrder(
      url,
      [0, 1].map((i) => ({ data: `mnist-partition:${i}/30`, name: `outside${i}` })),
    );
    scaledMeanLog.length = 0;
    const made = await api<{ id: number }>(url, '/v1/runs', {
      model: 'mlp',
      strategy: 'scaledmean:eta=0.5',
      rounds: 2,
      minNodes: 2,
      limitTest: 500,
      seed: 3,
      waitForNodesMs: 120_000,
    });
    assert.equal(made.status, 201);
    const run = await waitFor(
      'run with the outside strategy completed',
      async () => {
        const v = await runView(url, made.json.id);
        return v.status === 'completed' || v.status === 'failed' ? v : undefined;
      },
      300_000,
    );
    assert.equal(run.status, 'completed');
    assert.deepEqual(
      scaledMeanLog.map((l) => [l.round, l.nodeIds.length, l.eta]),
      [
        [1, 2, 0.5],
        [2, 2, 0.5],
      ],
      JSON.stringify(run.rounds),
    );
    const checkpoint = await api<{ sha256: string; round: number }>(url, `/v1/runs/${made.json.id}/checkpoint`);
    assert.equal(checkpoint.json.round, 2);
    assert.equal(
      checkpoint.json.sha256,
      weightsSha256(scaledMeanLog[1].result),
      'the committed model is what the outside fusion returned',
    );
  } finally {
    killAll(nodes);
    await c.close();
  }
});
