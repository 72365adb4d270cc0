import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { AsyncEngine, type AsyncEngineOptions } from './async-engine.js';
import { Strategy, parseStrategy } from './strategy.js';
import { decodeMessage } from './messages.js';
import type { Transport } from './transport.js';
import type { RoundRecord } from './round-engine.js';
import { VirtualClock } from '../sim/clock.js';
import type { DeviceProfile } from '../sim/profiles.js';
import { applyDelta } from '../core/aggregate.js';
import { assertClose } from '../../test/support/numeric.js';
import { blobs, healthyNodes, toyFederation, toyLayout } from '../../test/support/toy-federation.js';

const fast: DeviceProfile = { samplesPerSecond: 1000, downloadBytesPerSecond: 1e5, uploadBytesPerSecond: 5e4 };
const slow: DeviceProfile = { ...fast, samplesPerSecond: 150 }; // about 4x a fast node's request time

interface Exchange {
  nodeId: number;
  version: number;
  sent: Float32Array;
  reply: Float32Array;
}

/** Passes frames through and keeps every train request's weights and its reply's weights. */
class RecordingTransport implements Transport {
  readonly exchanges: Exchange[] = [];
  constructor(private readonly inner: Transport) {}
  nodeIds() {
    return this.inner.nodeIds();
  }
  traffic() {
    return this.inner.traffic();
  }
  close() {
    return this.inner.close();
  }
  async request(nodeId: number, frame: Uint8Array): Promise<Uint8Array> {
    const req = decodeMessage(toyLayout, frame);
    const reply = await this.inner.request(nodeId, frame);
    const rep = decodeMessage(toyLayout, reply);
    if (req.type === 'train' && rep.type === 'train_result')
      this.exchanges.push({ nodeId, version: req.req.round, sent: req.req.weights, reply: rep.reply.vector });
    return reply;
  }
}

function setup(
  profiles: DeviceProfile[],
  overrides: Partial<AsyncEngineOptions> = {},
  nodes = healthyNodes(profiles.length),
) {
  const federation = toyFederation(
    nodes,
    profiles.map((_, i) => i),
  );
  const transport = new RecordingTransport(federation.transport);
  const fusions: { record: RoundRecord; global: Float32Array }[] = [];
  const options: AsyncEngineOptions = {
    layout: toyLayout,
    strategy: new Strategy(parseStrategy('fedavg')),
    transport,
    initial: federation.initial,
    seed: 3,
    rounds: 8,
    local: { epochs: 1, batchSize: 16, optimizer: { name: 'sgd', lr: 0.1 } },
    centralEval: federation.centralEval,
    clock: new VirtualClock(profiles),
    bufferSize: 2,
    concurrency: 3,
    serverLr: 0.8,
    onRound: (record, global) => {
      fusions.push({ record, global: new Float32Array(global) });
    },
    ...overrides,
  };
  return { engine: new AsyncEngine(options), transport, fusions, initial: federation.initial };
}

const sha = (w: Float32Array) =>
  createHash('sha256')
    .update(Buffer.from(w.buffer, w.byteOffset, w.byteLength))
    .digest('hex');

test('FedBuff fuses every K updates with staleness weights, matching a replay by the naive formula', async () => {
  const { engine, transport, fusions, initial } = setup([fast, fast, slow, fast]);
  const r = await engine.run();
  assert.equal(r.rounds.length, 8);
  assert.ok(r.rounds[7].testAccuracy > 0.8, `accuracy ${r.rounds[7].testAccuracy}`);
  r.rounds.forEach((rec, i) => {
    assert.equal(rec.round, i + 1);
    assert.equal(rec.contributed.length, 2, 'the buffer is flushed every K = 2 updates');
    assert.equal(rec.staleness!.length, 2);
    assert.ok(
      rec.simTime! > 0 && (i === 0 || rec.simTime! >= r.rounds[i - 1].simTime!),
      'simulated time never goes back',
    );
  });
  // the slow node 2 arrives late: its update is stale; fast ones are mostly fresh
  const stale = r.rounds.flatMap((rec) => rec.contributed.map((n, j) => ({ n, s: rec.staleness![j] })));
  assert.ok(
    stale.some((x) => x.n === 2 && x.s >= 2),
    `slow node's staleness: ${JSON.stringify(stale)}`,
  );

  // Replay: global_v = global_{v-1} + eta * (1/K) sum_i (1/sqrt(1+s_i)) (reply_i - sent_i), with requests and replies as sent.
  const queue = [...transport.exchanges];
  let global = initial;
  for (const { record, global: got } of fusions) {
    const acc = new Float64Array(global.length);
    record.contributed.forEach((nodeId, j) => {
      const s = record.staleness![j];
      const k = queue.findIndex((x) => x.nodeId === nodeId && x.version === record.round - 1 - s);
      assert.ok(k >= 0, `an exchange of node ${nodeId} from version ${record.round - 1 - s}`);
      const [x] = queue.splice(k, 1);
      for (let q = 0; q < acc.length; q++) acc[q] += (x.reply[q] - x.sent[q]) / Math.sqrt(1 + s);
    });
    const expected = applyDelta(
      global,
      Float32Array.from(acc, (v) => v / record.contributed.length),
      0.8,
    );
    assertClose(got, expected);
    global = got;
  }
});

test('deterministic by seed in simulated time: same seed, same model; another seed, another', async () => {
  const profiles = [fast, slow, fast, fast, slow];
  const a = await setup(profiles).engine.run();
  const b = await setup(profiles).engine.run();
  assert.equal(sha(a.weights), sha(b.weights));
  assert.deepEqual(
    a.rounds.map((x) => [x.contributed, x.staleness, x.simTime]),
    b.rounds.map((x) => [x.contributed, x.staleness, x.simTime]),
  );
  const c = await setup(profiles, { seed: 4 }).engine.run();
  assert.notEqual(sha(a.weights), sha(c.weights));
});

test('failed updates are recorded, never fused; offline nodes are not sent work; the target stops the run', async () => {
  const nodes = healthyNodes(4);
  const bad = blobs(200, 5);
  bad.x.fill(NaN);
  nodes.set(1, { train: bad, validation: blobs(10, 6) });
  const never = { ...fast, availability: { periodSeconds: 1e9, onFraction: 0.5, phaseSeconds: 5e8 } }; // offline for 5e8 s
  const { engine } = setup([fast, fast, fast, never], { concurrency: 2, targetAccuracy: 0.85, rounds: 40 }, nodes);
  const r = await engine.run();
  assert.ok(r.rounds.every((x) => !x.contributed.includes(1) && !x.selected.includes(3)));
  assert.ok(r.rounds.some((x) => x.failures.some((f) => f.nodeId === 1 && /non-finite/.test(f.error))));
  assert.ok(r.reachedTarget && r.rounds.length < 40);
});

test('bad FedBuff settings are refused before any work', () => {
  assert.throws(() => setup([fast], { bufferSize: 0 }).engine, /buffer size K must be a whole number >= 1/);
  assert.throws(
    () => setup([fast, fast], { bufferSize: 3, concurrency: 2 }).engine,
    /concurrency must be a whole number >= the buffer size K = 3/,
  );
  assert.throws(() => setup([fast], { serverLr: -1 }).engine, /server learning rate must be a number > 0/);
  assert.throws(() => setup([fast], { rounds: 0 }).engine, /rounds must be a whole number >= 1/);
  assert.throws(
    () => setup([fast], { strategy: new Strategy(parseStrategy('fedprox:0.1')) }).engine,
    /strategy must be plain fedavg, got 'fedprox'/,
  );
});
