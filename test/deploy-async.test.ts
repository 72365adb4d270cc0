// FedBuff in deployment: real node processes on loopback, updates fused as they arrive, staleness recorded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, killAll, runView, startNodesInOrder, startTestCoordinator, waitFor } from './deploy-harness.js';

interface AsyncRound {
  round: number;
  fused: boolean;
  contributed: number[];
  staleness: number[];
  testAccuracy: number;
}

test('mode async: K = 2 of 3 nodes per fusion, a slow node fused late with its staleness, every fusion committed', async () => {
  const c = await startTestCoordinator();
  // node 2 holds every answer 1.2 s: it is sent version v and answers after the fast two have moved the model on
  const nodes = await startNodesInOrder(
    c.url,
    [0, 1, 2].map((i) => ({
      data: `mnist-partition:${i}/12`,
      name: `a${i}`,
      extra: i === 2 ? ['--delay-ms', '1200'] : [],
    })),
  );
  try {
    const bad = await api<{ error: { message: string } }>(c.url, '/v1/runs', {
      mode: 'async',
      bufferSize: 4,
      concurrency: 3,
    });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error.message, /concurrency: must be >= the buffer size K = 4/);

    const { json } = await api<{ id: number }>(c.url, '/v1/runs', {
      model: 'mlp',
      limitTest: 2000,
      seed: 1,
      waitForNodesMs: 120000,
      minNodes: 3,
      rounds: 20,
      mode: 'async',
      bufferSize: 2,
      concurrency: 3,
    });
    const v = await waitFor(
      'async run done',
      async () => {
        const r = await runView(c.url, json.id);
        return ['completed', 'failed'].includes(r.status) ? r : undefined;
      },
      300_000,
    );
    assert.equal(v.status, 'completed');
    assert.equal(v.roundsCompleted, 20, 'every fusion is committed as a round');
    const rounds = v.rounds as unknown as AsyncRound[];
    for (const r of rounds) {
      assert.ok(r.fused);
      assert.equal(r.contributed.length, 2);
      assert.equal(r.staleness.length, 2);
      assert.ok(r.staleness.every((s) => Number.isInteger(s) && s >= 0 && s < r.round));
    }
    const slow = rounds
      .flatMap((r) => r.contributed.map((n, j) => ({ n, s: r.staleness[j] })))
      .filter((x) => x.n === 2);
    assert.ok(slow.length > 0, 'the slow node contributed');
    // its first answer is surely stale (both fast nodes answered and were fused first); later ones depend on timing
    assert.ok(slow[0].s >= 1, `the slow node's update is stale: ${JSON.stringify(slow)}`);
    assert.ok(rounds[19].testAccuracy > 0.85, `accuracy ${rounds[19].testAccuracy}`);
    const cp = await api<{ round: number; sha256: string }>(c.url, `/v1/runs/${json.id}/checkpoint`);
    assert.equal(cp.json.round, 20);
  } finally {
    killAll([...nodes, c.proc]);
  }
});
