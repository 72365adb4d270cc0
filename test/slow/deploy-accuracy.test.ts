// Slow suite: a coordinator and 5 edge-node processes on loopback train the seed MLP to >= 0.97 on MNIST.
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
} from '../deploy-harness.js';

test('coordinator + 5 node processes reach 0.97 test accuracy on MNIST partitions', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-deploy-acc-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const coordinator = startCoordinator(port, join(dir, 'state.db'));
  await waitHealthy(url);
  const nodes = await startNodesInOrder(
    url,
    [0, 1, 2, 3, 4].map((i) => ({ data: `mnist-partition:${i}/5`, name: `acc${i}` })),
  );
  try {
    const { json } = await api<{ id: number }>(url, '/v1/runs', {
      model: 'mlp',
      rounds: 30,
      minNodes: 5,
      targetAccuracy: 0.97,
      seed: 1,
    });
    const v = await waitFor(
      'run done',
      async () => {
        const r = await runView(url, json.id);
        return r.status === 'completed' ? r : undefined;
      },
      600_000,
    );
    const last = v.rounds[v.rounds.length - 1];
    console.log(`deployed run: ${v.rounds.length} rounds, test accuracy ${last.testAccuracy}`);
    assert.ok(last.testAccuracy >= 0.97, `accuracy ${last.testAccuracy}`);
    assert.ok(
      v.rounds.every((r) => r.contributed.length === 5),
      JSON.stringify(v.rounds.map((r) => r.failures)),
    );
    const traffic = await api<{ nodes: { bytesSent: number; bytesReceived: number; roundsContributed: number }[] }>(
      url,
      '/v1/nodes',
    );
    assert.ok(
      traffic.json.nodes.every(
        (n) => n.roundsContributed === v.rounds.length && n.bytesSent > 0 && n.bytesReceived > 0,
      ),
    );
  } finally {
    killAll([...nodes, coordinator]);
  }
});
