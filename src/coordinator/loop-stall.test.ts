// Timers that do not blame nodes for the coordinator's own stalls: a timer that falls due while the loop is
// blocked waits again after the stall, so what arrived meanwhile is handled first. Ordering only, no clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stallAwareInterval, stallAwareTimeout } from './loop-stall.js';

/** Blocks the event loop, as a long synchronous task on the coordinator would. */
function stall(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

test('a timeout that fell due during a stall waits again before it acts', async () => {
  const events: string[] = [];
  let fired!: () => void;
  const done = new Promise<void>((r) => (fired = r));
  stallAwareTimeout(
    20,
    () => {
      events.push('timed out');
      fired();
    },
    10,
  );
  stall(400);
  // What the node sent during the stall is read right after it (here: a short timer queued at its end).
  setTimeout(() => events.push('heartbeat read'), 5);
  await done;
  assert.deepEqual(events, ['heartbeat read', 'timed out']);
});

test('a timeout on a free loop acts, and stop() cancels one', async () => {
  const events: string[] = [];
  const cancelled = stallAwareTimeout(5, () => events.push('never'));
  cancelled.stop();
  // Due after the cancelled one: once it has acted, the cancelled one would have too.
  await new Promise<void>((r) =>
    stallAwareTimeout(30, () => {
      events.push('a');
      r();
    }),
  );
  assert.deepEqual(events, ['a']);
});

test('an interval skips the tick the loop was stalled through and keeps ticking after', async () => {
  let ticks = 0;
  const every = stallAwareInterval(20, () => ticks++, 10);
  stall(200); // the first tick fires ~180 ms late: skipped
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  assert.equal(ticks, 0);
  while (ticks < 2) await new Promise((r) => setTimeout(r, 10));
  every.stop();
});

test('a sweep whose tick was on time skips its act when the loop stalled before the act (poll-phase stall)', async () => {
  const events: string[] = [];
  let ticks = 0;
  let second!: () => void;
  const done = new Promise<void>((r) => (second = r));
  const sweep = stallAwareInterval(
    40,
    () => {
      events.push(`sweep ${++ticks}`);
      if (ticks === 1) second();
    },
    100,
  );
  // Due with the first tick and run right after it, before the tick's immediate: a long task in between.
  setTimeout(() => {
    events.push('stall');
    stall(400);
    setTimeout(() => events.push('heartbeat read'), 1);
  }, 40);
  await done;
  sweep.stop();
  assert.deepEqual(events.slice(0, 3), ['stall', 'heartbeat read', 'sweep 1']);
});
