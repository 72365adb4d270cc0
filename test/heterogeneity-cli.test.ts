// Heterogeneous simulation through the CLI: simulated time in the summary, deterministic whatever the workers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './helpers.js';

const small = [
  'simulate',
  '--limit-train',
  '3000',
  '--limit-test',
  '1000',
  '--nodes',
  '10',
  '--seed',
  '4',
  '--json',
  '--quiet',
  '--profile',
  'slow20',
];

test('FedBuff and clocked sync rounds: same seed, same model with 1 or 2 workers; simulated time reported', async () => {
  const asyncRun = [
    ...small,
    '--mode',
    'async',
    '--concurrency',
    '4',
    '--buffer-size',
    '2',
    '--rounds',
    '6',
    '--target-accuracy',
    '0.5',
  ];
  const syncRun = [...small, '--fraction', '0.3', '--over-select', '0.5', '--rounds', '3'];
  const [a1, a2, s1, s2] = await Promise.all([
    runCli([...asyncRun, '--workers', '1']),
    runCli([...asyncRun, '--workers', '2']),
    runCli([...syncRun, '--workers', '1']),
    runCli([...syncRun, '--workers', '2']),
  ]);
  for (const r of [a1, a2, s1, s2]) assert.equal(r.code, 0, r.stderr);
  const [ja1, ja2, js1, js2] = [a1, a2, s1, s2].map((r) => JSON.parse(r.stdout));
  assert.equal(ja1.model_sha256, ja2.model_sha256, 'async: discrete events in simulated time, not thread timing');
  assert.equal(js1.model_sha256, js2.model_sha256, 'sync over-selection by simulated finish');
  for (const j of [ja1, js1]) {
    assert.ok(j.simulated_seconds > 0);
    assert.ok(j.simulated_seconds_to_target === null || j.simulated_seconds_to_target <= j.simulated_seconds);
  }
  assert.ok(
    ja1.reached_target && ja1.simulated_seconds_to_target === ja1.simulated_seconds,
    'the run stops at the target',
  );
  assert.equal(js1.simulated_seconds_to_target, null, 'no target given');
  assert.equal(ja1.config.mode, 'async');
});

// (every rule is checked in src/sim/heterogeneity-options.test.ts; these show the CLI path)
test('bad heterogeneity flags: one-line error, exit code 2, nothing written', async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'edgefed-het-')), 'run');
  const cases: [string[], RegExp][] = [
    [
      ['--mode', 'async', '--buffer-size', '5', '--concurrency', '2'],
      /--concurrency: must be >= the buffer size K = 5/,
    ],
    [['--buffer-size', '2'], /--buffer-size: applies to --mode async only/],
    [['--profile', '/nonexistent/p.json'], /--profile: cannot read \/nonexistent\/p\.json/],
    [['--mode', 'later'], /--mode/],
  ];
  for (const [flags, re] of cases) {
    const r = await runCli([
      'simulate',
      '--limit-train',
      '500',
      '--nodes',
      '5',
      '--rounds',
      '1',
      '--out',
      out,
      ...flags,
    ]);
    assert.equal(r.code, 2, `${flags.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(!existsSync(out));
  }
});

test('links that drop mid-round: with a deadline late replies are left out, without one the rounds take longer; same seed, same model', async () => {
  const base = [
    'simulate',
    '--limit-train',
    '3000',
    '--limit-test',
    '1000',
    '--nodes',
    '10',
    '--seed',
    '4',
    '--json',
    '--quiet',
    '--rounds',
    '4',
  ];
  const [steady, dropA, dropB, waiting, steadyWaiting] = await Promise.all([
    runCli([...base, '--profile', 'uniform', '--deadline', '30']),
    runCli([...base, '--profile', 'uniform:drop=0.3,offline=60', '--deadline', '30']),
    runCli([...base, '--profile', 'uniform:drop=0.3,offline=60', '--deadline', '30', '--workers', '1']),
    runCli([...base, '--profile', 'uniform:drop=0.3,offline=60']),
    runCli([...base, '--profile', 'uniform']),
  ]);
  for (const r of [steady, dropA, dropB, waiting, steadyWaiting]) assert.equal(r.code, 0, r.stderr);
  const [s, a, b, w, sw] = [steady, dropA, dropB, waiting, steadyWaiting].map((r) => JSON.parse(r.stdout));
  assert.equal(a.model_sha256, b.model_sha256, 'drops are drawn by seed, not by thread timing');
  assert.deepEqual(s.contributors_by_round, [10, 10, 10, 10], 'no drops: every node in time');
  const left = a.contributors_by_round.reduce((x: number, y: number) => x + (10 - y), 0);
  assert.ok(left >= 4 && left <= 24, `about 30% of 40 replies arrive after the 30 s deadline: ${left} left out`);
  assert.notEqual(a.model_sha256, s.model_sha256);
  assert.deepEqual(
    w.contributors_by_round,
    [10, 10, 10, 10],
    'without a deadline the round waits for the dropped nodes',
  );
  assert.ok(
    w.simulated_seconds > sw.simulated_seconds + 30,
    `waiting for links costs simulated time: ${w.simulated_seconds} vs ${sw.simulated_seconds}`,
  );
  console.log(
    `link drops p=0.3: contributors ${a.contributors_by_round.join(',')}, accuracy ${a.final_accuracy} vs ${s.final_accuracy} without drops; without a deadline ${w.simulated_seconds.toFixed(1)} vs ${sw.simulated_seconds.toFixed(1)} simulated s`,
  );
});
