// The coordinator's worker threads run at a lower OS priority than its event loop (--worker-nice): read back from
// the kernel (/proc/PID/task/TID/stat), for a real verify pool and for the pool a real coordinator starts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { startCoordinator } from '../src/coordinator/server.js';
import { VerifyPool } from '../src/coordinator/verify-pool.js';
import { runCli } from './helpers.js';
import { waitFor } from './deploy-harness.js';

const linux = existsSync('/proc/thread-self');

/** Field 19 (nice) of a thread of this process, as the kernel keeps it. */
function niceOf(tid: number): number {
  const stat = readFileSync(`/proc/${process.pid}/task/${tid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

/** This process's threads named `name`, by id. */
function threadsNamed(name: string): number[] {
  return readdirSync(`/proc/${process.pid}/task`)
    .filter((tid) => readFileSync(`/proc/${process.pid}/task/${tid}/comm`, 'utf8').trim() === name)
    .map(Number);
}

test('a verify pool started at nice 7 runs its threads at nice 7, and the event loop keeps its own', {
  skip: !linux,
}, async () => {
  const mainBefore = niceOf(process.pid);
  const pool = await VerifyPool.start(2, 7);
  try {
    assert.equal(pool.priorities.length, 2);
    for (const report of pool.priorities) {
      assert.equal(report.refused, null);
      assert.ok(report.tid !== null && report.tid !== process.pid, 'each worker reports its own thread id');
      assert.equal(niceOf(report.tid!), Math.max(7, mainBefore));
      assert.equal(readFileSync(`/proc/${process.pid}/task/${report.tid}/comm`, 'utf8').trim(), 'edgefed-verify');
    }
    assert.equal(niceOf(process.pid), mainBefore, "the main thread's nice value is untouched");
  } finally {
    await pool.close();
  }
});

test('nice 0 leaves the verify threads at the priority of the thread that started them', { skip: !linux }, async () => {
  const pool = await VerifyPool.start(1, 0);
  try {
    assert.equal(pool.priorities[0].refused, null);
    assert.equal(niceOf(pool.priorities[0].tid!), niceOf(process.pid));
  } finally {
    await pool.close();
  }
});

test("a coordinator's verify threads run at its workerNice, by default below the event loop", {
  skip: !linux,
}, async () => {
  for (const workerNice of [undefined, 4]) {
    const db = join(mkdtempSync(join(tmpdir(), 'edgefed-nice-')), 'c.db');
    // verifyOffThreadFrom 0: the pool starts with the coordinator.
    const c = await startCoordinator({
      port: 0,
      db,
      logger: pino({ level: 'silent' }),
      verifyOffThreadFrom: 0,
      verifyThreads: 1,
      workerNice,
    });
    try {
      const tids = await waitFor(
        'a verify thread',
        async () => {
          const t = threadsNamed('edgefed-verify');
          return t.length === 1 ? t : undefined;
        },
        30_000,
      );
      const nice = niceOf(tids[0]);
      if (workerNice === undefined) assert.ok(nice > niceOf(process.pid), `default nice ${nice} is above the loop's`);
      else assert.equal(nice, Math.max(workerNice, niceOf(process.pid)));
    } finally {
      await c.close();
    }
    await waitFor(
      'the verify thread gone',
      async () => (threadsNamed('edgefed-verify').length ? undefined : true),
      30_000,
    );
  }
});

test('a workerNice outside 0..19 is refused before the coordinator takes its database', async () => {
  const db = join(mkdtempSync(join(tmpdir(), 'edgefed-nice-')), 'c.db');
  for (const workerNice of [-1, 20, 2.5])
    await assert.rejects(
      startCoordinator({ port: 0, db, logger: pino({ level: 'silent' }), workerNice }),
      /workerNice: expected a whole number from 0 to 19/,
    );
  assert.equal(existsSync(db), false, 'no database was created');
  const r = await runCli(['coordinator', '--port', '0', '--db', db, '--worker-nice', '20']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /--worker-nice.*expected a whole number from 0 to 19, got '20'/);
  assert.equal(existsSync(db), false);
});
