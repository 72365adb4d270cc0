/**
 * The model registry: every committed round of a run is a model version (version number = round number),
 * with its weights, the run's model spec, sha256 and test accuracy. It lives in its own table of the
 * coordinator's SQLite file (its own connection, so the Store's schema is untouched).
 *
 * Retention: the newest `keep` versions of each run (default 10) keep their weights; older rows are
 * deleted when a newer one is recorded. The Store itself keeps only the last checkpoint; this table is
 * what makes earlier versions downloadable. A version is recorded right after its round commits; the
 * newest checkpoint is also back-filled on first use, so a crash between the two loses no version.
 *
 * Integrity: each version's weights are hashed again on every read and compared with the sha256 stored
 * beside them; a damaged version throws (ModelVersionCorruptError) instead of being served or used.
 */
import Database from 'better-sqlite3';
import type { ModelSpec } from '../model/spec.js';
import { weightsSha256 } from '../model/hash.js';
import type { Store } from './store.js';
import type { ModelVersionInfo } from '../model/version-info.js';

export const DEFAULT_VERSIONS_KEPT = 10;

export type { ModelVersionInfo } from '../model/version-info.js';
export class ModelVersionCorruptError extends Error {
  constructor(runId: number, version: number, stored: string, actual: string) {
    super(
      `model version ${version} of run ${runId} is corrupt: its weights hash to ${actual.slice(0, 16)}..., ` +
        `the sha256 stored with them is ${stored.slice(0, 16)}...; it is not served (restore the database from a backup)`,
    );
    this.name = 'ModelVersionCorruptError';
  }
}

export interface ModelVersion extends ModelVersionInfo {
  spec: ModelSpec;
  weights: Float32Array;
}

interface Row {
  version: number;
  sha256: string;
  test_accuracy: number | null;
  created_at: number;
  spec: string;
  weights: Buffer;
}

const SCHEMA = `CREATE TABLE IF NOT EXISTS model_versions (
  run_id INTEGER NOT NULL,
  version INTEGER NOT NULL CHECK (version >= 1),
  sha256 TEXT NOT NULL,
  test_accuracy REAL,
  created_at INTEGER NOT NULL,
  spec TEXT NOT NULL,
  weights BLOB NOT NULL,
  PRIMARY KEY (run_id, version)
) STRICT`;

const info = (r: Row): ModelVersionInfo => ({
  version: r.version,
  round: r.version,
  sha256: r.sha256,
  testAccuracy: r.test_accuracy,
  createdAt: r.created_at,
});

export class ModelVersions {
  private readonly db: Database.Database;

  constructor(
    private readonly store: Store,
    private readonly keep = DEFAULT_VERSIONS_KEPT,
  ) {
    if (!Number.isInteger(keep) || keep < 1) throw new Error(`versions kept must be a whole number >= 1, got ${keep}`);
    // A ':memory:' store cannot be shared across connections, so its versions live in their own memory.
    this.db = new Database(store.path, { timeout: 5000 });
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
  }

  /** Records version `round` of the run (idempotent) and drops versions beyond the retention. */
  record(
    runId: number,
    round: number,
    spec: ModelSpec,
    weights: Float32Array,
    testAccuracy: number | null,
    at = Date.now(),
  ): void {
    const acc = testAccuracy !== null && Number.isFinite(testAccuracy) ? testAccuracy : null;
    const blob = Buffer.from(weights.buffer, weights.byteOffset, weights.byteLength);
    this.db
      .transaction(() => {
        this.db
          .prepare(
            'INSERT OR IGNORE INTO model_versions (run_id, version, sha256, test_accuracy, created_at, spec, weights) VALUES (?, ?, ?, ?, ?, ?, ?)',
          )
          .run(runId, round, weightsSha256(weights), acc, at, JSON.stringify(spec), blob);
        this.db
          .prepare(
            'DELETE FROM model_versions WHERE run_id = ? AND version <= (SELECT MAX(version) FROM model_versions WHERE run_id = ?) - ?',
          )
          .run(runId, runId, this.keep);
      })
      .immediate();
  }

  /** The newest checkpoint as a version, when it is missing (first use, or a crash right after a commit). */
  private backfill(runId: number, spec: ModelSpec | undefined): void {
    if (!spec) return;
    const run = this.store.getRun(runId);
    if (!run || run.roundsCompleted === 0) return;
    const have = this.db
      .prepare('SELECT 1 FROM model_versions WHERE run_id = ? AND version = ?')
      .pluck()
      .get(runId, run.roundsCompleted);
    if (have) return;
    const ckpt = this.store.lastCheckpoint(runId);
    if (!ckpt) return;
    const rec = this.store.roundRecords<{ testAccuracy?: number }>(runId).at(-1);
    this.record(runId, ckpt.round, spec, ckpt.weights, rec?.testAccuracy ?? null);
  }

  /** Versions kept for the run, oldest first. `spec` (the run's, if known) lets the newest checkpoint be back-filled. */
  list(runId: number, spec?: ModelSpec): ModelVersionInfo[] {
    this.backfill(runId, spec);
    return (
      this.db
        .prepare(
          'SELECT version, sha256, test_accuracy, created_at FROM model_versions WHERE run_id = ? ORDER BY version',
        )
        .all(runId) as Row[]
    ).map(info);
  }

  /** One version with its weights, or the newest for 'latest'; undefined when not kept. */
  get(runId: number, version: number | 'latest', spec?: ModelSpec): ModelVersion | undefined {
    this.backfill(runId, spec);
    const row = (
      version === 'latest'
        ? this.db.prepare('SELECT * FROM model_versions WHERE run_id = ? ORDER BY version DESC LIMIT 1').get(runId)
        : this.db.prepare('SELECT * FROM model_versions WHERE run_id = ? AND version = ?').get(runId, version)
    ) as Row | undefined;
    if (!row) return undefined;
    const weights = new Float32Array(
      row.weights.buffer.slice(row.weights.byteOffset, row.weights.byteOffset + row.weights.byteLength),
    );
    const actual = weightsSha256(weights);
    if (actual !== row.sha256) throw new ModelVersionCorruptError(runId, row.version, row.sha256, actual);
    return { ...info(row), spec: JSON.parse(row.spec) as ModelSpec, weights };
  }

  close(): void {
    this.db.close();
  }
}
