/**
 * The audit log: who did what to the control plane (runs created, paused, resumed, stopped; API tokens
 * created or revoked; nodes enrolled or refused), with the acting credential and the time, in SQLite.
 * Bounded so a flood cannot grow the file without limit: accepted actions keep the newest MAX_ENTRIES rows,
 * and refused attempts are not a row each but a counter per (source, action, time window), of which the
 * newest MAX_REFUSAL_ROWS are kept.
 */
import type Database from 'better-sqlite3';

export const MAX_ENTRIES = 10_000;
export const MAX_REFUSAL_ROWS = 2_000;
export const REFUSAL_WINDOW_MS = 60_000;
/** Rotation runs every this many writes (a DELETE per write would double the write cost). */
const ROTATE_EVERY = 100;

export type AuditAction =
  | 'run.created'
  | 'run.paused'
  | 'run.resumed'
  | 'run.stopped'
  | 'token.created'
  | 'token.revoked'
  | 'node.enrolled'
  | 'node.refused';

export interface AuditEntry {
  id: number;
  at: number;
  action: AuditAction;
  /** 'admin', a token id, 'node:<name>', 'public' (an open route), or 'join-token' for enrolment. */
  actor: string;
  source: string;
  detail: Record<string, unknown>;
}

export interface RefusalCount {
  source: string;
  action: string;
  windowStart: number;
  count: number;
  lastAt: number;
  lastReason: string;
}

export class AuditLog {
  private writes = 0;

  constructor(
    private readonly db: Database.Database,
    private readonly now = Date.now,
  ) {
    db.exec(`CREATE TABLE IF NOT EXISTS audit_log (
      id INTEGER PRIMARY KEY, at INTEGER NOT NULL, action TEXT NOT NULL, actor TEXT NOT NULL, source TEXT NOT NULL, detail TEXT NOT NULL
    ) STRICT;
    CREATE TABLE IF NOT EXISTS audit_refusals (
      source TEXT NOT NULL, action TEXT NOT NULL, window_start INTEGER NOT NULL, count INTEGER NOT NULL,
      last_at INTEGER NOT NULL, last_reason TEXT NOT NULL, PRIMARY KEY (source, action, window_start)
    ) STRICT`);
  }

  record(action: AuditAction, actor: string, source: string, detail: Record<string, unknown> = {}): void {
    this.db
      .prepare('INSERT INTO audit_log (at, action, actor, source, detail) VALUES (?, ?, ?, ?, ?)')
      .run(this.now(), action, actor, source.slice(0, 64), JSON.stringify(detail).slice(0, 2000));
    this.rotateNow();
  }

  /** A refused attempt: one more in its (source, action, window) counter. */
  refused(action: string, source: string, reason: string): void {
    const at = this.now();
    const windowStart = at - (at % REFUSAL_WINDOW_MS);
    this.db
      .prepare(`INSERT INTO audit_refusals (source, action, window_start, count, last_at, last_reason) VALUES (?, ?, ?, 1, ?, ?)
      ON CONFLICT (source, action, window_start) DO UPDATE SET count = count + 1, last_at = excluded.last_at, last_reason = excluded.last_reason`)
      .run(source.slice(0, 64), action.slice(0, 64), windowStart, at, reason.slice(0, 200));
    this.rotateNow();
  }

  entries(limit = 500): AuditEntry[] {
    const rows = this.db.prepare('SELECT * FROM audit_log ORDER BY id DESC LIMIT ?').all(limit) as (Omit<
      AuditEntry,
      'detail'
    > & { detail: string })[];
    return rows.map((r) => ({ ...r, detail: JSON.parse(r.detail) as Record<string, unknown> }));
  }

  refusals(limit = 500): RefusalCount[] {
    return this.db
      .prepare(`SELECT source, action, window_start AS windowStart, count, last_at AS lastAt, last_reason AS lastReason
      FROM audit_refusals ORDER BY last_at DESC LIMIT ?`)
      .all(limit) as RefusalCount[];
  }

  /** Drops all but the newest rows of both tables. */
  rotate(): void {
    this.db
      .prepare('DELETE FROM audit_log WHERE id <= (SELECT id FROM audit_log ORDER BY id DESC LIMIT 1 OFFSET ?)')
      .run(MAX_ENTRIES);
    this.db
      .prepare(`DELETE FROM audit_refusals WHERE rowid IN
      (SELECT rowid FROM audit_refusals ORDER BY last_at DESC LIMIT -1 OFFSET ?)`)
      .run(MAX_REFUSAL_ROWS);
  }

  private rotateNow(): void {
    if (++this.writes % ROTATE_EVERY === 0) this.rotate();
  }
}
