// Slow suite: a coordinator, 2 gateways and 6 node processes (3 per gateway) on loopback train the seed MLP to
// >= 0.97 on MNIST with hierarchical fusion (2 edge rounds per cloud round).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { api, freePort, killAll, runView, startCoordinator, startGateway, startNodesInOrder, waitFor, waitHealthy, waitOnline, type Proc } from '../deploy-harness.js';

test('coordinator + 2 gateways + 6 node processes reach 0.97 test accuracy on MNIST partitions', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-hier-acc-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const procs: Proc[] = [startCoordinator(port, join(dir, 'cloud.db'))];
  try {
    await waitHealthy(url);
    const sites: { url: string; names: string[] }[] = [];
    for (const [g, name] of ['siteA', 'siteB'].entries()) {
      const gport = await freePort();
      const gurl = `http://127.0.0.1:${gport}`;
      procs.push(await startGateway(url, gport, name, ['--edge-rounds', '2', '--min-nodes', '3', '--db', join(dir, `${name}.db`)]));
      await waitHealthy(gurl);
      await waitOnline(url, name);
      const nodes = [0, 1, 2].map((i) => ({ data: `mnist-partition:${3 * g + i}/6`, name: `${name}-n${i}` }));
      procs.push(...(await startNodesInOrder(gurl, nodes)));
      sites.push({ url: gurl, names: nodes.map((n) => n.name) });
    }
    const { json } = await api<{ id: number }>(url, '/v1/runs', { model: 'mlp', rounds: 30, minNodes: 2, targetAccuracy: 0.97, seed: 1 });
    const v = await waitFor('run done', async () => { const r = await runView(url, json.id); return r.status === 'completed' ? r : undefined; }, 900_000);
    const rounds = v.rounds as (typeof v.rounds[number] & { examples: number[] })[];
    const last = rounds[rounds.length - 1];
    const siteExamples = await Promise.all(sites.map(async (s) => {
      const { json: n } = await api<{ nodes: { name: string; resources: { examples?: number } }[] }>(s.url, '/v1/nodes');
      return s.names.reduce((sum, name) => sum + (n.nodes.find((x) => x.name === name)?.resources.examples ?? NaN), 0);
    }));
    console.log(`hierarchical run: ${rounds.length} cloud rounds (x2 edge rounds), test accuracy ${last.testAccuracy}, site examples ${JSON.stringify(siteExamples)}`);
    assert.ok(last.testAccuracy >= 0.97, `accuracy ${last.testAccuracy}`);
    for (const r of rounds) {
      assert.deepEqual(r.contributed, [0, 1], JSON.stringify(r.failures));
      assert.deepEqual(r.examples, siteExamples, 'each gateway speaks for the sum of its nodes\' examples');
    }
  } finally {
    killAll(procs);
  }
});
