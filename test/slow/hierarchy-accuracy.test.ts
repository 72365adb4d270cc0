// Slow suite: a coordinator, 2 gateways and 6 node processes (3 per gateway) on loopback train the seed MLP to
// >= 0.97 on MNIST with hierarchical fusion (2 edge rounds per cloud round).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { api, examplesOf, killAll, runView, startCloud, startSite, waitFor, type Proc } from '../deploy-harness.js';

test('coordinator + 2 gateways + 6 node processes reach 0.97 test accuracy on MNIST partitions', async () => {
  const { url, dir, proc } = await startCloud('edgefed-hier-acc-');
  const procs: Proc[] = [proc];
  try {
    const sites: { url: string; names: string[] }[] = [];
    for (const [g, name] of ['siteA', 'siteB'].entries()) {
      const nodes = [0, 1, 2].map((i) => ({ data: `mnist-partition:${3 * g + i}/6`, name: `${name}-n${i}` }));
      const site = await startSite(
        url,
        name,
        ['--edge-rounds', '2', '--min-nodes', '3', '--db', join(dir, `${name}.db`)],
        nodes,
      );
      procs.push(site.gateway, ...site.nodes);
      sites.push({ url: site.url, names: nodes.map((n) => n.name) });
    }
    const { json } = await api<{ id: number }>(url, '/v1/runs', {
      model: 'mlp',
      rounds: 30,
      minNodes: 2,
      targetAccuracy: 0.97,
      seed: 1,
    });
    const v = await waitFor(
      'run done',
      async () => {
        const r = await runView(url, json.id);
        return r.status === 'completed' ? r : undefined;
      },
      900_000,
    );
    const rounds = v.rounds as ((typeof v.rounds)[number] & { examples: number[] })[];
    const last = rounds[rounds.length - 1];
    const siteExamples = await Promise.all(sites.map((s) => examplesOf(s.url, s.names)));
    console.log(
      `hierarchical run: ${rounds.length} cloud rounds (x2 edge rounds), test accuracy ${last.testAccuracy}, site examples ${JSON.stringify(siteExamples)}`,
    );
    assert.ok(last.testAccuracy >= 0.97, `accuracy ${last.testAccuracy}`);
    for (const r of rounds) {
      assert.deepEqual(r.contributed, [0, 1], JSON.stringify(r.failures));
      assert.deepEqual(r.examples, siteExamples, "each gateway speaks for the sum of its nodes' examples");
    }
  } finally {
    killAll(procs);
  }
});
