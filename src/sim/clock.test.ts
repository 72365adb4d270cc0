import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { VirtualClock } from './clock.js';
import {
  closeByVirtualTime,
  samplesProcessed,
  simTimeToTarget,
  waitUntilOnline,
  type TimedArrival,
} from '../engine/virtual-time.js';
import type { RoundRecord } from '../engine/round-engine.js';

const fast = { samplesPerSecond: 1000, downloadBytesPerSecond: 1e6, uploadBytesPerSecond: 5e5 };
const slow = { samplesPerSecond: 100, downloadBytesPerSecond: 1e5, uploadBytesPerSecond: 5e4 };
const nightly = { ...fast, availability: { periodSeconds: 100, onFraction: 0.5, phaseSeconds: 50 } }; // offline in [0, 50)

test('a request lasts download + work + upload, from the real sizes and samples', () => {
  const clock = new VirtualClock([fast, slow]);
  assert.equal(clock.duration({ nodeId: 0, downBytes: 2e6, upBytes: 1e6, samples: 500 }), 2 + 0.5 + 2);
  assert.ok(
    Math.abs(clock.duration({ nodeId: 1, downBytes: 2e6, upBytes: 1e6, samples: 500 }) - (20 + 5 + 20)) < 1e-12,
  );
  assert.throws(
    () => clock.duration({ nodeId: 2, downBytes: 1, upBytes: 1, samples: 1 }),
    /node 2 has no device profile/,
  );
});

test('samples processed: steps times batch, capped by epochs times examples', () => {
  assert.equal(samplesProcessed(13, 16, 1, 200), 200, 'a short last batch');
  assert.equal(samplesProcessed(5, 16, 1, 200), 80, 'steps capped below an epoch');
  assert.equal(samplesProcessed(26, 16, 2, 200), 400);
});

test('the clock only moves forward; offline nodes are filtered and waited for', () => {
  const clock = new VirtualClock([fast, nightly, slow]);
  assert.deepEqual(clock.online([0, 1, 2]), [0, 2]);
  assert.ok(Math.abs(clock.nextOnline([0, 1, 2]) - 50) < 1e-6);
  assert.ok(waitUntilOnline(clock, [1], 1));
  assert.ok(clock.now() >= 50 && clock.now() < 50 + 1e-6);
  assert.deepEqual(clock.online([0, 1, 2]), [0, 1, 2]);
  clock.advanceTo(10);
  assert.ok(clock.now() >= 50, 'never backwards');
  assert.equal(clock.nextOnline([0, 1, 2]), Infinity, 'all online: nothing to wait for');
  assert.equal(waitUntilOnline(new VirtualClock([fast]), [0], 2), false, 'two of one node never happens');
  assert.throws(() => clock.advanceTo(NaN), /cannot advance/);
});

/** Naive reference: keep arrivals one by one in time order while in time and still short of needed. */
function closeRef(arrivals: TimedArrival[], needed: number, deadline?: number): number[] {
  const kept: number[] = [];
  const order = [...arrivals].sort((a, b) =>
    a.seconds === b.seconds ? a.nodeId - b.nodeId : a.seconds < b.seconds ? -1 : 1,
  );
  for (const a of order)
    if (kept.length < needed && (deadline === undefined || a.seconds <= deadline)) kept.push(a.nodeId);
  return kept;
}

test('a synchronous round keeps the first k by simulated finish, drops the late, and ends at the right time', () => {
  const arrivals = [
    { nodeId: 0, seconds: 9 },
    { nodeId: 1, seconds: 2 },
    { nodeId: 2, seconds: 5 },
    { nodeId: 3, seconds: 2 },
  ];
  assert.deepEqual(closeByVirtualTime(arrivals, 2), {
    kept: [1, 3],
    late: [
      { nodeId: 2, seconds: 5 },
      { nodeId: 0, seconds: 9 },
    ],
    seconds: 2,
  });
  const byDeadline = closeByVirtualTime(arrivals, 4, 6);
  assert.deepEqual(byDeadline.kept, [1, 3, 2]);
  assert.equal(byDeadline.seconds, 6, 'closed short at the deadline');
  assert.equal(closeByVirtualTime(arrivals, 4).seconds, 9, 'waits for the slowest without a deadline');
  assert.deepEqual(closeByVirtualTime([], 3, 5), { kept: [], late: [], seconds: 0 });
  fc.assert(
    fc.property(
      fc
        .array(fc.record({ nodeId: fc.nat(50), seconds: fc.double({ min: 0, max: 100, noNaN: true }) }), {
          maxLength: 12,
        })
        .map((a) => a.filter((x, i) => a.findIndex((y) => y.nodeId === x.nodeId) === i)),
      fc.integer({ min: 1, max: 12 }),
      fc.option(fc.double({ min: 0, max: 100, noNaN: true }), { nil: undefined }),
      (arr, needed, deadline) => {
        const r = closeByVirtualTime(arr, needed, deadline);
        assert.deepEqual(r.kept, closeRef(arr, needed, deadline));
        assert.equal(r.kept.length + r.late.length, arr.length);
        for (const id of r.kept) assert.ok(arr.find((a) => a.nodeId === id)!.seconds <= r.seconds);
        if (deadline !== undefined) assert.ok(r.seconds <= deadline);
      },
    ),
    { numRuns: 300 },
  );
});

test('simulated time to target: the first round at or above it', () => {
  const rec = (acc: number, simTime: number) => ({ testAccuracy: acc, federatedAccuracy: NaN, simTime }) as RoundRecord;
  const rounds = [rec(0.5, 3), rec(0.91, 7.5), rec(0.89, 9), rec(0.95, 12)];
  assert.equal(simTimeToTarget(rounds, 0.9), 7.5);
  assert.equal(simTimeToTarget(rounds, 0.99), null);
  assert.equal(simTimeToTarget(rounds, undefined), null);
});
