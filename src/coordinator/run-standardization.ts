/**
 * The federation's feature statistics of a run with `standardize: 'federated'`: computed once by an analytics
 * pass before round 1, committed here before any node is told them, and read back by a restarted coordinator
 * (which reuses them rather than asking a different set of nodes). Every model version of the run carries
 * them. Its own table in the coordinator's SQLite file, on its own connection (the Store's schema is untouched).
 */
import Database from 'better-sqlite3';
import type { Store } from './store.js';

/** What scales a run's raw CSV features: (x - mean) / std per column (std 0: the column is only centred). */
export interface RunStandardization {
  columns: string[];
  mean: number[];
  std: number[];
  /** Rows summarised and the nodes that answered the pass. */
  count: number;
  nodes: number[];
}

const SCHEMA = `CREATE TABLE IF NOT EXISTS run_standardization (
  run_id INTEGER PRIMARY KEY,
  stats TEXT NOT NULL,
  created_at INTEGER NOT NULL
) STRICT`;

export class RunStandardizations {
  private readonly db: Database.Database;

  constructor(store: Store) {
    this.db = new Database(store.path, { timeout: 5000 });
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
  }

  get(runId: number): RunStandardization | undefined {
    const text = this.db.prepare('SELECT stats FROM run_standardization WHERE run_id = ?').pluck().get(runId);
    return typeof text === 'string' ? (JSON.parse(text) as RunStandardization) : undefined;
  }

  /** Commits the run's statistics; the first committed stay (a run is scaled one way for its whole life). */
  commit(runId: number, stats: RunStandardization, at = Date.now()): RunStandardization {
    this.db
      .prepare('INSERT OR IGNORE INTO run_standardization (run_id, stats, created_at) VALUES (?, ?, ?)')
      .run(runId, JSON.stringify(stats), at);
    return this.get(runId)!;
  }

  close(): void {
    this.db.close();
  }
}
