import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NetworkTransport, type NetworkTransportOptions } from './network-transport.js';

// pace() reads no option: a transport over an empty registry is enough.
const transport = () => new NetworkTransport({} as NetworkTransportOptions);

/** Keeps the thread busy (no event-loop turn) until performance.now() moved by ms. */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

/** Whether a task queued before pace() ran by the time pace() resolved: did pace give the loop a turn? */
async function turned(t: NetworkTransport): Promise<boolean> {
  let ran = false;
  setImmediate(() => (ran = true));
  await t.pace();
  return ran;
}

test('pace gives the event loop a turn after every synchronous stretch longer than its slice', async () => {
  const t = transport();
  for (let i = 0; i < 3; i++) {
    busy(20);
    assert.equal(await turned(t), true, `stretch ${i + 1}: the loop got a turn`);
  }
});

test('a burst of paced steps resumes over several turns of the loop, in arrival order', async () => {
  const t = transport();
  let turn = 0;
  let ticking = true;
  const tick = () => {
    turn++;
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  busy(20);
  const resumed: { step: number; turn: number }[] = [];
  await Promise.all(Array.from({ length: 200 }, (_, step) => t.pace().then(() => void resumed.push({ step, turn }))));
  ticking = false;
  assert.deepEqual(
    resumed.map((r) => r.step),
    Array.from({ length: 200 }, (_, i) => i),
  );
  assert.ok(resumed[199].turn > resumed[0].turn, 'the burst did not resume in one turn');
});
