// Nodes over MQTT, with real processes: a mosquitto broker on a free loopback port, a coordinator serving a
// fleet through it (and its WebSocket port), node processes linked through the broker beside one on WebSocket.
// Checked: MQTT and WebSocket nodes take part in the same rounds and the final model equals the same run with
// every node on WebSocket (same seed, same enrolment order); the broker killed for 5 s mid-round loses no
// committed round and the run completes; a frame published on another node's topic, and a hello naming another
// node, are refused and logged. The accuracy run (>= 0.97 on MNIST) is in test/slow/mqtt-accuracy.test.ts.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { killAll, runView, waitFor, waitOnline } from './deploy-harness.js';
import { startBroker, mosquittoMissing, type Broker } from './support/mosquitto.js';
import { admin, federation, FLEET, runToEnd } from './support/mqtt-federation.js';
import { encodeEnvelope, mqttTopics, textBytes } from '../src/net/mqtt-envelope.js';

describe('nodes over MQTT', { skip: mosquittoMissing }, () => {
  let broker: Broker;
  before(async () => {
    broker = await startBroker();
  });
  after(async () => {
    await broker?.stop();
  });

  test('MQTT and WebSocket nodes in one run: all fuse every round, same model as the run with every node on WebSocket', {
    timeout: 600_000,
  }, async () => {
    const config = { name: 'mixed', model: 'mlp', rounds: 3, minNodes: 3, limitTest: 1000, seed: 7 };
    const mixed = await federation(broker, 3, 2, 20);
    let viaMqtt;
    try {
      viaMqtt = await runToEnd(mixed, config);
      const nodes = await admin<{ nodes: { name: string; online: boolean }[] }>(mixed.url, '/v1/nodes');
      assert.deepEqual(nodes.nodes.map((n) => n.name).sort(), ['n0', 'n1', 'n2']);
    } finally {
      killAll(mixed.procs);
    }
    assert.equal(viaMqtt.run.rounds.length, 3);
    for (const r of viaMqtt.run.rounds)
      assert.deepEqual([...r.contributed].sort(), [0, 1, 2], `round ${r.round}: all three nodes fused`);
    assert.match(mixed.procs[0].output(), /serving nodes over MQTT/);

    const ws = await federation(null, 3, 0, 20);
    try {
      const viaWs = await runToEnd(ws, config);
      assert.equal(viaMqtt.checkpoint.sha256, viaWs.checkpoint.sha256, 'the transport does not change the model');
    } finally {
      killAll(ws.procs);
    }
  });

  test('the broker down for 5 s mid-round: no committed round lost or repeated, the run completes', {
    timeout: 600_000,
  }, async () => {
    const f = await federation(broker, 3, 3, 20);
    try {
      const { id } = await admin<{ id: number }>(f.url, '/v1/runs', {
        name: 'outage',
        model: 'mlp',
        rounds: 5,
        minNodes: 3,
        limitTest: 500,
        seed: 9,
        roundTimeoutMs: 60_000,
      });
      await waitFor('round 2 committed', async () =>
        (await runView(f.url, id)).roundsCompleted >= 2 ? true : undefined,
      );
      await broker.stop();
      await new Promise((r) => setTimeout(r, 5000));
      await broker.start();
      await waitFor(
        'run completed',
        async () => ((await runView(f.url, id)).status === 'completed' ? true : undefined),
        300_000,
      );
      const run = await runView(f.url, id);
      assert.deepEqual(
        run.rounds.map((r) => r.round),
        [1, 2, 3, 4, 5],
        'every round exactly once',
      );
      assert.ok(run.rounds.at(-1)!.contributed.length >= 1, 'the last round fused updates');
      console.log(`after the outage: contributors per round ${run.rounds.map((r) => r.contributed.length).join(',')}`);
    } catch (e) {
      throw new Error(
        `${(e as Error).message}\n${f.procs.map((p) => p.output().slice(-2000)).join('\n---\n')}\nbroker:\n${broker.output().slice(-1000)}`,
      );
    } finally {
      killAll(f.procs);
    }
  });

  test("a frame on another node's topic and a hello naming another node are refused and logged", {
    timeout: 300_000,
  }, async () => {
    const f = await federation(broker, 1, 1, 20);
    const intruder = await mqtt.connectAsync(broker.url, { clientId: 'intruder', protocolVersion: 5 });
    try {
      // Learn n0's session the way a snooping client could (no broker ACL here), then publish a forged frame in it.
      const victim = mqttTopics(FLEET, 'n0');
      const session = await new Promise<string>((resolve) => {
        void intruder.subscribeAsync(victim.toCoordinator);
        intruder.on('message', (topic, payload) => {
          if (topic === victim.toCoordinator) resolve(Buffer.from(payload.subarray(1, 9)).toString('hex'));
        });
      });
      const forged = new Uint8Array(64).fill(7);
      intruder.publish(
        victim.toCoordinator,
        Buffer.from(encodeEnvelope({ kind: 'chunk', session, seq: 2 ** 31, payload: forged })),
        { qos: 1 },
      );
      // And a hello for 'n0' on a topic of its own, then a hello naming n0 on another node's topic.
      const other = mqttTopics(FLEET, 'x1');
      const fake = '00112233aabbccdd';
      intruder.publish(
        other.toCoordinator,
        Buffer.from(encodeEnvelope({ kind: 'open', session: fake, seq: 0, payload: new Uint8Array() })),
        { qos: 1 },
      );
      intruder.publish(
        other.toCoordinator,
        Buffer.from(
          encodeEnvelope({
            kind: 'control',
            session: fake,
            seq: 1,
            payload: textBytes(JSON.stringify({ type: 'hello', protocol: 2, name: 'n0', resources: {}, tags: {} })),
          }),
        ),
        { qos: 1 },
      );
      await waitFor(
        'both refusals logged',
        async () => {
          const out = f.procs[0].output();
          return out.includes("another node's topic") && out.includes('rejected node message') ? true : undefined;
        },
        30_000,
      );
      // n0 is still there and still the one that was enrolled.
      await waitOnline(f.url, 'n0');
    } finally {
      await intruder.endAsync();
      killAll(f.procs);
    }
  });
});
