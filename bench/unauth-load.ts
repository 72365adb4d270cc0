/**
 * Benchmark: what unauthenticated traffic costs a coordinator. One coordinator process is started through
 * the real CLI (auth on, a temp SQLite database) on a free loopback port, then:
 *   1. --bodies concurrent POST /v1/predict of --mb MB each, with no token (whole bodies sent);
 *   2. bad POST /v1/enroll in a loop for --flood-s seconds (8 at a time), and 2 runs created without a token.
 * Measured: the coordinator's VmRSS / VmHWM (/proc/PID/status) idle (the reference) and after step 1; the
 * database files' bytes (db + wal) before and after step 2, and the requests sent; every answer's status.
 *
 * Run:  node --import tsx bench/unauth-load.ts [--bodies 20] [--mb 12] [--flood-s 8]
 */
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, existsSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { freePort, waitHealthy } from '../test/deploy-harness.js';
import { machine, numberFlag, REPO } from './support/results-io.js';

const { values } = parseArgs({
  options: {
    bodies: { type: 'string', default: '20' },
    mb: { type: 'string', default: '12' },
    'flood-s': { type: 'string', default: '8' },
  },
});
const bodies = numberFlag(
  'bodies',
  values.bodies!,
  (v) => Number.isInteger(v) && v >= 1 && v <= 200,
  'a whole number 1-200',
);
const mb = numberFlag('mb', values.mb!, (v) => v > 0 && v <= 64, 'MB per body, up to 64');
const floodS = numberFlag('flood-s', values['flood-s']!, (v) => v > 0 && v <= 120, 'seconds, up to 120');

const dir = mkdtempSync(join(tmpdir(), 'edgefed-unauth-'));
const db = join(dir, 'state.db');
const port = await freePort();
const url = `http://127.0.0.1:${port}`;
const child = spawn(
  process.execPath,
  [
    join(REPO, 'bin/edgefed.mjs'),
    'coordinator',
    '--port',
    String(port),
    '--db',
    db,
    '--admin-token',
    'bench-admin-token-0123456789',
  ],
  { env: { ...process.env, EDGEFED_LOG: 'warn' }, stdio: ['ignore', 'ignore', 'inherit'] },
);
const mbOf = (kb: number) => Math.round(kb / 102.4) / 10;
const status = () => {
  const text = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(text)?.[1] ?? NaN);
  return { rssMb: mbOf(kb('VmRSS')), hwmMb: mbOf(kb('VmHWM')) };
};
const sizeOf = (f: string) => (existsSync(f) ? statSync(f).size : 0);
const dbBytes = () => ({ db: sizeOf(db), wal: sizeOf(`${db}-wal`) });
const count = (m: Map<number, number>, s: number) => m.set(s, (m.get(s) ?? 0) + 1);

try {
  await waitHealthy(url);
  await new Promise((r) => setTimeout(r, 1000));
  const idle = status();
  const body = Buffer.alloc(Math.round(mb * 1024 * 1024), ' ');
  body.write('{"runId":1,"inputs":[[');
  const predictStatuses = new Map<number, number>();
  await Promise.all(
    Array.from({ length: bodies }, async () => {
      try {
        const r = await fetch(`${url}/v1/predict`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        });
        count(predictStatuses, r.status);
        await r.arrayBuffer();
      } catch {
        count(predictStatuses, 0); // the server may close the connection before the whole body is sent
      }
    }),
  );
  const afterBodies = status();

  const dbBefore = dbBytes();
  const floodStatuses = new Map<number, number>();
  const bad = JSON.stringify({ name: 'mallory', publicKey: 'ab'.repeat(32), token: 'x'.repeat(32) });
  const until = Date.now() + floodS * 1000;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (Date.now() < until) {
        const r = await fetch(`${url}/v1/enroll`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: bad,
        });
        count(floodStatuses, r.status);
        await r.arrayBuffer();
      }
    }),
  );
  for (let i = 0; i < 2; i++) {
    const r = await fetch(`${url}/v1/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ limitTest: 100 + i }),
    });
    count(floodStatuses, r.status);
  }
  await new Promise((r) => setTimeout(r, 500));
  const dbAfter = dbBytes();
  const sent = [...floodStatuses.values()].reduce((a, b) => a + b, 0);
  const kB = (n: number) => `${(n / 1e3).toFixed(0)} kB`;

  console.log(JSON.stringify({ environment: { ...machine(1), loadavg_1m: loadavg()[0] } }));
  console.log(
    `unauthenticated predict: ${bodies} x ${mb} MB, answers ${JSON.stringify(Object.fromEntries(predictStatuses))}`,
  );
  console.log(
    `  coordinator RSS idle ${idle.rssMb} MB (reference), after ${afterBodies.rssMb} MB (x${(afterBodies.rssMb / idle.rssMb).toFixed(2)}), peak ${afterBodies.hwmMb} MB (x${(afterBodies.hwmMb / idle.rssMb).toFixed(2)})`,
  );
  console.log(
    `bad enrolments: ${sent} requests in ${floodS} s, answers ${JSON.stringify(Object.fromEntries(floodStatuses))}`,
  );
  console.log(
    `  database ${kB(dbBefore.db)} before (reference), ${kB(dbAfter.db)} after; WAL ${kB(dbBefore.wal)} -> ${kB(dbAfter.wal)} ` +
      '(the WAL is reused after each automatic checkpoint, about 4 MB, so it does not grow with the flood)',
  );
} finally {
  child.kill('SIGKILL');
}
