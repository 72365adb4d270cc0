// The coordinator's database: one coordinator per file, never a damaged or foreign file taken for a new one,
// owner-only files, and model versions checked against their sha256 before they are served or used.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import {
  ADMIN_TOKEN,
  freePort,
  killAll,
  startCoordinator as startProcess,
  waitFor,
  waitHealthy,
  type Proc,
} from './deploy-harness.js';
import { runCli } from './helpers.js';
import { startCoordinator } from '../src/coordinator/server.js';
import { Store } from '../src/coordinator/store.js';
import { ModelVersions } from '../src/coordinator/model-versions.js';
import { builtinModel } from '../src/model/spec.js';

const tempDir = () => mkdtempSync(join(tmpdir(), 'edgefed-dbguard-'));

async function coordinatorOn(db: string): Promise<{ url: string; port: number; proc: Proc }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = startProcess(port, db);
  await waitHealthy(url).catch((e: Error) => {
    killAll([proc]);
    throw new Error(`${e.message}\n${proc.output().slice(-1000)}`);
  });
  return { url, port, proc };
}

test("a second coordinator on the same --db exits 2 naming the holder's pid; a lock left by kill -9 is taken over", async () => {
  const db = join(tempDir(), 'state.db');
  const first = await coordinatorOn(db);
  let third: Proc | undefined;
  try {
    const second = await runCli([
      'coordinator',
      '--port',
      String(await freePort()),
      '--db',
      db,
      '--admin-token',
      ADMIN_TOKEN,
    ]);
    assert.equal(second.code, 2, second.stderr);
    const lines = second.stderr.trim().split('\n');
    assert.equal(lines.length, 1, second.stderr);
    assert.match(lines[0], new RegExp(`in use by another coordinator \\(pid ${first.proc.child.pid}\\)`));
    first.proc.child.kill('SIGKILL');
    await waitFor('first coordinator gone', async () =>
      first.proc.child.exitCode !== null || first.proc.child.signalCode ? true : undefined,
    );
    assert.ok(existsSync(`${db}.lock`), 'kill -9 leaves the lock file behind');
    third = (await coordinatorOn(db)).proc; // stale: its holder is gone
    assert.equal(readFileSync(`${db}.lock`, 'utf8').trim(), String(third.child.pid));
  } finally {
    killAll([first.proc, ...(third ? [third] : [])]);
  }
});

test('an empty or foreign database file is refused with exit 2 and left as it was; only a missing file makes a new store', async () => {
  const dir = tempDir();
  const empty = join(dir, 'empty.db');
  writeFileSync(empty, '');
  const notSqlite = join(dir, 'notes.db');
  writeFileSync(notSqlite, 'these are my notes, not a database\n'.repeat(200));
  const foreign = join(dir, 'foreign.db');
  const raw = new Database(foreign);
  raw.exec('CREATE TABLE t (x); DROP TABLE t;'); // a valid SQLite file without EdgeFed's tables
  raw.close();
  const cases: [string, RegExp][] = [
    [join(dir, 'no-such-folder', 'edgefed.db'), /its folder .*no-such-folder does not exist \(create it first\)/],
    [empty, /is empty \(0 bytes\): not an EdgeFed store/],
    [notSqlite, /not a database/],
    [foreign, /without EdgeFed's tables/],
  ];
  for (const [file, message] of cases) {
    const before = existsSync(file) ? readFileSync(file) : null;
    const r = await runCli([
      'coordinator',
      '--port',
      String(await freePort()),
      '--db',
      file,
      '--admin-token',
      ADMIN_TOKEN,
    ]);
    assert.equal(r.code, 2, `${file}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.deepEqual(existsSync(file) ? readFileSync(file) : null, before, `${file} unchanged`);
    assert.equal(existsSync(`${file}.lock`), false, 'the lock is released on a refusal');
  }
});

test('the database and its WAL and SHM files are owner-only (0600)', async () => {
  const db = join(tempDir(), 'state.db');
  const c = await coordinatorOn(db);
  try {
    const created = await fetch(`${c.url}/v1/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` },
      body: JSON.stringify({ model: 'linear', evalDataset: 'mnist', rounds: 1, minNodes: 5, waitForNodesMs: 1000 }),
    });
    assert.equal(created.status, 201);
    for (const f of [db, `${db}-wal`, `${db}-shm`]) {
      assert.ok(existsSync(f), f);
      assert.equal(statSync(f).mode & 0o777, 0o600, `${f} mode ${(statSync(f).mode & 0o777).toString(8)}`);
    }
  } finally {
    killAll([c.proc]);
  }
});

test('a model version whose stored weights changed is neither served nor used for predictions', async () => {
  const db = join(tempDir(), 'state.db');
  const spec = builtinModel('linear', [3], 2);
  const weights = Float32Array.from({ length: 8 }, (_, i) => i / 10);
  const store = new Store(db);
  const runId = store.createRun({ model: 'linear' }, 1);
  store.commitRound(
    runId,
    1,
    { round: 1, testAccuracy: 0.5 },
    { weights, strategyState: { name: 'fedavg', round: 1, slots: {}, hyper: {} } },
    [],
  );
  store.setRunStatus(runId, 'completed');
  const versions = new ModelVersions(store);
  versions.record(runId, 1, spec, weights, 0.5);
  versions.close();
  store.close();

  const c = await startCoordinator({ port: 0, db, logger: pino({ level: 'silent' }), adminToken: ADMIN_TOKEN });
  const get = (path: string) => fetch(c.url + path, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  const predict = () =>
    fetch(`${c.url}/v1/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` },
      body: JSON.stringify({ runId, model: 1, inputs: [[1, 2, 3]] }),
    });
  try {
    assert.equal((await get(`/v1/runs/${runId}/models/1/weights.bin`)).status, 200, 'intact: served');
    const raw = new Database(db);
    const blob = Buffer.from(
      raw.prepare('SELECT weights FROM model_versions WHERE run_id = ?').pluck().get(runId) as Buffer,
    );
    blob[9] ^= 1;
    raw.prepare('UPDATE model_versions SET weights = ? WHERE run_id = ?').run(blob, runId);
    raw.close();
    for (const path of [`/v1/runs/${runId}/models/1/weights.bin`, `/v1/runs/${runId}/models/latest/model.json`]) {
      const r = await get(path);
      assert.equal(r.status, 500, path);
      assert.match(
        ((await r.json()) as { error: { message: string } }).error.message,
        /model version 1 of run 1 is corrupt/,
      );
    }
    const p = await predict();
    assert.equal(p.status, 500);
    assert.match(((await p.json()) as { error: { message: string } }).error.message, /is corrupt/);
  } finally {
    await c.close();
  }
});
