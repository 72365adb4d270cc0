// Secure aggregation over the network: a real coordinator and node processes on loopback, one node
// dropping out (disconnecting) after sharing its keys in every round.
import { test } from 'node:test';
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
} from './deploy-harness.js';

test('secure aggregation runs over the network and survives a node dropping after sharing keys', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-secagg-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const coordinator = startCoordinator(port, join(dir, 'state.db'));
  await waitHealthy(url);
  const nodes = await startNodesInOrder(
    url,
    [0, 1, 2, 3].map((i) => ({
      data: `mnist-partition:${i}/12`,
      name: `sa${i}`,
      extra: i === 3 ? ['--secagg-drop-after-share'] : [],
    })),
  );
  try {
    const bad = await api<{ error: { message: string } }>(url, '/v1/runs', {
      model: 'mlp',
      strategy: 'krum:f=1',
      secagg: {},
    });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error.message, /secure aggregation: strategy 'krum' needs the individual updates/);
    assert.equal((await api(url, '/v1/runs', { model: 'mlp', secagg: { clip: -1 } })).status, 400);

    const { status, json } = await api<{ id: number }>(url, '/v1/runs', {
      model: 'mlp',
      limitTest: 1000,
      seed: 1,
      rounds: 1,
      minNodes: 3,
      waitForNodesMs: 60000,
      roundTimeoutMs: 60000,
      secagg: {},
    });
    assert.equal(status, 201);
    const v = await waitFor('secure run done', async () => {
      const r = await runView(url, json.id);
      return ['completed', 'stopped', 'failed'].includes(r.status) ? r : undefined;
    });
    assert.equal(v.status, 'completed');
    assert.equal(v.rounds.length, 1);
    for (const r of v.rounds) {
      assert.ok(r.fused, `round ${r.round} fused`);
      assert.deepEqual(r.contributed, [0, 1, 2], `round ${r.round}: the three honest nodes are in the sum`);
    }
    // All four nodes advertised keys; node 3 vanished after sharing them and the protocol unmasked without it.
    assert.match(v.rounds[0].failures.find((f) => f.nodeId === 3)?.error ?? '', /connection lost|not connected/);
    assert.ok(
      v.rounds[0].testAccuracy > 0.5,
      `the securely aggregated model learns (accuracy ${v.rounds[0].testAccuracy})`,
    );
    assert.match(nodes[3].output(), /dropping out after sharing keys/);
  } finally {
    killAll([...nodes, coordinator]);
  }
});
