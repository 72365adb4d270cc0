// Secure aggregation over the network with pinned peer keys (`edgefed node --secagg-peers FILE`): real coordinator
// and node processes on loopback. Nodes whose files list each other aggregate; when a node outside the files joins
// the round, the pinned nodes refuse its advertisement and the round aborts with that reason as data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newIdentity, toHex } from '../src/core/identity.js';
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

async function runToEnd(url: string, body: Record<string, unknown>) {
  const { status, json } = await api<{ id: number }>(url, '/v1/runs', body);
  assert.equal(status, 201);
  return waitFor(`run ${json.id} done`, async () => {
    const r = await runView(url, json.id);
    return ['completed', 'stopped', 'failed'].includes(r.status) ? r : undefined;
  });
}

test('pinned peer keys: the listed nodes aggregate; a node outside the list makes them refuse the round', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-secagg-peers-'));
  const identities = [0, 1, 2, 3].map(() => newIdentity());
  const keyFile = (i: number) => {
    const file = join(dir, `p${i}.key`);
    writeFileSync(file, toHex(identities[i].secretKey) + '\n', { mode: 0o600 });
    return file;
  };
  const peers = join(dir, 'peers.txt');
  writeFileSync(
    peers,
    `# nodes p0-p2 (p3 is not in the fleet)\n${identities
      .slice(0, 3)
      .map((k) => toHex(k.publicKey))
      .join('\n')}\n`,
  );
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const coordinator = startCoordinator(port, join(dir, 'state.db'));
  await waitHealthy(url);
  const spec = (i: number, pinned: boolean) => ({
    data: `mnist-partition:${i}/12`,
    name: `p${i}`,
    extra: ['--key', keyFile(i), ...(pinned ? ['--secagg-peers', peers] : [])],
  });
  const nodes = await startNodesInOrder(
    url,
    [0, 1, 2].map((i) => spec(i, true)),
  );
  try {
    const settings = {
      model: 'mlp',
      limitTest: 500,
      seed: 1,
      rounds: 1,
      waitForNodesMs: 60000,
      roundTimeoutMs: 60000,
      secagg: {},
    };
    const ok = await runToEnd(url, { ...settings, minNodes: 3 });
    assert.equal(ok.status, 'completed');
    assert.ok(ok.rounds[0].fused, 'the three pinned nodes aggregate');
    assert.deepEqual(ok.rounds[0].contributed, [0, 1, 2]);

    nodes.push(...(await startNodesInOrder(url, [spec(3, false)])));
    const refused = await runToEnd(url, { ...settings, minNodes: 4 });
    const round = refused.rounds[0];
    assert.equal(round.fused, false, 'no model is fused');
    for (const nodeId of [0, 1, 2]) {
      const error = round.failures.find((f) => f.nodeId === nodeId)?.error ?? '';
      assert.match(
        error,
        /secure aggregation refused \(untrusted_key\): .*client 4 is not in this node's pinned peer keys/,
        `node ${nodeId}`,
      );
    }
    assert.match(
      round.failures.find((f) => f.nodeId === 3)?.error ?? '',
      /secure aggregation aborted: .*nodes refused: 3 untrusted_key/,
    );
  } finally {
    killAll([...nodes, coordinator]);
  }
});
