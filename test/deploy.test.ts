// Coordinator and edge nodes as real processes on loopback sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  api,
  killAll,
  runView,
  startNodeEnrolled,
  startNodesInOrder,
  startTestCoordinator,
  waitFor,
  waitForLog,
  waitForSteady,
  type RunView,
} from './deploy-harness.js';

const base = { model: 'mlp', limitTest: 2000, seed: 1, waitForNodesMs: 120000 };

const coordinator = startTestCoordinator;

const done = (v: { status: string }) => ['completed', 'stopped', 'failed'].includes(v.status);

test('API validates run configs, reports unknown runs, and pauses, resumes and stops runs', async () => {
  const c = await coordinator();
  try {
    const bad = await api<{ error: { code: string; message: string } }>(c.url, '/v1/runs', { rounds: 0 });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.code, 'invalid_config');
    assert.match(bad.json.error.message, /rounds/);
    const unknown = await api(c.url, '/v1/runs', { model: 'mlp', bogus: 1 });
    assert.equal(unknown.status, 400);
    assert.equal((await api(c.url, '/v1/runs/99')).status, 404);
    assert.deepEqual((await api<{ runs: unknown[] }>(c.url, '/v1/runs')).json.runs, []);

    // pause, resume and stop a run (no nodes: each round waits 200 ms for nodes, then closes unfused)
    const { json } = await api<{ id: number }>(c.url, '/v1/runs', {
      ...base,
      rounds: 10000,
      minNodes: 1,
      waitForNodesMs: 200,
    });
    await waitFor('rounds moving', async () =>
      (await runView(c.url, json.id)).roundsCompleted >= 2 ? true : undefined,
    );
    assert.equal((await api(c.url, `/v1/runs/${json.id}/pause`, {})).status, 200);
    await waitFor('paused', async () => ((await runView(c.url, json.id)).status === 'paused' ? true : undefined));
    // The round in flight may still commit; after it, no round while paused (a round closes every ~200 ms
    // when running, so a count steady for 1.5 s means the engine is parked).
    const roundsWhilePaused = await waitForSteady(
      'no round while paused',
      async () => (await runView(c.url, json.id)).roundsCompleted,
      1500,
    );
    const paused = await runView(c.url, json.id);
    assert.equal(paused.status, 'paused');
    assert.equal(paused.roundsCompleted, roundsWhilePaused, 'no round while paused');
    await api(c.url, `/v1/runs/${json.id}/resume`, {});
    await waitFor('rounds moving again', async () =>
      (await runView(c.url, json.id)).roundsCompleted > paused.roundsCompleted ? true : undefined,
    );
    await api(c.url, `/v1/runs/${json.id}/stop`, {});
    const stopped = await waitFor('stopped', async () => {
      const r = await runView(c.url, json.id);
      return r.status === 'stopped' ? r : undefined;
    });
    assert.ok(stopped.rounds.every((r) => !r.fused));
    assert.equal((await api(c.url, `/v1/runs/${json.id}/stop`, {})).status, 409, 'a finished run cannot be controlled');
  } finally {
    killAll([c.proc]);
  }
});

test('a node killed with SIGKILL mid-round does not stall the run', async () => {
  const c = await coordinator();
  const nodes = await startNodesInOrder(
    c.url,
    [0, 1, 2].map((i) => ({
      data: `mnist-partition:${i}/12`,
      name: `k${i}`,
      extra: i === 2 ? ['--delay-ms', '1500'] : [],
    })),
  );
  try {
    const { json } = await api<{ id: number }>(c.url, '/v1/runs', {
      ...base,
      rounds: 4,
      minNodes: 2,
      roundTimeoutMs: 60000,
    });
    // kill node 2 as soon as round 1 is under way (it has been sent work)
    await waitFor('round 1 committed', async () =>
      (await runView(c.url, json.id)).roundsCompleted >= 1 ? true : undefined,
    );
    await waitForLog(nodes[2], 'holding the answer (emulated slow device)', { type: 'train', round: 2 }); // for 1.5 s
    nodes[2].child.kill('SIGKILL');
    const v = await waitFor('run done', async () => {
      const r = await runView(c.url, json.id);
      return done(r) ? r : undefined;
    });
    assert.equal(v.status, 'completed');
    assert.equal(v.rounds.length, 4);
    assert.ok(v.rounds.every((r) => r.fused && r.contributed.length >= 2));
    assert.match(
      v.rounds[1].failures.find((f) => f.nodeId === 2)?.error ?? '',
      /connection lost/,
      'round 2 lost node 2 mid-round',
    );
    assert.ok(
      v.rounds.slice(1).every((r) => !r.contributed.includes(2)),
      'the killed node no longer contributes',
    );
  } finally {
    killAll([...nodes, c.proc]);
  }
});

test('scheduling: tag selection, a deadline with a deliberately slow node, and the minimum-nodes wait', async () => {
  const c = await coordinator();
  const nodes = await startNodesInOrder(c.url, [
    { data: 'mnist-partition:0/12', name: 's0', extra: ['--tags', 'site=a'] },
    { data: 'mnist-partition:1/12', name: 's1', extra: ['--tags', 'site=b'] },
    { data: 'mnist-partition:2/12', name: 's2', extra: ['--tags', 'site=a', '--delay-ms', '7000'] },
  ]);
  try {
    // tags: only site=a nodes (0 and 2) are asked; node 2 (7 s per answer, however fast it trains) is too slow for
    // a 6 s deadline, so its answer to round 1 lands during round 2: a late update
    const tagged = await api<{ id: number }>(c.url, '/v1/runs', {
      ...base,
      rounds: 2,
      minNodes: 1,
      roundTimeoutMs: 6000,
      selection: { tags: { site: 'a' } },
    });
    const v = await waitFor('tagged run done', async () => {
      const r = await runView(c.url, tagged.json.id);
      return done(r) ? r : undefined;
    });
    assert.equal(v.status, 'completed');
    for (const r of v.rounds) {
      assert.deepEqual(r.contributed, [0], 'only the fast site=a node is fused');
      assert.deepEqual(
        r.failures.map((f) => f.nodeId),
        [2],
      );
      assert.match(r.failures[0].error, /deadline/);
    }
    // the straggler's late answers are recorded, never fused
    const late = await waitFor('late update recorded', async () => {
      const { json } = await api<{
        events: { kind: string; data: { nodeId: number; forRound: number; atRound: number } }[];
      }>(c.url, `/v1/runs/${tagged.json.id}/events`);
      return json.events.find((e) => e.kind === 'late_update');
    });
    assert.equal(late.data.nodeId, 2);
    assert.ok(late.data.atRound > late.data.forRound, 'recorded against a later round, not fused into it');

    // minimum-nodes wait: 4 nodes needed, 3 online: no round starts until a 4th enrols. The same 6 s deadline:
    // the round need not wait out node 2's 7 s answer, which counts among the four as a failure.
    const waiting = await api<{ id: number }>(c.url, '/v1/runs', {
      ...base,
      rounds: 1,
      minNodes: 4,
      roundTimeoutMs: 6000,
    });
    await waitForLog(c.proc, 'starting run', { runId: waiting.json.id });
    assert.equal((await runView(c.url, waiting.json.id)).roundsCompleted, 0);
    nodes.push(await startNodeEnrolled(c.url, 'mnist-partition:3/12', 's3'));
    const w = await waitFor('waiting run done', async () => {
      const r = await runView(c.url, waiting.json.id);
      return done(r) ? r : undefined;
    });
    // Round 1 started only once the 4th node was there: all four were selected.
    assert.equal(w.rounds[0].selected.length, 4);
    assert.equal(w.rounds[0].contributed.length + w.rounds[0].failures.length, 4);
  } finally {
    killAll([...nodes, c.proc]);
  }
});

test('compressed updates over real sockets: top-k with error feedback fuses every round at a fraction of the bytes', async () => {
  const c = await coordinator();
  const nodes = await startNodesInOrder(
    c.url,
    [0, 1].map((i) => ({ data: `mnist-partition:${i}/12`, name: `z${i}` })),
  );
  try {
    const bad = await api<{ error: { message: string } }>(c.url, '/v1/runs', { ...base, compression: 'topk:0' });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error.message, /top-k fraction must be in \(0, 1\]/);
    const { json } = await api<{ id: number }>(c.url, '/v1/runs', {
      ...base,
      rounds: 2,
      minNodes: 2,
      compression: 'topk:0.01',
    });
    const v = await waitFor('compressed run done', async () => {
      const r = await runView(c.url, json.id);
      return done(r) ? r : undefined;
    });
    assert.equal(v.status, 'completed');
    const floatReplies = 2 * 101770 * 4; // two nodes' MLP weights as float32
    for (const r of v.rounds as (RunView['rounds'][number] & { bytesReceived: number })[]) {
      assert.ok(r.fused && r.contributed.length === 2, `round ${r.round}: ${JSON.stringify(r.failures)}`);
      assert.ok(
        r.bytesReceived > 0 && floatReplies / r.bytesReceived > 30,
        `round ${r.round}: ${r.bytesReceived} bytes received`,
      );
    }
    assert.ok(v.rounds[1].testAccuracy > 0.5, `accuracy ${v.rounds[1].testAccuracy}`);
  } finally {
    killAll([...nodes, c.proc]);
  }
});
