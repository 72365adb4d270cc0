// `edgefed up` and `edgefed open` as an operator uses them, with real processes: after the run the dashboard keeps
// serving until Ctrl-C and the command says how to reopen the run; Ctrl-C during a run stops without committing a
// round (a second Ctrl-C exits at once); `edgefed open` serves the saved run read-only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from './helpers.js';
import { waitFor } from './deploy-harness.js';

interface Running {
  child: ChildProcess;
  err: () => string;
  exit: Promise<number | null>;
}

function run(args: string[], cwd: string): Running {
  const env = { ...process.env };
  delete env.CI; // `up` exits on finish under CI=true; these tests choose explicitly
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  child.stdout!.resume();
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, err: () => err, exit };
}

const dashboardOf = (text: string) => /dashboard (http:\/\/\S+)#token=(\S+)/.exec(text);

test('edgefed up keeps serving after the run, says how to reopen it; Ctrl-C closes; edgefed open shows it read-only', {
  timeout: 300_000,
}, async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'edgefed-up-'));
  const upRun = run(['up', '--nodes', '2', '--rounds', '1', '--target-accuracy', '0.99'], cwd);
  try {
    const finished = await waitFor(
      'the run to end',
      async () => (upRun.err().includes('the dashboard stays at') ? upRun.err() : undefined),
      240_000,
    );
    const [, dashboard, token] = dashboardOf(finished)!;
    assert.match(finished, /reopen this run later with: edgefed open runs\/up-/);
    // Still serving: the page and, with the printed read token, the run.
    assert.equal((await fetch(dashboard)).status, 200);
    const base = new URL(dashboard).origin;
    // A browser tab can join: the printed link carries a one-time join token and the read token.
    const link = /browser node \(one tab joins this federation; valid 1 h\) (\S+)/.exec(finished)![1];
    assert.match(link, new RegExp(`^${base}/node/\\?token=[0-9a-f]{48}&shard=0/10#token=${token}$`));
    assert.equal((await fetch(link)).status, 200);
    const runs = (await (await fetch(`${base}/v1/runs`, { headers: { authorization: `Bearer ${token}` } })).json()) as {
      runs: { status: string }[];
    };
    assert.equal(runs.runs[0].status, 'completed');
    upRun.child.kill('SIGINT');
    assert.equal(await upRun.exit, 0);
  } finally {
    upRun.child.kill('SIGKILL');
  }

  const saved = join('runs', readdirSync(join(cwd, 'runs'))[0]);
  const view = run(['open', saved], cwd);
  try {
    const text = await waitFor(
      'open to listen',
      async () => (/dashboard http/.test(view.err()) ? view.err() : undefined),
      60_000,
    );
    assert.match(text, /1 run \(#1 completed\), read-only/);
    const base = new URL(/dashboard (http:\/\/\S+)/.exec(text)![1]).origin;
    const listed = (await (await fetch(`${base}/v1/runs/1`)).json()) as { status: string; rounds: unknown[] };
    assert.equal(listed.status, 'completed');
    assert.equal(listed.rounds.length, 1);
    const write = await fetch(`${base}/v1/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"model":"mlp"}',
    });
    assert.equal(write.status, 403);
    assert.match(await write.text(), /read-only/);
    view.child.kill('SIGINT');
    assert.equal(await view.exit, 0);
  } finally {
    view.child.kill('SIGKILL');
  }
});

test('Ctrl-C while up waits or trains: a clean stop with a message and no partial round; a second Ctrl-C exits at once', {
  timeout: 300_000,
}, async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'edgefed-up-int-'));
  const first = run(['up', '--nodes', '2', '--rounds', '50', '--target-accuracy', '0.999'], cwd);
  await waitFor('up to print its dashboard', async () => (dashboardOf(first.err()) ? true : undefined), 120_000);
  const pressed = performance.now();
  first.child.kill('SIGINT');
  assert.equal(await first.exit, 0);
  // Reported, not asserted (tests do not assert wall-clock times): Ctrl-C to exit, right after the URL shows.
  console.log(`Ctrl-C after the dashboard URL: exited in ${((performance.now() - pressed) / 1000).toFixed(2)} s`);
  assert.match(first.err(), /stopping: a round in progress has 1 s to finish/);
  const saved = join('runs', readdirSync(join(cwd, 'runs'))[0]);
  const view = run(['open', saved], cwd);
  try {
    const text = await waitFor(
      'open to listen',
      async () => (/dashboard http/.test(view.err()) ? view.err() : undefined),
      60_000,
    );
    const base = new URL(/dashboard (http:\/\/\S+)/.exec(text)![1]).origin;
    const r = (await (await fetch(`${base}/v1/runs/1`)).json()) as { rounds: { contributed: number[] }[] };
    assert.ok(
      r.rounds.every((round) => round.contributed.length > 0),
      'no round was committed empty by the stop',
    );
  } finally {
    view.child.kill('SIGKILL');
  }

  const second = run(
    ['up', '--nodes', '2', '--rounds', '50', '--target-accuracy', '0.999'],
    mkdtempSync(join(tmpdir(), 'edgefed-up-int2-')),
  );
  // Pressed while a round trains, so the first press has a round to wait for when the second comes.
  await waitFor('a round committed', async () => (/round 1\/50/.test(second.err()) ? true : undefined), 240_000);
  // The second press the moment the first is acknowledged, while the coordinator is still closing (two signals
  // sent back to back could merge into one).
  second.child.stderr!.on('data', (d) => {
    if (String(d).includes('stopping:')) second.child.kill('SIGINT');
  });
  second.child.kill('SIGINT');
  assert.equal(await second.exit, 130);
  assert.match(second.err(), /stopping:/);
  assert.match(second.err(), /exiting at once/);
});

test('up --db reuses the database: nodes keep their enrolled identities and train; a node refused for good stops up with its reason', {
  timeout: 400_000,
}, async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'edgefed-up-db-'));
  const db = join(cwd, 'state', 'fleet.db');
  const once = async () => {
    const r = run(['up', '--nodes', '2', '--rounds', '1', '--db', db, '--exit-on-finish'], cwd);
    return { code: await r.exit, err: r.err() };
  };
  const first = await once();
  assert.equal(first.code, 0, first.err);
  assert.match(first.err, /run 1 completed after 1 rounds/);
  // The same names again, on the same database: their keys are beside it, so the round is fused.
  const second = await once();
  assert.equal(second.code, 0, second.err);
  assert.match(second.err, /run 2 completed after 1 rounds: test accuracy 0\.[5-9]/);
  assert.doesNotMatch(second.err, /not fused/);
  assert.match(second.err, new RegExp(`reopen this run later with: edgefed open ${db}|state in ${db}`));
  // Keys lost: the names are enrolled with other keys, which no join token overrides. up says so and stops.
  rmSync(join(cwd, 'state', 'keys'), { recursive: true });
  const third = await once();
  assert.equal(third.code, 1, third.err);
  assert.match(
    third.err,
    /node[01] stopped for good: .*enrolled with another key.*\(log: runs\/up-[^/]+\/logs\/node[01]\.log\)/,
  );
});
