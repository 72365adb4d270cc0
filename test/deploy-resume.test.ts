// A coordinator killed with SIGKILL mid-run resumes from its SQLite file and ends with the same model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
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
  type Proc,
} from './deploy-harness.js';

const config = { model: 'mlp', rounds: 5, minNodes: 3, limitTest: 2000, seed: 7, waitForNodesMs: 120000 };
const nodeSpecs = [0, 1, 2].map((i) => ({ data: `mnist-partition:${i}/12`, name: `r${i}` }));

async function setup(): Promise<{ url: string; port: number; db: string; file: string; coordinator: Proc }> {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-resume-'));
  const file = join(dir, 'run.json');
  writeFileSync(file, JSON.stringify(config));
  const port = await freePort();
  const db = join(dir, 'state.db');
  const coordinator = startCoordinator(port, db, file);
  const url = `http://127.0.0.1:${port}`;
  await waitHealthy(url);
  return { url, port, db, file, coordinator };
}

const finished = async (url: string) => {
  const r = await runView(url, 1);
  return ['completed', 'stopped', 'failed'].includes(r.status) ? r : undefined;
};

test('coordinator SIGKILL mid-run: restart resumes, no round lost or repeated, same final model as an uninterrupted run', async () => {
  // the uninterrupted reference run
  const a = await setup();
  const aNodes = await startNodesInOrder(a.url, nodeSpecs);
  let reference: { sha256: string; round: number };
  try {
    const done = await waitFor('reference run done', () => finished(a.url), 300_000);
    assert.equal(done.status, 'completed');
    reference = (await api<{ sha256: string; round: number }>(a.url, '/v1/runs/1/checkpoint')).json;
    assert.equal(reference.round, 5);
  } finally {
    killAll([...aNodes, a.coordinator]);
  }

  // the interrupted run: same seed and nodes; the coordinator dies after round 2 is committed
  const b = await setup();
  const bNodes = await startNodesInOrder(b.url, nodeSpecs);
  let restarted: Proc | undefined;
  try {
    await waitFor(
      'round 2 committed',
      async () => ((await runView(b.url, 1)).roundsCompleted >= 2 ? true : undefined),
      300_000,
    );
    b.coordinator.child.kill('SIGKILL');
    await new Promise((r) => b.coordinator.child.once('exit', r));
    restarted = startCoordinator(b.port, b.db); // no --config: it resumes what the file holds
    await waitHealthy(b.url);
    const done = await waitFor('resumed run done', () => finished(b.url), 300_000);
    assert.equal(done.status, 'completed', restarted.output().slice(-2000));
    assert.deepEqual(
      done.rounds.map((r) => r.round),
      [1, 2, 3, 4, 5],
      'every round exactly once',
    );
    assert.match(restarted.output(), /resuming run/);
    const resumed = (await api<{ sha256: string; round: number }>(b.url, '/v1/runs/1/checkpoint')).json;
    assert.equal(resumed.round, 5);
    assert.equal(resumed.sha256, reference.sha256, 'same final model as the uninterrupted run');
  } finally {
    killAll([...bNodes, b.coordinator, ...(restarted ? [restarted] : [])]);
  }
});
