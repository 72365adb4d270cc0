// Synchronous rounds under the virtual clock: selection, deadline and over-selection by simulated time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RoundEngine, type EngineOptions } from './round-engine.js';
import { Strategy, parseStrategy } from './strategy.js';
import { VirtualClock } from '../sim/clock.js';
import type { DeviceProfile } from '../sim/profiles.js';
import { healthyNodes, toyFederation, toyLayout } from '../../test/support/toy-federation.js';

const fast: DeviceProfile = { samplesPerSecond: 1000, downloadBytesPerSecond: 1e5, uploadBytesPerSecond: 5e4 };
const slow: DeviceProfile = { samplesPerSecond: 50, downloadBytesPerSecond: 1e4, uploadBytesPerSecond: 5e3 };

function engine(profiles: DeviceProfile[], overrides: Partial<EngineOptions> = {}) {
  const ids = profiles.map((_, i) => i);
  const federation = toyFederation(healthyNodes(profiles.length), ids);
  const clock = new VirtualClock(profiles);
  const e = new RoundEngine({
    layout: toyLayout,
    strategy: new Strategy(parseStrategy('fedavg')),
    transport: federation.transport,
    initial: federation.initial,
    seed: 3,
    rounds: 1,
    fraction: 1,
    minNodes: 1,
    evalFraction: 0,
    local: { epochs: 1, batchSize: 16, optimizer: { name: 'adam', lr: 0.01 } },
    centralEval: federation.centralEval,
    clock,
    ...overrides,
  });
  return { e, clock, federation };
}

/** Each node's simulated request time from the bytes it really moved and its 200 samples (one epoch). */
function durations(
  federation: ReturnType<typeof toyFederation>,
  profiles: DeviceProfile[],
): { nodeId: number; seconds: number }[] {
  const byNode = federation.transport.traffic().byNode;
  return [...byNode]
    .map(([nodeId, t]) => ({
      nodeId,
      seconds:
        t.sent / profiles[nodeId].downloadBytesPerSecond +
        200 / profiles[nodeId].samplesPerSecond +
        t.received / profiles[nodeId].uploadBytesPerSecond,
    }))
    .sort((a, b) => a.seconds - b.seconds || a.nodeId - b.nodeId);
}

test('over-selection keeps the first k by simulated finish time, not arrival order, and the round lasts until the k-th', async () => {
  // 6 nodes, sample 3, over-select 1: all 6 asked; nodes 0 and 1 are slow (and answer first in real time here).
  const profiles = [slow, slow, fast, fast, fast, fast];
  const { e, clock, federation } = engine(profiles, { fraction: 0.5, overSelect: 1 });
  const r = await e.run();
  const rec = r.rounds[0];
  const d = durations(federation, profiles);
  assert.deepEqual(rec.selected, [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(
    rec.contributed,
    d
      .slice(0, 3)
      .map((x) => x.nodeId)
      .sort((a, b) => a - b),
  );
  assert.ok(!rec.contributed.includes(0) && !rec.contributed.includes(1));
  assert.deepEqual(
    rec.failures.map((f) => f.nodeId).sort(),
    d
      .slice(3)
      .map((x) => x.nodeId)
      .sort(),
  );
  for (const f of rec.failures)
    assert.match(f.error, /straggler: finished at [\d.]+ simulated s, after the round closed/);
  assert.ok(
    Math.abs(rec.simTime! - d[2].seconds) < 1e-9,
    `round ends at the 3rd finish: ${rec.simTime} vs ${d[2].seconds}`,
  );
  assert.equal(clock.now(), rec.simTime);
});

test('a deadline in simulated seconds drops the slow nodes and closes the round at the deadline', async () => {
  const profiles = [fast, slow, fast, fast];
  const probe = engine(profiles);
  await probe.e.run();
  const d = durations(probe.federation, profiles);
  const deadline = (d[2].seconds + d[3].seconds) / 2; // between the fast ones and the slow node 1
  const { e } = engine(profiles, { deadlineSeconds: deadline, rounds: 2 });
  const r = await e.run();
  for (const rec of r.rounds) {
    assert.deepEqual(rec.contributed, [0, 2, 3]);
    assert.deepEqual(
      rec.failures.map((f) => f.nodeId),
      [1],
    );
    assert.ok(rec.fused);
  }
  assert.ok(Math.abs(r.rounds[0].simTime! - deadline) < 1e-9);
  assert.ok(Math.abs(r.rounds[1].simTime! - 2 * deadline) < 1e-9, 'simulated time adds up round by round');
  // with no deadline the same run waits for the slow node
  const all = await engine(profiles).e.run();
  assert.deepEqual(all.rounds[0].contributed, [0, 1, 2, 3]);
  assert.ok(Math.abs(all.rounds[0].simTime! - d[3].seconds) < 1e-9);
});

test('nodes offline at dispatch time are not selected; the clock waits for enough to be online', async () => {
  const offlineFirst = { ...fast, availability: { periodSeconds: 1000, onFraction: 0.5, phaseSeconds: 500 } }; // offline in [0, 500)
  const { e } = engine([fast, offlineFirst, fast], { rounds: 2 });
  const r = await e.run();
  assert.deepEqual(r.rounds[0].selected, [0, 2]);
  assert.deepEqual(r.rounds[1].selected, [0, 2]);
  // with everyone offline at first, the first round starts once they come online (t >= 500)
  const late = engine([offlineFirst, offlineFirst], { rounds: 1, minNodes: 2 });
  const lr = await late.e.run();
  assert.deepEqual(lr.rounds[0].contributed, [0, 1]);
  assert.ok(lr.rounds[0].simTime! > 500);
});
