/**
 * One coordinator per database: `<db>.lock` holds the pid of the coordinator that owns the file. Two
 * coordinators on one database would both drive its runs (committing each other's rounds), so the second
 * is refused with the holder's pid. The lock is a file and not SQLite's exclusive locking mode because the
 * model registry opens a second connection to the same database.
 *
 * A lock left by a process that no longer exists (kill -9, a crash, a reboot) is stale and taken over. The
 * pid is written to a temporary file first and linked into place, so no reader ever sees a half-written lock.
 */
import { existsSync, linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { StoreError } from './store.js';

export class DatabaseLockedError extends Error {
  constructor(
    readonly db: string,
    readonly holderPid: number,
  ) {
    super(
      `database ${db} is in use by another coordinator (pid ${holderPid}); stop that one first, or use another --db`,
    );
    this.name = 'DatabaseLockedError';
  }
}

export interface DatabaseLock {
  readonly path: string;
  release(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

function holder(lockPath: string): number | null {
  try {
    const pid = Number(readFileSync(lockPath, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Takes the lock on `db` for this process; DatabaseLockedError when a live process holds it. */
export function lockDatabase(db: string): DatabaseLock {
  const path = `${db}.lock`;
  const temp = `${path}.${process.pid}`;
  if (!existsSync(dirname(db)))
    throw new StoreError('open', `--db ${db}: its folder ${dirname(db)} does not exist (create it first)`);
  writeFileSync(temp, `${process.pid}\n`, { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        linkSync(temp, path);
        return { path, release: () => releaseIfOurs(path) };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const pid = holder(path);
      if (pid !== null && alive(pid)) throw new DatabaseLockedError(db, pid);
      try {
        unlinkSync(path); // stale: its holder is gone (or it never held a pid)
      } catch {
        // another starter removed it first; the next link decides
      }
    }
    throw new DatabaseLockedError(db, holder(path) ?? 0);
  } finally {
    unlinkSync(temp);
  }
}

function releaseIfOurs(path: string): void {
  if (holder(path) !== process.pid) return;
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}
