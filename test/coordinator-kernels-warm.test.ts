// A coordinator loads and checks its compute kernels when it starts, before it serves anyone: a run's start (with
// the whole fleet connected and waiting on the event loop) no longer pays the load and the check against the
// TypeScript reference. Read from the real process: the native addon is mapped into it before any run exists.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { NATIVE_ADDON_PATH } from '../src/nn/kernels-native.js';
import { ADMIN_TOKEN, killAll, startTestCoordinator } from './deploy-harness.js';

const canSee = existsSync(NATIVE_ADDON_PATH) && existsSync('/proc/self/maps') && process.env.EDGEFED_KERNELS !== 'js';

test('the native kernels are loaded once the coordinator is healthy, with no run yet', { skip: !canSee }, async () => {
  const c = await startTestCoordinator();
  try {
    const runs = (await (
      await fetch(`${c.url}/v1/runs`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    ).json()) as {
      runs: unknown[];
    };
    assert.equal(runs.runs.length, 0, 'no run has started');
    const maps = readFileSync(`/proc/${c.proc.child.pid}/maps`, 'utf8');
    assert.ok(maps.includes(NATIVE_ADDON_PATH), `${NATIVE_ADDON_PATH} is mapped into the coordinator`);
  } finally {
    killAll([c.proc]);
  }
});
