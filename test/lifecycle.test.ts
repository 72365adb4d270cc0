// Restart semantics of a real coordinator process: SIGTERM is a restart, not a stop; only POST .../stop
// stops a run, and that stop is on disk before it is acknowledged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  ADMIN_TOKEN,
  api,
  freePort,
  killAll,
  runView,
  startCoordinator,
  startNodesInOrder,
  waitFor,
  waitHealthy,
  type Proc,
  type RunView,
} from './deploy-harness.js';

const config = { model: 'mlp', rounds: 4, minNodes: 3, limitTest: 1000, seed: 11, waitForNodesMs: 120000 };
// Each node answers 3 s after a request: a SIGTERM right after a commit lands in the middle of the next round.
const nodeSpecs = [0, 1, 2].map((i) => ({
  data: `mnist-partition:${i}/12`,
  name: `t${i}`,
  extra: ['--delay-ms', '3000'],
}));
// The uninterrupted reference needs no slow answers: a node's delay holds its reply, never changes what it trains.
const referenceSpecs = nodeSpecs.map(({ extra: _delay, ...spec }) => spec);

interface Setup {
  url: string;
  port: number;
  db: string;
  file: string;
  coordinator: Proc;
}

async function setup(runConfig: object, extra: string[] = []): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-lifecycle-'));
  const file = join(dir, 'run.json');
  writeFileSync(file, JSON.stringify(runConfig));
  const port = await freePort();
  const db = join(dir, 'state.db');
  const coordinator = startCoordinator(port, db, file, extra);
  const url = `http://127.0.0.1:${port}`;
  await waitHealthy(url).catch((e: Error) => {
    killAll([coordinator]);
    throw e;
  });
  return { url, port, db, file, coordinator };
}

/** The run's row as the database holds it, read with the coordinator gone. */
function storedRun(db: string, id = 1): { status: string; rounds_completed: number } {
  const raw = new Database(db, { readonly: true });
  try {
    return raw.prepare('SELECT status, rounds_completed FROM runs WHERE id = ?').get(id) as {
      status: string;
      rounds_completed: number;
    };
  } finally {
    raw.close();
  }
}

/** The exit code, or the signal's name for a process killed by one. */
const exited = (p: Proc, what: string, timeoutMs = 60_000) =>
  waitFor<number | string>(what, async () => p.child.exitCode ?? p.child.signalCode ?? undefined, timeoutMs);

/** Run 1 once it has ended, which must be as completed, with its rounds and its final checkpoint. */
async function completedCheckpoint(url: string, proc?: Proc): Promise<RunView & { sha256: string; round: number }> {
  const run = await waitFor(
    'run 1 ended',
    async () => {
      const r = await runView(url, 1);
      return ['completed', 'stopped', 'failed'].includes(r.status) ? r : undefined;
    },
    300_000,
  );
  assert.equal(run.status, 'completed', proc?.output().slice(-2000));
  const { json } = await api<{ sha256: string; round: number }>(url, '/v1/runs/1/checkpoint');
  return { ...run, ...json };
}

test('SIGTERM mid-round: the round is abandoned uncommitted, the run stays running, a restart finishes it with every round once and the same model', async () => {
  const a = await setup(config);
  const aNodes = await startNodesInOrder(a.url, referenceSpecs);
  const reference = await completedCheckpoint(a.url).finally(() => killAll([...aNodes, a.coordinator]));
  assert.equal(reference.round, config.rounds);

  // A grace period far shorter than the nodes' 3 s answers: the round in progress must be abandoned.
  const b = await setup(config, ['--shutdown-grace-ms', '200']);
  const bNodes = await startNodesInOrder(b.url, nodeSpecs);
  let restarted: Proc | undefined;
  try {
    await waitFor(
      'round 2 committed',
      async () => ((await runView(b.url, 1)).roundsCompleted >= 2 ? true : undefined),
      300_000,
    );
    b.coordinator.child.kill('SIGTERM');
    assert.equal(await exited(b.coordinator, 'coordinator exit after SIGTERM'), 0, b.coordinator.output().slice(-2000));
    assert.match(b.coordinator.output(), /abandoning the round in progress uncommitted/);
    const left = storedRun(b.db);
    assert.equal(left.status, 'running', 'a shutdown is not a stop');
    assert.ok(left.rounds_completed < config.rounds);

    restarted = startCoordinator(b.port, b.db); // no --config: it resumes what the file holds
    await waitHealthy(b.url);
    const resumed = await completedCheckpoint(b.url, restarted);
    assert.deepEqual(
      resumed.rounds.map((r) => r.round),
      [1, 2, 3, 4],
      'every round exactly once',
    );
    for (const r of resumed.rounds) assert.equal(r.contributed.length, 3, `round ${r.round} fused all three updates`);
    assert.match(restarted.output(), /resuming run/);
    assert.equal(resumed.sha256, reference.sha256, 'same final model as the uninterrupted run');
  } finally {
    killAll([...bNodes, b.coordinator, ...(restarted ? [restarted] : [])]);
  }
});

test('waiting for nodes: SIGTERM ends the wait at once and leaves the run running; a stop during the wait survives kill -9', async () => {
  // A day-long wait for two nodes that never come.
  const c = await setup({ ...config, minNodes: 2, waitForNodesMs: 24 * 3600 * 1000 });
  let second: Proc | undefined;
  let third: Proc | undefined;
  try {
    await waitFor('run waiting for nodes', async () =>
      (await runView(c.url, 1)).status === 'running' ? true : undefined,
    );
    c.coordinator.child.kill('SIGTERM');
    assert.equal(
      await exited(c.coordinator, 'exit during a day-long wait for nodes'),
      0,
      c.coordinator.output().slice(-2000),
    );
    assert.equal(storedRun(c.db).status, 'running');

    second = startCoordinator(c.port, c.db);
    await waitHealthy(c.url);
    await waitFor('run resumed, waiting again', async () =>
      (await runView(c.url, 1)).status === 'running' ? true : undefined,
    );
    const stop = await fetch(`${c.url}/v1/runs/1/stop`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    assert.equal(stop.status, 200);
    second.child.kill('SIGKILL'); // right after the acknowledgement: nothing more gets to run
    await exited(second, 'SIGKILL');
    assert.equal(storedRun(c.db).status, 'stopped', 'the acknowledged stop is on disk');

    third = startCoordinator(c.port, c.db);
    await waitHealthy(c.url);
    assert.equal((await runView(c.url, 1)).status, 'stopped');
  } finally {
    killAll([c.coordinator, ...(second ? [second] : []), ...(third ? [third] : [])]);
  }
});
