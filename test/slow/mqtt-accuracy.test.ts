// Slow suite: a coordinator serving an MQTT fleet through a real mosquitto broker, 4 node processes linked
// through the broker and 1 over WebSocket, train the seed MLP to >= 0.97 on MNIST.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { killAll } from '../deploy-harness.js';
import { mosquittoMissing, startBroker } from '../support/mosquitto.js';
import { federation, runToEnd } from '../support/mqtt-federation.js';

test('4 MQTT nodes and 1 WebSocket node reach 0.97 test accuracy on MNIST', {
  skip: mosquittoMissing,
  timeout: 900_000,
}, async () => {
  const broker = await startBroker();
  const f = await federation(broker, 5, 4, 5);
  try {
    const { run } = await runToEnd(
      f,
      { model: 'mlp', rounds: 30, minNodes: 5, targetAccuracy: 0.97, seed: 1 },
      800_000,
    );
    const last = run.rounds.at(-1)!;
    console.log(`MQTT run: ${run.rounds.length} rounds, test accuracy ${last.testAccuracy}`);
    assert.ok(last.testAccuracy >= 0.97, `accuracy ${last.testAccuracy}`);
    assert.ok(
      run.rounds.every((r) => r.contributed.length === 5),
      JSON.stringify(run.rounds.map((r) => r.failures)),
    );
  } finally {
    killAll(f.procs);
    await broker.stop();
  }
});
