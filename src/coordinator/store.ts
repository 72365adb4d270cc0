/**
 * The coordinator's persistence: runs, the node registry, committed rounds with their checkpoint,
 * per-node traffic and an append-only event log, in one SQLite file (better-sqlite3, synchronous API).
 *
 * Durability: WAL journal with synchronous=FULL, so once a write method returns its transaction is on
 * disk and survives a SIGKILL or power loss; foreign keys on; a busy timeout so a second process waits
 * for a lock instead of failing at once. Every method that writes does so in ONE immediate transaction,
 * and every argument is validated before anything is written, so a method that throws changes nothing.
 *
 * Rounds: `commitRound` accepts round r of a run only when r = roundsCompleted + 1, and in the same
 * transaction stores the round's record, replaces the run's checkpoint, bumps roundsCompleted and adds
 * the traffic rows. A committed round is therefore never lost (the commit is durable) nor repeated (the
 * next commit must be the next round), and the checkpoint always belongs to the last committed round.
 *
 * Checkpoint blob: one wire frame (core/wire.ts), type 'checkpoint', header
 *   { round, runId, state: { name, round, hyper }, extra }
 * with tensors 'weights' and 'slot:<name>' for each optimizer slot (float32, shape [length]); floats never
 * pass through JSON, so a restore is bit-identical. A SHA-256 of the blob is stored beside it and checked
 * on every read, so a damaged blob is reported as corrupt rather than decoded into wrong weights.
 *
 * JSON documents (config, round records, resources, event data, checkpoint extra) must be plain data;
 * NaN, +-Infinity and -0 are kept exactly (see jsonReplacer), as round records carry NaN metrics.
 *
 * Schema: versioned through `meta.schema_version`. A new store is created only where no file exists; an
 * existing file that is empty (0 bytes), not SQLite, SQLite without EdgeFed's tables, or of a newer schema
 * version throws a StoreError: a damaged or foreign file is never silently treated as a new, empty store.
 *
 * Files: the database and its -wal/-shm files are owner-only (0600): they hold run configs and key hashes.
 */
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, existsSync, openSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { ServerOptState } from '../core/server-opt.js';
import { decodeFrame, encodeFrame, type WireTensor } from '../core/wire.js';
import type { EventView, NodeRecord, RunView } from './live-protocol.js';

export const SCHEMA_VERSION = 1;
export const RUN_STATUSES = ['created', 'running', 'paused', 'stopped', 'completed', 'failed'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/** Longest name (node names, event kinds, tag keys, slot names). */
export const MAX_NAME_LENGTH = 128;
/** Longest tag value. */
export const MAX_TAG_VALUE_LENGTH = 1024;
/** Largest JSON document (config, round record, resources, event data), in UTF-8 bytes. */
export const MAX_JSON_BYTES = 16 * 1024 * 1024;
/** Run error messages longer than this are cut (recording a failure must not fail on its length). */
export const MAX_ERROR_LENGTH = 4096;
/** Most events one `events` call returns. */
export const MAX_EVENT_LIMIT = 10_000;

export type StoreErrorCode = 'invalid' | 'not_found' | 'conflict' | 'corrupt' | 'schema' | 'open';

export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

/** A run as stored (the live feed's RunView, with its status narrowed). */
export interface RunInfo extends RunView {
  status: RunStatus;
}

export type NodeInfo = NodeRecord;

export interface NodeEnrolment {
  resources: Record<string, unknown>;
  tags: Record<string, string>;
}

export interface Checkpoint {
  weights: Float32Array;
  strategyState: ServerOptState;
  extra?: Record<string, unknown>;
}

export interface StoredCheckpoint {
  round: number;
  weights: Float32Array;
  strategyState: ServerOptState;
  /** As given to commitRound; {} when none was given. */
  extra: Record<string, unknown>;
}

export interface TrafficEntry {
  nodeId: number;
  /** Added to the node's bytesSent. */
  sent: number;
  /** Added to the node's bytesReceived. */
  received: number;
  /** Whether the node's update went into the round (bumps roundsContributed). */
  contributed: boolean;
}

export interface TrafficRow extends TrafficEntry {
  round: number;
}

/** An event as stored: the live feed's EventView (defined there, browser-safe). */
export type StoreEvent = EventView;

/** What a committed write changed (see Store.onChange): what the live feed and /metrics follow. */
export type StoreChange =
  | { kind: 'run'; run: RunInfo }
  | { kind: 'round'; runId: number; round: number; record: Record<string, unknown> }
  | { kind: 'event'; event: StoreEvent };

export interface StoreOptions {
  /** How long a write waits for another connection's lock, in ms (default 5000). */
  busyTimeoutMs?: number;
  /** The clock for timestamps (default Date.now); must return whole milliseconds. */
  now?: () => number;
}

export interface StoreSettings {
  journalMode: string;
  synchronous: number;
  foreignKeys: boolean;
  busyTimeoutMs: number;
  schemaVersion: number;
}

// ---------- validation ----------

function describe(v: unknown): string {
  if (typeof v === 'string') return `'${v.length > 40 ? `${v.slice(0, 40)}...` : v}'`;
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v === 'object' ? Object.prototype.toString.call(v).slice(8, -1) : typeof v}`;
}

function invalid(message: string): never {
  throw new StoreError('invalid', message);
}

function checkId(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    invalid(`${what} must be a whole number >= 0, got ${describe(v)}`);
  return v;
}

function checkCount(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    invalid(`${what} must be a whole number >= 0, got ${describe(v)}`);
  return v;
}

function checkName(v: unknown, what: string, max = MAX_NAME_LENGTH): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max)
    invalid(`${what} must be a string of 1 to ${max} characters, got ${describe(v)}`);
  return v;
}

/** Plain object: {} literal, Object.create(null), or one from another realm; not a class instance. */
function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as object | null;
  return proto === null || Object.getPrototypeOf(proto) === null;
}

/**
 * JSON cannot hold NaN, +-Infinity or -0, yet round records carry NaN (a metric that was not measured).
 * So the store writes them as strings with a NUL prefix ("\u0000NaN", "\u0000Infinity", "\u0000-Infinity",
 * "\u0000-0"), and a genuine string that starts with NUL gets one more NUL; reading undoes both. Every
 * number and string therefore comes back exactly as it was given.
 */
const NUL = '\u0000';
const SPECIAL_NUMBERS: ReadonlyMap<string, number> = new Map([
  ['NaN', NaN],
  ['Infinity', Infinity],
  ['-Infinity', -Infinity],
  ['-0', -0],
]);

function jsonReplacer(_key: string, v: unknown): unknown {
  if (typeof v === 'number' && (!Number.isFinite(v) || Object.is(v, -0)))
    return NUL + (Object.is(v, -0) ? '-0' : String(v));
  if (typeof v === 'string' && v.startsWith(NUL)) return NUL + v;
  return v;
}

function jsonReviver(_key: string, v: unknown): unknown {
  if (typeof v !== 'string' || !v.startsWith(NUL)) return v;
  if (v.startsWith(NUL, 1)) return v.slice(1);
  const n = SPECIAL_NUMBERS.get(v.slice(1));
  return n === undefined ? v : n;
}

/** Parses JSON the store wrote, restoring NaN, +-Infinity and -0. */
function parseJson<T = unknown>(text: string): T {
  return JSON.parse(text, jsonReviver) as T;
}

/**
 * Checks that `value` is JSON data (null, booleans, numbers, strings, arrays, plain objects; object
 * properties that are undefined are dropped, as JSON.stringify does) and returns the text to store.
 */
function toJson(value: unknown, what: string, maxBytes = MAX_JSON_BYTES): string {
  const stack = new Set<object>();
  const walk = (v: unknown, path: string): void => {
    if (v === null || typeof v === 'string' || typeof v === 'boolean' || typeof v === 'number') return;
    if (typeof v !== 'object') invalid(`${path} is ${describe(v)}, which JSON cannot hold`);
    if (stack.has(v)) invalid(`${path} refers back to itself (a cycle)`);
    stack.add(v);
    if (Array.isArray(v)) {
      v.forEach((x, i) => {
        if (x === undefined) invalid(`${path}[${i}] is undefined, which JSON cannot hold`);
        walk(x, `${path}[${i}]`);
      });
    } else {
      if (!isPlainObject(v))
        invalid(
          `${path} is ${describe(v)}; only plain objects, arrays, strings, numbers, booleans and null are stored`,
        );
      for (const [k, x] of Object.entries(v)) if (x !== undefined) walk(x, `${path}.${k}`);
    }
    stack.delete(v);
  };
  if (value === undefined) invalid(`${what} is undefined, which JSON cannot hold`);
  walk(value, what);
  const text = JSON.stringify(value, jsonReplacer);
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > maxBytes) invalid(`${what} is ${bytes} bytes of JSON, more than the limit of ${maxBytes}`);
  return text;
}

function toJsonObject(value: unknown, what: string, maxBytes = MAX_JSON_BYTES): string {
  if (!isPlainObject(value)) invalid(`${what} must be a plain object, got ${describe(value)}`);
  return toJson(value, what, maxBytes);
}

function isFloat32Array(v: unknown): v is Float32Array {
  return Object.prototype.toString.call(v) === '[object Float32Array]';
}

function checkTags(tags: unknown): string {
  if (!isPlainObject(tags)) invalid(`tags must be a plain object of strings, got ${describe(tags)}`);
  for (const [k, v] of Object.entries(tags)) {
    checkName(k, 'a tag name');
    checkName(v, `tag '${k}'`, MAX_TAG_VALUE_LENGTH);
  }
  return JSON.stringify(tags);
}

function checkStatus(v: unknown): RunStatus {
  if (typeof v !== 'string' || !(RUN_STATUSES as readonly string[]).includes(v))
    invalid(`run status must be one of ${RUN_STATUSES.join(', ')}; got ${describe(v)}`);
  return v as RunStatus;
}

/** Event kinds whose data has a known shape are checked against it. */
const EVENT_SHAPES: Readonly<Record<string, readonly string[]>> = {
  late_update: ['nodeId', 'forRound', 'atRound'],
};

// ---------- schema ----------

const STATUS_LIST = RUN_STATUSES.map((s) => `'${s}'`).join(', ');

const SCHEMA_V1 = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  config TEXT NOT NULL,
  seed INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN (${STATUS_LIST})),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  rounds_completed INTEGER NOT NULL DEFAULT 0 CHECK (rounds_completed >= 0),
  error TEXT
) STRICT;
CREATE TABLE nodes (
  id INTEGER PRIMARY KEY CHECK (id >= 0),
  name TEXT NOT NULL UNIQUE,
  resources TEXT NOT NULL,
  tags TEXT NOT NULL,
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  rounds_contributed INTEGER NOT NULL DEFAULT 0,
  bytes_sent INTEGER NOT NULL DEFAULT 0,
  bytes_received INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE TABLE rounds (
  run_id INTEGER NOT NULL REFERENCES runs(id),
  round INTEGER NOT NULL CHECK (round >= 1),
  record TEXT NOT NULL,
  committed_at INTEGER NOT NULL,
  PRIMARY KEY (run_id, round)
) STRICT;
CREATE TABLE checkpoints (
  run_id INTEGER PRIMARY KEY REFERENCES runs(id),
  round INTEGER NOT NULL,
  frame BLOB NOT NULL,
  sha256 TEXT NOT NULL,
  saved_at INTEGER NOT NULL,
  FOREIGN KEY (run_id, round) REFERENCES rounds(run_id, round)
) STRICT;
CREATE TABLE node_traffic (
  run_id INTEGER NOT NULL,
  round INTEGER NOT NULL,
  node_id INTEGER NOT NULL REFERENCES nodes(id),
  sent INTEGER NOT NULL CHECK (sent >= 0),
  received INTEGER NOT NULL CHECK (received >= 0),
  contributed INTEGER NOT NULL CHECK (contributed IN (0, 1)),
  PRIMARY KEY (run_id, round, node_id),
  FOREIGN KEY (run_id, round) REFERENCES rounds(run_id, round)
) STRICT;
CREATE INDEX node_traffic_node ON node_traffic(node_id);
CREATE TABLE events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id INTEGER REFERENCES runs(id),
  at INTEGER NOT NULL,
  kind TEXT NOT NULL,
  data TEXT NOT NULL
) STRICT;
CREATE INDEX events_run ON events(run_id, id);
CREATE TABLE join_tokens (
  token_hash TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_by TEXT,
  used_at INTEGER
) STRICT;
CREATE TABLE node_keys (
  name TEXT PRIMARY KEY,
  public_key TEXT NOT NULL,
  enrolled_at INTEGER NOT NULL
) STRICT;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER rounds_no_update BEFORE UPDATE ON rounds BEGIN SELECT RAISE(ABORT, 'committed rounds are immutable'); END;
CREATE TRIGGER rounds_no_delete BEFORE DELETE ON rounds BEGIN SELECT RAISE(ABORT, 'committed rounds are immutable'); END;
`;

// ---------- rows ----------

interface RunRow {
  id: number;
  config: string;
  seed: number;
  status: RunStatus;
  created_at: number;
  updated_at: number;
  rounds_completed: number;
  error: string | null;
}

interface NodeRow {
  id: number;
  name: string;
  resources: string;
  tags: string;
  first_seen: number;
  last_seen: number;
  rounds_contributed: number;
  bytes_sent: number;
  bytes_received: number;
}

interface EventRow {
  id: number;
  run_id: number | null;
  at: number;
  kind: string;
  data: string;
}

function runFromRow(row: RunRow): RunInfo {
  const out: RunInfo = {
    id: row.id,
    config: parseJson(row.config),
    seed: row.seed,
    status: row.status,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    roundsCompleted: row.rounds_completed,
  };
  if (row.error !== null) out.error = row.error;
  return out;
}

function nodeFromRow(row: NodeRow): NodeInfo {
  return {
    id: row.id,
    name: row.name,
    resources: parseJson<Record<string, unknown>>(row.resources),
    tags: JSON.parse(row.tags) as Record<string, string>,
    firstSeen: row.first_seen,
    lastSeen: row.last_seen,
    roundsContributed: row.rounds_contributed,
    bytesSent: row.bytes_sent,
    bytesReceived: row.bytes_received,
  };
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Creates the store's file, owner-only, when none exists (true: a new store); refuses an empty existing file,
 * which is what a truncated database looks like (SQLite would take it for a new one).
 */
function createOwnerOnly(path: string): boolean {
  if (existsSync(path)) {
    if (statSync(path).size === 0) {
      throw new StoreError(
        'open',
        `${path} is empty (0 bytes): not an EdgeFed store (a truncated database?); restore it from a backup, or delete it to start a new store`,
      );
    }
    return false;
  }
  try {
    closeSync(openSync(path, 'wx', 0o600));
  } catch (e) {
    throw new StoreError('open', `cannot create store at ${path}: ${(e as Error).message}`);
  }
  return true;
}

export class Store {
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly busyTimeoutMs: number;

  /** Opens (creating if needed) the store at `path`; ':memory:' gives a private in-memory store. */
  constructor(
    readonly path: string,
    options: StoreOptions = {},
  ) {
    if (typeof path !== 'string' || path.length === 0)
      invalid(`store path must be a non-empty string, got ${describe(path)}`);
    this.busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    if (!Number.isSafeInteger(this.busyTimeoutMs) || this.busyTimeoutMs < 0)
      invalid(`busyTimeoutMs must be a whole number >= 0, got ${describe(options.busyTimeoutMs)}`);
    this.now = options.now ?? Date.now;
    const onDisk = path !== ':memory:' && !path.startsWith('file:');
    const created = onDisk && createOwnerOnly(path);
    try {
      this.db = new Database(path, { timeout: this.busyTimeoutMs });
    } catch (e) {
      throw new StoreError('open', `cannot open store at ${path}: ${(e as Error).message}`);
    }
    try {
      this.db.pragma(`busy_timeout = ${this.busyTimeoutMs}`);
      // Before any pragma that writes (journal_mode rewrites the header): a foreign file stays as it was.
      if (onDisk && !created) this.refuseForeign();
      const mode = String(this.db.pragma('journal_mode = WAL', { simple: true }));
      if (mode !== 'wal' && !this.db.memory)
        throw new StoreError('open', `store at ${path} cannot use WAL journaling (journal_mode is '${mode}')`);
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      this.migrate();
      if (onDisk) for (const f of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
    } catch (e) {
      this.db.close();
      if (e instanceof StoreError) throw e;
      throw new StoreError('open', `cannot open store at ${path}: ${(e as Error).message}`);
    }
  }

  private tables(): string[] {
    return this.db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
      .pluck()
      .all() as string[];
  }

  /** An existing file must already be an EdgeFed store: it is never initialised as a new one. */
  private refuseForeign(): void {
    const tables = this.tables();
    if (tables.length === 0) {
      throw new StoreError(
        'schema',
        `${this.path} is a SQLite database without EdgeFed's tables, not an EdgeFed store: move it away or choose another file`,
      );
    }
    if (!tables.includes('meta'))
      throw new StoreError('schema', `${this.path} is not an EdgeFed store (it has tables but no meta table)`);
  }

  private migrate(): void {
    this.db
      .transaction(() => {
        const tables = this.tables();
        if (tables.length === 0) {
          this.db.exec(SCHEMA_V1);
          this.db
            .prepare('INSERT INTO meta (key, value) VALUES (?, ?), (?, ?)')
            .run('schema_version', String(SCHEMA_VERSION), 'app', 'edgefed');
          return;
        }
        if (!tables.includes('meta'))
          throw new StoreError('schema', `${this.path} is not an EdgeFed store (it has tables but no meta table)`);
        const text = this.db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get() as
          | string
          | undefined;
        const version = Number(text);
        if (text === undefined || !/^\d+$/.test(text) || !Number.isSafeInteger(version) || version < 1) {
          throw new StoreError(
            'schema',
            `${this.path} has no valid schema_version in its meta table (got ${describe(text)})`,
          );
        }
        if (version > SCHEMA_VERSION) {
          throw new StoreError(
            'schema',
            `${this.path} has schema version ${version}, newer than this EdgeFed supports (${SCHEMA_VERSION}); upgrade EdgeFed to open it`,
          );
        }
        // version === SCHEMA_VERSION: nothing to do. Later versions add their migrations here, in order.
      })
      .immediate();
  }

  private readonly statements = new Map<string, Database.Statement<unknown[]>>();
  private readonly changeListeners = new Set<(change: StoreChange) => void>();

  /**
   * Calls `listener` after each committed change to a run, round or event (never for a write that threw).
   * A listener that throws is ignored: observers must not break persistence. Returns the unsubscribe.
   */
  onChange(listener: (change: StoreChange) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  private changed(make: () => StoreChange): void {
    if (this.changeListeners.size === 0) return;
    let change: StoreChange;
    try {
      change = make();
    } catch {
      return; // the write is committed; a change that cannot be read back is not announced
    }
    for (const l of [...this.changeListeners]) {
      try {
        l(change);
      } catch {
        // an observer's failure is its own
      }
    }
  }

  /** A prepared statement, prepared once per connection. */
  private sql(source: string): Database.Statement<unknown[]> {
    let st = this.statements.get(source);
    if (!st) {
      st = this.db.prepare(source);
      this.statements.set(source, st);
    }
    return st;
  }

  private timestamp(): number {
    const t = this.now();
    if (!Number.isSafeInteger(t) || t < 0)
      throw new StoreError('invalid', `the store's clock returned ${describe(t)}, not whole milliseconds`);
    return t;
  }

  private runRow(id: number): RunRow | undefined {
    return this.sql('SELECT * FROM runs WHERE id = ?').get(id) as RunRow | undefined;
  }

  private mustRun(id: number): RunRow {
    const row = this.runRow(id);
    if (!row) throw new StoreError('not_found', `run ${id} does not exist`);
    return row;
  }

  /** Current connection settings (for diagnostics and tests). */
  settings(): StoreSettings {
    return {
      journalMode: String(this.db.pragma('journal_mode', { simple: true })),
      synchronous: Number(this.db.pragma('synchronous', { simple: true })),
      foreignKeys: Number(this.db.pragma('foreign_keys', { simple: true })) === 1,
      busyTimeoutMs: Number(this.db.pragma('busy_timeout', { simple: true })),
      schemaVersion: Number(this.sql("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get()),
    };
  }

  // ---------- runs ----------

  /** Creates a run in status 'created' and returns its id (1, 2, ...; never reused). */
  createRun(config: unknown, seed: number): number {
    const text = toJson(config, 'config');
    if (typeof seed !== 'number' || !Number.isSafeInteger(seed))
      invalid(`seed must be a whole number, got ${describe(seed)}`);
    const id = this.db
      .transaction(() => {
        const t = this.timestamp();
        const result = this.sql(
          "INSERT INTO runs (config, seed, status, created_at, updated_at) VALUES (?, ?, 'created', ?, ?)",
        ).run(text, seed, t, t);
        return Number(result.lastInsertRowid);
      })
      .immediate();
    this.changed(() => ({ kind: 'run', run: runFromRow(this.mustRun(id)) }));
    return id;
  }

  getRun(id: number): RunInfo | undefined {
    checkId(id, 'run id');
    const row = this.runRow(id);
    return row ? runFromRow(row) : undefined;
  }

  listRuns(): RunInfo[] {
    return (this.sql('SELECT * FROM runs ORDER BY id').all() as RunRow[]).map(runFromRow);
  }

  /**
   * Sets a run's status. `error` (cut to MAX_ERROR_LENGTH characters) is stored with it; a call without
   * one clears the previous error. Any status may follow any other: the coordinator owns the lifecycle.
   */
  setRunStatus(id: number, status: RunStatus, error?: string): void {
    checkId(id, 'run id');
    checkStatus(status);
    if (error !== undefined && typeof error !== 'string') invalid(`error must be a string, got ${describe(error)}`);
    const message =
      error === undefined
        ? null
        : error.length > MAX_ERROR_LENGTH
          ? `${error.slice(0, MAX_ERROR_LENGTH - 3)}...`
          : error;
    this.db
      .transaction(() => {
        this.mustRun(id);
        this.sql('UPDATE runs SET status = ?, error = ?, updated_at = ? WHERE id = ?').run(
          status,
          message,
          this.timestamp(),
          id,
        );
      })
      .immediate();
    this.changed(() => ({ kind: 'run', run: runFromRow(this.mustRun(id)) }));
  }

  // ---------- nodes ----------

  /**
   * Enrols `name` (id = number of nodes enrolled before it) or, if known, updates its resources and
   * tags; either way lastSeen becomes now. Returns the node's id, the same for the same name forever.
   */
  upsertNode(name: string, info: NodeEnrolment): number {
    return this.upsertNodes([{ name, info }])[0];
  }

  /**
   * upsertNode for many nodes in ONE transaction, so one commit (one fsync) enrols a group of hellos that arrive
   * together: 10,000 nodes connecting at once cost 10,000 fsyncs on the event loop otherwise. Every entry is
   * checked before anything is written; ids follow the entries' order, as the same calls one by one would give.
   */
  upsertNodes(entries: readonly { name: string; info: NodeEnrolment }[]): number[] {
    const rows = entries.map(({ name, info }) => {
      checkName(name, 'node name');
      if (!isPlainObject(info)) invalid(`node info must be { resources, tags }, got ${describe(info)}`);
      return { name, resources: toJsonObject(info.resources, 'resources'), tags: checkTags(info.tags) };
    });
    return this.db
      .transaction(() => {
        const t = this.timestamp();
        const find = this.sql('SELECT id FROM nodes WHERE name = ?').pluck();
        const update = this.sql('UPDATE nodes SET resources = ?, tags = ?, last_seen = max(last_seen, ?) WHERE id = ?');
        const insert = this.sql(
          'INSERT INTO nodes (id, name, resources, tags, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?)',
        );
        return rows.map(({ name, resources, tags }) => {
          const existing = find.get(name) as number | undefined;
          if (existing !== undefined) {
            update.run(resources, tags, t, existing);
            return existing;
          }
          const id = this.sql('SELECT coalesce(max(id) + 1, 0) FROM nodes').pluck().get() as number;
          insert.run(id, name, resources, tags, t, t);
          return id;
        });
      })
      .immediate();
  }

  /** Stores a one-time join token (by its hash) valid until expiresAt (ms). */
  createJoinToken(tokenHash: string, expiresAt: number): void {
    if (!/^[0-9a-f]{64}$/.test(tokenHash)) invalid('token hash must be 64 hex digits');
    checkCount(expiresAt, 'expiresAt');
    this.sql('INSERT INTO join_tokens (token_hash, created_at, expires_at) VALUES (?, ?, ?)').run(
      tokenHash,
      this.timestamp(),
      expiresAt,
    );
  }

  /**
   * Spends a join token to bind `name` to `publicKey` (hex). One transaction: the token must exist, be
   * unused and unexpired, and the name must not already be bound to another key; otherwise nothing changes.
   */
  redeemJoinToken(tokenHash: string, name: string, publicKey: string): void {
    checkName(name, 'node name');
    if (!/^[0-9a-f]{64}$/.test(publicKey)) invalid('public key must be 64 hex digits');
    this.db
      .transaction(() => {
        const t = this.timestamp();
        const row = this.sql('SELECT expires_at, used_by FROM join_tokens WHERE token_hash = ?').get(tokenHash) as
          | { expires_at: number; used_by: string | null }
          | undefined;
        if (!row) throw new StoreError('not_found', 'unknown join token');
        if (row.used_by !== null) throw new StoreError('conflict', 'join token already used');
        if (row.expires_at < t) throw new StoreError('conflict', 'join token expired');
        const bound = this.sql('SELECT public_key FROM node_keys WHERE name = ?').pluck().get(name) as
          | string
          | undefined;
        if (bound !== undefined && bound !== publicKey)
          throw new StoreError('conflict', `node name '${name}' is enrolled with another key`);
        this.sql('UPDATE join_tokens SET used_by = ?, used_at = ? WHERE token_hash = ?').run(name, t, tokenHash);
        this.sql('INSERT OR REPLACE INTO node_keys (name, public_key, enrolled_at) VALUES (?, ?, ?)').run(
          name,
          publicKey,
          t,
        );
      })
      .immediate();
  }

  /** The public key (hex) a node name enrolled with, if any. */
  nodeKey(name: string): string | undefined {
    return this.sql('SELECT public_key FROM node_keys WHERE name = ?').pluck().get(name) as string | undefined;
  }

  /**
   * touchNode for many nodes in one transaction (the coordinator's periodic liveness write). With durable
   * false the commit skips its fsync (synchronous=NORMAL for this one transaction): the rows reach the disk with
   * the next durable commit or checkpoint, and a power loss before that loses only these last-seen times.
   */
  touchNodes(entries: readonly { id: number; atMs: number }[], durable = true): void {
    for (const e of entries) {
      checkId(e.id, 'node id');
      checkCount(e.atMs, 'atMs');
    }
    if (!durable) this.db.pragma('synchronous = NORMAL');
    try {
      this.db
        .transaction(() => {
          const stmt = this.sql('UPDATE nodes SET last_seen = max(last_seen, ?) WHERE id = ?');
          for (const e of entries) stmt.run(e.atMs, e.id);
        })
        .immediate();
    } finally {
      if (!durable) this.db.pragma('synchronous = FULL');
    }
  }

  /** Records that node `id` was heard from at `atMs`; lastSeen never moves backwards. */
  touchNode(id: number, atMs: number): void {
    checkId(id, 'node id');
    checkCount(atMs, 'atMs');
    this.db
      .transaction(() => {
        const result = this.sql('UPDATE nodes SET last_seen = max(last_seen, ?) WHERE id = ?').run(atMs, id);
        if (result.changes === 0) throw new StoreError('not_found', `node ${id} is not enrolled`);
      })
      .immediate();
  }

  getNode(id: number): NodeInfo | undefined {
    checkId(id, 'node id');
    const row = this.sql('SELECT * FROM nodes WHERE id = ?').get(id) as NodeRow | undefined;
    return row ? nodeFromRow(row) : undefined;
  }

  listNodes(): NodeInfo[] {
    return (this.sql('SELECT * FROM nodes ORDER BY id').all() as NodeRow[]).map(nodeFromRow);
  }

  // ---------- rounds and checkpoints ----------

  private encodeCheckpoint(runId: number, round: number, cp: Checkpoint): Uint8Array {
    if (!isPlainObject(cp)) invalid(`checkpoint must be { weights, strategyState, extra? }, got ${describe(cp)}`);
    if (!isFloat32Array(cp.weights)) invalid(`checkpoint.weights must be a Float32Array, got ${describe(cp.weights)}`);
    const state = cp.strategyState;
    if (typeof state !== 'object' || state === null)
      invalid(`checkpoint.strategyState must be an object, got ${describe(state)}`);
    checkName(state.name, 'strategyState.name');
    checkCount(state.round, 'strategyState.round');
    if (!isPlainObject(state.hyper))
      invalid(`strategyState.hyper must be a plain object, got ${describe(state.hyper)}`);
    for (const [k, v] of Object.entries(state.hyper)) {
      checkName(k, 'a hyper-parameter name');
      if (typeof v !== 'number' || !Number.isFinite(v))
        invalid(`strategyState.hyper.${k} must be a finite number, got ${describe(v)}`);
    }
    if (!isPlainObject(state.slots))
      invalid(`strategyState.slots must be a plain object of Float32Arrays, got ${describe(state.slots)}`);
    const tensors: WireTensor[] = [{ name: 'weights', dtype: 'float32', shape: [cp.weights.length], data: cp.weights }];
    for (const [k, v] of Object.entries(state.slots)) {
      checkName(k, 'a slot name');
      if (!isFloat32Array(v)) invalid(`strategyState.slots.${k} must be a Float32Array, got ${describe(v)}`);
      tensors.push({ name: `slot:${k}`, dtype: 'float32', shape: [v.length], data: v });
    }
    // extra travels in the frame header in the store's JSON encoding (so NaN and -0 survive).
    const extra = JSON.parse(toJsonObject(cp.extra ?? {}, 'checkpoint.extra', 1024 * 1024 - 4096)) as Record<
      string,
      unknown
    >;
    const header = { round, runId, state: { name: state.name, round: state.round, hyper: { ...state.hyper } }, extra };
    try {
      return encodeFrame('checkpoint', header, tensors);
    } catch (e) {
      throw new StoreError('invalid', `checkpoint cannot be encoded: ${(e as Error).message}`);
    }
  }

  /**
   * Commits round `round` of run `runId` in one transaction (see the file comment). Throws, changing
   * nothing, unless round = roundsCompleted + 1, every traffic node is enrolled and appears once, and
   * every argument is valid. `record.round`, if present, must equal `round`.
   */
  commitRound(runId: number, round: number, record: object, checkpoint: Checkpoint, traffic: TrafficEntry[]): void {
    checkId(runId, 'run id');
    if (typeof round !== 'number' || !Number.isSafeInteger(round) || round < 1)
      invalid(`round must be a whole number >= 1, got ${describe(round)}`);
    const recordText = toJsonObject(record, 'round record');
    const rec = record as Record<string, unknown>;
    if (rec.round !== undefined && rec.round !== round)
      invalid(`round record says round ${describe(rec.round)} but is committed as round ${round}`);
    const frame = this.encodeCheckpoint(runId, round, checkpoint);
    const blob = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
    const digest = sha256(blob);
    if (!Array.isArray(traffic)) invalid(`traffic must be an array, got ${describe(traffic)}`);
    const seen = new Set<number>();
    const rows = traffic.map((e, i) => {
      if (!isPlainObject(e))
        invalid(`traffic[${i}] must be { nodeId, sent, received, contributed }, got ${describe(e)}`);
      const nodeId = checkId(e.nodeId, `traffic[${i}].nodeId`);
      if (seen.has(nodeId)) invalid(`traffic lists node ${nodeId} twice`);
      seen.add(nodeId);
      const sent = checkCount(e.sent, `traffic[${i}].sent`);
      const received = checkCount(e.received, `traffic[${i}].received`);
      if (typeof e.contributed !== 'boolean')
        invalid(`traffic[${i}].contributed must be true or false, got ${describe(e.contributed)}`);
      return { nodeId, sent, received, contributed: e.contributed ? 1 : 0 };
    });
    this.db
      .transaction(() => {
        const run = this.mustRun(runId);
        if (round <= run.rounds_completed)
          throw new StoreError(
            'conflict',
            `round ${round} of run ${runId} is already committed (rounds completed: ${run.rounds_completed})`,
          );
        if (round !== run.rounds_completed + 1)
          throw new StoreError(
            'conflict',
            `run ${runId} has ${run.rounds_completed} rounds committed, so the next round is ${run.rounds_completed + 1}, not ${round}`,
          );
        const t = this.timestamp();
        try {
          this.sql('INSERT INTO rounds (run_id, round, record, committed_at) VALUES (?, ?, ?, ?)').run(
            runId,
            round,
            recordText,
            t,
          );
        } catch (e) {
          if ((e as { code?: string }).code?.startsWith('SQLITE_CONSTRAINT'))
            throw new StoreError('conflict', `round ${round} of run ${runId} is already committed`);
          throw e;
        }
        this.sql(`INSERT INTO checkpoints (run_id, round, frame, sha256, saved_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (run_id) DO UPDATE SET round = excluded.round, frame = excluded.frame, sha256 = excluded.sha256, saved_at = excluded.saved_at`).run(
          runId,
          round,
          blob,
          digest,
          t,
        );
        this.sql('UPDATE runs SET rounds_completed = ?, updated_at = ? WHERE id = ?').run(round, t, runId);
        const addTraffic = this.sql(
          'INSERT INTO node_traffic (run_id, round, node_id, sent, received, contributed) VALUES (?, ?, ?, ?, ?, ?)',
        );
        const bump = this.sql(
          'UPDATE nodes SET bytes_sent = bytes_sent + ?, bytes_received = bytes_received + ?, rounds_contributed = rounds_contributed + ? WHERE id = ?',
        );
        // The node's own row is updated anyway: an update that finds no row is how an unknown node shows (the
        // throw rolls the whole commit back), without a lookup per node first (10,000 of them at 10,000 nodes).
        for (const r of rows) {
          if (bump.run(r.sent, r.received, r.contributed, r.nodeId).changes === 0)
            throw new StoreError('not_found', `traffic names node ${r.nodeId}, which is not enrolled`);
          addTraffic.run(runId, round, r.nodeId, r.sent, r.received, r.contributed);
        }
      })
      .immediate();
    this.changed(() => ({ kind: 'round', runId, round, record: parseJson<Record<string, unknown>>(recordText) }));
  }

  /** The checkpoint of the run's last committed round, or null before its first round. */
  lastCheckpoint(runId: number): StoredCheckpoint | null {
    checkId(runId, 'run id');
    const row = this.db
      .transaction(() => {
        this.mustRun(runId);
        return this.sql('SELECT round, frame, sha256 FROM checkpoints WHERE run_id = ?').get(runId) as
          | { round: number; frame: Buffer; sha256: string }
          | undefined;
      })
      .deferred();
    if (!row) return null;
    const corrupt = (why: string): never => {
      throw new StoreError('corrupt', `checkpoint of run ${runId} (round ${row.round}) is corrupt: ${why}`);
    };
    if (!Buffer.isBuffer(row.frame)) corrupt('it is not a blob');
    if (sha256(row.frame) !== row.sha256) corrupt('its SHA-256 does not match the one stored with it');
    let frame: ReturnType<typeof decodeFrame>;
    try {
      frame = decodeFrame(row.frame);
    } catch (e) {
      return corrupt((e as Error).message);
    }
    const h = frame.header as Record<string, unknown>;
    if (h.type !== 'checkpoint') corrupt(`frame type is ${describe(h.type)}, not 'checkpoint'`);
    if (h.round !== row.round || h.runId !== runId)
      corrupt(`frame says run ${describe(h.runId)} round ${describe(h.round)}`);
    const state = h.state as Record<string, unknown> | undefined;
    if (
      !isPlainObject(state) ||
      typeof state.name !== 'string' ||
      !Number.isSafeInteger(state.round) ||
      !isPlainObject(state.hyper)
    )
      corrupt('strategy state header is malformed');
    const hyper: Record<string, number> = {};
    for (const [k, v] of Object.entries(state!.hyper as Record<string, unknown>)) {
      if (typeof v !== 'number' || !Number.isFinite(v)) corrupt(`hyper-parameter ${k} is ${describe(v)}`);
      hyper[k] = v as number;
    }
    const extra = h.extra ?? {};
    if (!isPlainObject(extra)) corrupt('extra is not an object');
    let weights: Float32Array | undefined;
    const slots: Record<string, Float32Array> = {};
    for (const t of frame.tensors) {
      if (t.dtype !== 'float32' || !isFloat32Array(t.data)) corrupt(`tensor ${t.name} is not float32`);
      if (t.name === 'weights') weights = t.data as Float32Array;
      else if (t.name.startsWith('slot:') && t.name.length > 5) slots[t.name.slice(5)] = t.data as Float32Array;
      else corrupt(`unexpected tensor ${t.name}`);
    }
    if (!weights) return corrupt('it has no weights tensor');
    return {
      round: row.round,
      weights,
      strategyState: { name: state!.name as string, round: state!.round as number, slots, hyper },
      extra: parseJson<Record<string, unknown>>(JSON.stringify(extra)),
    };
  }

  /** The run's round records, in round order, as committed. The type parameter is the caller's assertion. */
  roundRecords<T = Record<string, unknown>>(runId: number): T[] {
    checkId(runId, 'run id');
    return this.db
      .transaction(() => {
        this.mustRun(runId);
        return (
          this.sql('SELECT record FROM rounds WHERE run_id = ? ORDER BY round').pluck().all(runId) as string[]
        ).map((s) => parseJson<T>(s));
      })
      .deferred();
  }

  /** Bytes per node per round of the run, ordered by round then node id. */
  nodeTraffic(runId: number): TrafficRow[] {
    checkId(runId, 'run id');
    return this.db
      .transaction(() => {
        this.mustRun(runId);
        const rows = this.sql(
          'SELECT round, node_id, sent, received, contributed FROM node_traffic WHERE run_id = ? ORDER BY round, node_id',
        ).all(runId) as { round: number; node_id: number; sent: number; received: number; contributed: number }[];
        return rows.map((r) => ({
          round: r.round,
          nodeId: r.node_id,
          sent: r.sent,
          received: r.received,
          contributed: r.contributed === 1,
        }));
      })
      .deferred();
  }

  // ---------- events ----------

  /**
   * Appends an event (runId null: not tied to a run) and returns its id. Kind 'late_update' needs
   * data { nodeId, forRound, atRound } as whole numbers.
   */
  recordEvent(runId: number | null, kind: string, data: object): number {
    if (runId !== null) checkId(runId, 'run id');
    checkName(kind, 'event kind');
    const text = toJsonObject(data, `${kind} event data`, 1024 * 1024);
    const fields = EVENT_SHAPES[kind];
    if (fields) for (const f of fields) checkCount((data as Record<string, unknown>)[f], `${kind} event data.${f}`);
    const event = this.db
      .transaction(() => {
        if (runId !== null) this.mustRun(runId);
        const at = this.timestamp();
        const id = Number(
          this.sql('INSERT INTO events (run_id, at, kind, data) VALUES (?, ?, ?, ?)').run(runId, at, kind, text)
            .lastInsertRowid,
        );
        return { id, runId, at, kind };
      })
      .immediate();
    this.changed(() => ({ kind: 'event', event: { ...event, data: parseJson<Record<string, unknown>>(text) } }));
    return event.id;
  }

  /**
   * The newest `limit` events of run `runId` (null: events tied to no run), oldest first.
   */
  events(runId: number | null, limit = 100): StoreEvent[] {
    if (runId !== null) checkId(runId, 'run id');
    if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1 || limit > MAX_EVENT_LIMIT)
      invalid(`limit must be a whole number from 1 to ${MAX_EVENT_LIMIT}, got ${describe(limit)}`);
    const rows = this.db
      .transaction(() => {
        if (runId === null)
          return this.sql('SELECT * FROM events WHERE run_id IS NULL ORDER BY id DESC LIMIT ?').all(
            limit,
          ) as EventRow[];
        this.mustRun(runId);
        return this.sql('SELECT * FROM events WHERE run_id = ? ORDER BY id DESC LIMIT ?').all(
          runId,
          limit,
        ) as EventRow[];
      })
      .deferred();
    return rows.reverse().map((r) => ({
      id: r.id,
      runId: r.run_id,
      at: r.at,
      kind: r.kind,
      data: parseJson<Record<string, unknown>>(r.data),
    }));
  }

  /** Closes the database; safe to call twice. Other methods throw afterwards. */
  /** The open SQLite handle, for modules that keep their own tables (api-tokens.ts, audit.ts). */
  get database(): Database.Database {
    return this.db;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
