/**
 * Credentials for the coordinator's HTTP API and live feed. The admin token (set with --admin-token or
 * generated) is the root credential: it may do everything, including create and revoke scoped API tokens.
 * A scoped token carries some of SCOPES and an expiry; only its sha256 is stored, so a copy of the
 * database does not hand out working tokens. Secrets are compared as hashes with timingSafeEqual.
 */
import type Database from 'better-sqlite3';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const SCOPES = ['runs:write', 'runs:read', 'models:read', 'nodes:read', 'metrics:read'] as const;
export type Scope = (typeof SCOPES)[number];
/** What `edgefed up` hands the dashboard: every read, no control. */
export const READ_SCOPES: Scope[] = ['runs:read', 'models:read', 'nodes:read', 'metrics:read'];
/** Longest lifetime a scoped token may be given. */
export const MAX_TOKEN_SECONDS = 365 * 24 * 3600;
/** Scoped tokens are recognisable in logs and secret scanners by this prefix. */
const TOKEN_PREFIX = 'eft_';
/** last_used_at is written at most this often per token (a dashboard polls; each read must not be a write). */
const LAST_USED_EVERY_MS = 30_000;

export const hashSecret = (secret: string): Buffer => createHash('sha256').update(secret, 'utf8').digest();

/** Whether two secrets are equal, in time that does not depend on where they differ (or on their lengths). */
export function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(hashSecret(given), hashSecret(expected));
}

export interface TokenInfo {
  id: number;
  name: string;
  scopes: Scope[];
  createdAt: number;
  expiresAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

/** Who a request's bearer token names. */
export type Credential = { kind: 'admin'; id: 'admin' } | { kind: 'token'; id: number; scopes: Scope[] };

export class TokenError extends Error {
  constructor(message: string) {
    super(message);
  }
}

export class ApiTokens {
  private readonly lastWritten = new Map<number, number>();

  constructor(
    private readonly db: Database.Database,
    private readonly adminToken: string,
    private readonly now = Date.now,
  ) {
    db.exec(`CREATE TABLE IF NOT EXISTS api_tokens (
      id INTEGER PRIMARY KEY,
      name TEXT NOT NULL,
      hash BLOB NOT NULL UNIQUE,
      scopes TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      expires_at INTEGER NOT NULL,
      last_used_at INTEGER,
      revoked_at INTEGER
    ) STRICT`);
  }

  /** A new token; its secret is returned once and never stored. */
  create(request: unknown): { token: string; info: TokenInfo } {
    const { name, scopes, expiresInSeconds } = parseTokenRequest(request);
    const token = TOKEN_PREFIX + randomBytes(24).toString('hex');
    const at = this.now();
    const id = Number(
      this.db
        .prepare('INSERT INTO api_tokens (name, hash, scopes, created_at, expires_at) VALUES (?, ?, ?, ?, ?)')
        .run(name, hashSecret(token), scopes.join(' '), at, at + expiresInSeconds * 1000).lastInsertRowid,
    );
    return { token, info: this.get(id)! };
  }

  revoke(id: number): TokenInfo | null {
    this.db.prepare('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(this.now(), id);
    return this.get(id);
  }

  list(): TokenInfo[] {
    return (this.db.prepare('SELECT * FROM api_tokens ORDER BY id').all() as TokenRow[]).map(toInfo);
  }

  get(id: number): TokenInfo | null {
    const row = this.db.prepare('SELECT * FROM api_tokens WHERE id = ?').get(id) as TokenRow | undefined;
    return row ? toInfo(row) : null;
  }

  /** The credential `secret` names, or null for an unknown, revoked or expired one. */
  identify(secret: string): Credential | null {
    if (sameSecret(secret, this.adminToken)) return { kind: 'admin', id: 'admin' };
    // Looked up by hash: the index compares hashes, never the secret itself.
    const row = this.db.prepare('SELECT * FROM api_tokens WHERE hash = ?').get(hashSecret(secret)) as
      | TokenRow
      | undefined;
    const at = this.now();
    if (!row || row.revoked_at !== null || row.expires_at <= at) return null;
    if (at - (this.lastWritten.get(row.id) ?? 0) >= LAST_USED_EVERY_MS) {
      this.lastWritten.set(row.id, at);
      this.db.prepare('UPDATE api_tokens SET last_used_at = ? WHERE id = ?').run(at, row.id);
    }
    return { kind: 'token', id: row.id, scopes: row.scopes.split(' ') as Scope[] };
  }
}

interface TokenRow {
  id: number;
  name: string;
  scopes: string;
  created_at: number;
  expires_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

const toInfo = (r: TokenRow): TokenInfo => ({
  id: r.id,
  name: r.name,
  scopes: r.scopes.split(' ') as Scope[],
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  lastUsedAt: r.last_used_at,
  revokedAt: r.revoked_at,
});

/** The body of POST /v1/admin/tokens: { name?, scopes: Scope[], expiresInSeconds }. Every problem at once. */
export function parseTokenRequest(body: unknown): { name: string; scopes: Scope[]; expiresInSeconds: number } {
  const b = (typeof body === 'object' && body !== null && !Array.isArray(body) ? body : {}) as Record<string, unknown>;
  const problems: string[] = [];
  const unknownKeys = Object.keys(b).filter((k) => !['name', 'scopes', 'expiresInSeconds'].includes(k));
  if (unknownKeys.length) problems.push(`unknown fields ${unknownKeys.slice(0, 5).join(', ')}`);
  const name = b.name ?? 'token';
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.:@ -]{1,64}$/.test(name))
    problems.push('name must be 1-64 letters, digits or _.:@- and spaces');
  const scopes = b.scopes;
  if (!Array.isArray(scopes) || scopes.length === 0 || scopes.some((s) => !SCOPES.includes(s as Scope))) {
    problems.push(`scopes must be a non-empty list of ${SCOPES.join(', ')}`);
  }
  const seconds = b.expiresInSeconds;
  if (!Number.isInteger(seconds) || (seconds as number) < 1 || (seconds as number) > MAX_TOKEN_SECONDS) {
    problems.push(`expiresInSeconds must be a whole number from 1 to ${MAX_TOKEN_SECONDS} (a year)`);
  }
  if (problems.length) throw new TokenError(`token request: ${problems.join('; ')}`);
  return { name: name as string, scopes: [...new Set(scopes as Scope[])], expiresInSeconds: seconds as number };
}
