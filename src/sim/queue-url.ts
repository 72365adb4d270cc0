/** Where a simulation's BullMQ queue lives: a redis:// URL turned into connection options. */
import type { ConnectionOptions } from 'bullmq';

export const DEFAULT_QUEUE_NAME_TEXT = 'edgefed-sim';
/** Queue names: what BullMQ and Redis keys take without escaping. */
export const QUEUE_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/** Parses redis://[user:password@]host[:port][/db]; anything else is refused with the reason. */
export function redisConnection(url: string): ConnectionOptions {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`'${url}' is not a URL; expected redis://host:port`);
  }
  if (parsed.protocol !== 'redis:') throw new Error(`'${url}' is not a redis:// URL`);
  if (!parsed.hostname) throw new Error(`'${url}' names no host`);
  const port = parsed.port === '' ? 6379 : Number(parsed.port);
  const dbText = parsed.pathname.replace(/^\//, '');
  const db = dbText === '' ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0 || db > 15) throw new Error(`'${url}': database must be 0-15, got '${dbText}'`);
  return {
    host: parsed.hostname,
    port,
    db,
    maxRetriesPerRequest: null,
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
  };
}
