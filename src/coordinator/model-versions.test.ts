import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from './store.js';
import { ModelVersionCorruptError, ModelVersions } from './model-versions.js';
import Database from 'better-sqlite3';
import { builtinModel } from '../model/spec.js';
import { weightsSha256 } from '../model/hash.js';

const spec = builtinModel('linear', [3], 2);
const weights = (round: number) => Float32Array.from({ length: 8 }, (_, i) => round * 10 + i);
const commit = (store: Store, runId: number, round: number) =>
  store.commitRound(
    runId,
    round,
    { round, testAccuracy: round / 10 },
    { weights: weights(round), strategyState: { name: 'fedavg', round, slots: {}, hyper: {} } },
    [],
  );

test('versions are committed rounds, kept newest-N, with exact weights; the newest checkpoint is back-filled', () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-versions-'));
  try {
    const store = new Store(join(dir, 's.db'));
    const runId = store.createRun({ model: 'linear' }, 1);
    const versions = new ModelVersions(store, 3);
    assert.deepEqual(versions.list(runId, spec), []);
    assert.equal(versions.get(runId, 'latest', spec), undefined);
    for (let round = 1; round <= 5; round++) {
      commit(store, runId, round);
      versions.record(runId, round, spec, weights(round), round / 10);
    }
    versions.record(runId, 5, spec, weights(99), 0); // a repeat of a version changes nothing
    assert.deepEqual(
      versions.list(runId).map((v) => [v.version, v.round, v.testAccuracy]),
      [
        [3, 3, 0.3],
        [4, 4, 0.4],
        [5, 5, 0.5],
      ],
    );
    const latest = versions.get(runId, 'latest')!;
    assert.equal(latest.version, 5);
    assert.deepEqual(latest.weights, weights(5));
    assert.equal(latest.sha256, weightsSha256(weights(5)));
    assert.deepEqual(latest.spec, spec);
    assert.equal(versions.get(runId, 2), undefined, 'beyond retention');
    // A crash between the commit and the record: the next read back-fills from the store's checkpoint.
    commit(store, runId, 6);
    assert.equal(versions.list(runId).at(-1)!.version, 5, 'without the spec nothing is back-filled');
    assert.deepEqual(
      versions.list(runId, spec).map((v) => v.version),
      [4, 5, 6],
    );
    assert.deepEqual(versions.get(runId, 6)!.weights, weights(6));
    // Versions survive a restart (same SQLite file).
    versions.close();
    const again = new ModelVersions(store, 3);
    assert.deepEqual(
      again.list(runId).map((v) => v.version),
      [4, 5, 6],
    );
    assert.throws(() => new ModelVersions(store, 0), /whole number >= 1/);
    again.close();
    store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a version whose stored weights changed is refused, never returned', () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-versions-'));
  try {
    const store = new Store(join(dir, 's.db'));
    const runId = store.createRun({ model: 'linear' }, 1);
    const versions = new ModelVersions(store);
    commit(store, runId, 1);
    versions.record(runId, 1, spec, weights(1), 0.1);
    const raw = new Database(join(dir, 's.db'));
    const blob = Buffer.from(
      raw.prepare('SELECT weights FROM model_versions WHERE run_id = ? AND version = 1').pluck().get(runId) as Buffer,
    );
    blob[5] ^= 1;
    raw.prepare('UPDATE model_versions SET weights = ? WHERE run_id = ? AND version = 1').run(blob, runId);
    raw.close();
    for (const which of [1, 'latest'] as const) {
      assert.throws(
        () => versions.get(runId, which),
        (e: unknown) =>
          e instanceof ModelVersionCorruptError && /model version 1 of run 1 is corrupt/.test((e as Error).message),
      );
    }
    versions.close();
    store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
