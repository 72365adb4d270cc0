import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveOptions } from './options.js';
import { makeClock, profileSpecOf } from './heterogeneity.js';
import { fedBuffDefaults } from './heterogeneity-options.js';

test('heterogeneity options: defaults, and the clock they turn on', () => {
  const sync = resolveOptions({ nodes: 10 });
  assert.equal(sync.mode, 'sync');
  assert.equal(makeClock(sync), undefined, 'no profile, no clock: the run is unchanged');
  const asyncRun = resolveOptions({ nodes: 20, fraction: 0.3, mode: 'async' });
  assert.equal(profileSpecOf(asyncRun), 'uniform', 'async always runs on a clock');
  assert.deepEqual(fedBuffDefaults(asyncRun), { concurrency: 6, bufferSize: 6 });
  assert.deepEqual(fedBuffDefaults(resolveOptions({ nodes: 50, fraction: 0.5, mode: 'async' })), {
    concurrency: 25,
    bufferSize: 10,
  });
  assert.equal(profileSpecOf(resolveOptions({ deadline: 30 })), 'uniform');
  const clock = makeClock(resolveOptions({ nodes: 10, profile: 'slow20', seed: 2 }))!;
  assert.deepEqual(clock.online([0, 1, 2]), [0, 1, 2]);
});

test('bad combinations are refused naming the option', () => {
  const cases: [Parameters<typeof resolveOptions>[0], RegExp][] = [
    [{ mode: 'async', bufferSize: 5, concurrency: 2 }, /Error: --concurrency: must be >= the buffer size K = 5/],
    [
      { mode: 'async', nodes: 4, concurrency: 6, bufferSize: 2 },
      /Error: --concurrency: 6 nodes training at once, but there are only 4 nodes/,
    ],
    [
      { mode: 'async', strategy: 'fedprox:0.1' },
      /Error: --strategy: --mode async fuses with FedBuff; use --strategy fedavg/,
    ],
    [{ mode: 'async', deadline: 10 }, /Error: --deadline: applies to --mode sync only/],
    [{ mode: 'async', overSelect: 0.3 }, /Error: --over-select: applies to --mode sync only/],
    [{ mode: 'async', evalFraction: 0.5 }, /Error: --eval-fraction: applies to --mode sync only/],
    [{ bufferSize: 3 }, /Error: --buffer-size: applies to --mode async only/],
    [{ concurrency: 3 }, /Error: --concurrency: applies to --mode async only/],
    [{ serverLr: 0.5 }, /Error: --server-lr: applies to --mode async only/],
    [{ profile: 'fast' }, /Error: --profile: unknown device profile 'fast'/],
    [{ mode: 'async', bufferSize: 0 }, /Error: --buffer-size/],
    [{ deadline: -1 }, /Error: --deadline/],
    [{ mode: 'later' as 'sync' }, /Error: --mode/],
  ];
  for (const [input, re] of cases) assert.throws(() => resolveOptions(input), re, JSON.stringify(input));
});

test('a profile file is read and checked; a missing or bad one is a clear error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-profiles-'));
  const good = join(dir, 'good.json');
  writeFileSync(
    good,
    JSON.stringify([{ samplesPerSecond: 10, downloadBytesPerSecond: 1e6, uploadBytesPerSecond: 1e6 }]),
  );
  const clock = makeClock(resolveOptions({ nodes: 3, profile: good }))!;
  assert.equal(clock.duration({ nodeId: 2, downBytes: 0, upBytes: 0, samples: 50 }), 5);
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify([{ samplesPerSecond: 0, downloadBytesPerSecond: 1, uploadBytesPerSecond: 1 }]));
  assert.throws(
    () => makeClock(resolveOptions({ nodes: 3, profile: bad })),
    /--profile .*bad\.json: 0\.samplesPerSecond/,
  );
  assert.throws(
    () => makeClock(resolveOptions({ nodes: 3, profile: join(dir, 'none.json') })),
    /--profile: cannot read .*none\.json \(ENOENT\)/,
  );
});
