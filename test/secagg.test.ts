/**
 * Secure aggregation as a round mode, in simulation (real MNIST, worker-thread nodes): each round's fused
 * model equals plaintext FedAvg over the surviving nodes within the fixed-point error bound, with 0% and
 * 30% of nodes dropping after sharing keys; and what the coordinator receives is masked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadDatasetSpec } from '../src/data/load.js';
import { subset } from '../src/data/types.js';
import { Rng } from '../src/core/rng.js';
import { makeLayout } from '../src/core/params.js';
import { parsePartitionSpec, partition } from '../src/core/partition.js';
import { builtinModel, initialWeights, tensorSpecs } from '../src/model/spec.js';
import { WorkerPoolTransport } from '../src/sim/pool.js';
import { shareDataset } from '../src/sim/shared-data.js';
import { RoundEngine, type RoundRecord } from '../src/engine/round-engine.js';
import { parseStrategy, Strategy, type TrainResult } from '../src/engine/strategy.js';
import { decodeMessage, encodeTrainRequest } from '../src/engine/messages.js';
import { peekHeader } from '../src/core/wire.js';
import { DEFAULT_SECAGG } from '../src/engine/secure-round.js';
import { decodeSecAggFrame, largestScaleBits, secAggDropouts } from '../src/engine/secure-messages.js';
import { encodeWeightedUpdate, fixedPointConfig, fixedPointErrorBound } from '../src/core/secagg/fixed-point.js';
import { runSimulation } from '../src/sim/simulate.js';
import type { Transport } from '../src/engine/transport.js';
import { assertClose } from './support/numeric.js';

const SEED = 7;
const NODES = 10;
const ROUNDS = 2;
const local = { epochs: 1, batchSize: 32, optimizer: { name: 'sgd' as const, lr: 0.1 } };

const data = loadDatasetSpec('mnist');
const train = subset(
  data.train,
  Array.from({ length: 2000 }, (_, i) => i),
);
const spec = { ...builtinModel('linear', train.featureShape, train.numClasses), optimizer: local.optimizer };
const layout = makeLayout(tensorSpecs(spec));
const parts = partition(
  parsePartitionSpec('iid'),
  { labels: train.y, numClasses: train.numClasses },
  NODES,
  new Rng(SEED).fork('partition'),
);
const initial = initialWeights(tensorSpecs(spec), new Rng(SEED).fork('init'));

/** A transport that records every reply frame the coordinator receives, by node. */
function recording(inner: Transport): Transport & { replies: { nodeId: number; frame: Uint8Array }[] } {
  const replies: { nodeId: number; frame: Uint8Array }[] = [];
  return {
    replies,
    nodeIds: () => inner.nodeIds(),
    request: async (nodeId, frame) => {
      const reply = await inner.request(nodeId, frame);
      replies.push({ nodeId, frame: reply.slice() });
      return reply;
    },
    traffic: () => inner.traffic(),
    close: () => inner.close(),
    pin: (n) => inner.pin?.(n),
    unpin: (n) => inner.unpin?.(n),
  };
}

/** Plaintext local training of `nodes` from `global` with the engine's per-node seed (the honest updates). */
async function plaintextUpdates(
  transport: Transport,
  round: number,
  global: Float32Array,
  nodes: readonly number[],
): Promise<TrainResult[]> {
  return Promise.all(
    nodes.map(async (nodeId) => {
      const config = { ...local, proxMu: 0, seed: RoundEngine.nodeSeed(SEED, round, nodeId) };
      const msg = decodeMessage(
        layout,
        await transport.request(
          nodeId,
          encodeTrainRequest(layout, { round, nodeId, mode: 'weights', config, weights: global }),
        ),
      );
      assert.equal(msg.type, 'train_result');
      const r = (msg as Extract<typeof msg, { type: 'train_result' }>).reply;
      return { nodeId, numExamples: r.numExamples, steps: r.steps, vector: r.vector, metrics: r.metrics };
    }),
  );
}

async function secureRun(dropout: number) {
  const pool = await WorkerPoolTransport.start(
    {
      data: shareDataset(train),
      parts,
      validationFraction: 0.2,
      seed: SEED,
      spec,
      trainer: 'engine',
      ...(dropout > 0 ? { secaggDropout: dropout } : {}),
    },
    2,
  );
  const transport = recording(pool);
  const globals: Float32Array[] = [initial];
  const records: RoundRecord[] = [];
  const engine = new RoundEngine({
    layout,
    strategy: new Strategy(parseStrategy('fedavg')),
    transport,
    initial,
    seed: SEED,
    rounds: ROUNDS,
    fraction: 1,
    minNodes: 2,
    evalFraction: 0,
    local,
    secure: DEFAULT_SECAGG,
    onRound: (r, g) => {
      records.push(r);
      globals.push(g.slice());
    },
  });
  await engine.run();
  return { pool, transport, globals, records };
}

for (const dropout of [0, 0.3]) {
  test(`secure aggregation equals plaintext FedAvg over the survivors within the fixed-point bound (${dropout * 100}% dropout)`, async (t) => {
    const { pool, transport, globals, records } = await secureRun(dropout);
    try {
      assert.equal(records.length, ROUNDS);
      const scaleBits = largestScaleBits(NODES, DEFAULT_SECAGG.clip, DEFAULT_SECAGG.maxWeight);
      const fp = fixedPointConfig({
        scaleBits,
        clip: DEFAULT_SECAGG.clip,
        maxWeight: DEFAULT_SECAGG.maxWeight,
        maxClients: NODES,
      });
      for (const rec of records) {
        const everyone = [...Array(NODES).keys()];
        const dropped = secAggDropouts(SEED, rec.round, everyone, dropout);
        assert.equal(dropped.size, Math.floor(dropout * NODES));
        const survivors = everyone.filter((n) => !dropped.has(n));
        assert.deepEqual(rec.contributed, survivors, 'the survivors are in the sum');
        assert.deepEqual(
          rec.failures.map((f) => f.nodeId),
          [...dropped].sort((a, b) => a - b),
        );
        for (const f of rec.failures) assert.match(f.error, /dropped out after sharing keys/);
        assert.ok(rec.fused);

        const before = globals[rec.round - 1];
        const after = globals[rec.round];
        const updates = await plaintextUpdates(pool, rec.round, before, survivors);
        const W = updates.reduce((a, u) => a + u.numExamples, 0);
        const expected = new Strategy(parseStrategy('fedavg')).aggregateTrain(before, updates);
        // Fixed-point rounding of the weighted sum, then one Float32 rounding of the mean and of global + mean.
        const bound = fixedPointErrorBound(fp, survivors.length) / W;
        assertClose(after, expected, bound, 2 ** -22, before);
        t.diagnostic(
          `round ${rec.round}: ${survivors.length} survivors, max |secure - plaintext| = ${maxAbsDiff(after, expected).toExponential(2)}, fixed-point bound ${bound.toExponential(2)} (2^-${scaleBits} scale)`,
        );
        if (dropout > 0) {
          // The check can fail: FedAvg over everyone (dropped nodes included) is far outside the bound.
          const all = new Strategy(parseStrategy('fedavg')).aggregateTrain(before, [
            ...updates,
            ...(await plaintextUpdates(pool, rec.round, before, [...dropped])),
          ]);
          assert.throws(() => assertClose(after, all, bound, 2 ** -22, before));
        }

        // (b) The coordinator's inputs are masked: no masked input equals or correlates with its node's true update.
        const masked = transport.replies
          .filter((r) => peekHeader(r.frame).type === 'secagg.masked-input')
          .map((r) => decodeSecAggFrame(r.frame))
          .filter((m) => m.round === rec.round);
        assert.deepEqual(
          masked.map((m) => m.nodeId).sort((a, b) => a - b),
          survivors,
        );
        for (const m of masked) {
          assert.equal(m.msg.type, 'secagg.masked-input');
          const y = (m.msg as { masked: Uint32Array }).masked;
          const u = updates.find((x) => x.nodeId === m.nodeId)!;
          const delta = u.vector.map((v, j) => v - before[j]);
          const truth = encodeWeightedUpdate(delta, u.numExamples, fp);
          assert.equal(y.length, truth.length);
          let same = 0;
          for (let j = 0; j < y.length; j++) if (y[j] === truth[j]) same++;
          assert.ok(same <= 2, `node ${m.nodeId}: ${same} masked coordinates equal the true encoding`);
          const r = correlation(
            Array.from(y.subarray(0, delta.length), (v) => v | 0),
            Array.from(delta),
          );
          assert.ok(Math.abs(r) < 0.1, `node ${m.nodeId}: masked input correlates with its update (r = ${r})`);
          // The true update's own encoding does correlate with it: the measure can see a leak.
          assert.ok(
            correlation(
              Array.from(truth.subarray(0, delta.length), (v) => v | 0),
              Array.from(delta),
            ) > 0.99,
          );
        }
        // No plaintext update reached the coordinator in a secure round.
        for (const r of transport.replies) assert.notEqual(peekHeader(r.frame).type, 'train_result');
      }
    } finally {
      await pool.close();
    }
  });
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let j = 0; j < a.length; j++) m = Math.max(m, Math.abs(a[j] - b[j]));
  return m;
}

function correlation(a: number[], b: number[]): number {
  const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
  const ma = mean(a);
  const mb = mean(b);
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < a.length; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

test('secure aggregation rejects strategies and flags that need individual updates, before any work', async () => {
  for (const strategy of ['fedmedian', 'krum:f=1', 'fednova', 'dpfedavg:clip=1,noise=1', 'fedsgd', 'fedavg:clip=5']) {
    await assert.rejects(
      runSimulation({ secagg: true, strategy, nodes: 4, rounds: 1, limitTrain: 100 }),
      /secure aggregation/,
      strategy,
    );
  }
  await assert.rejects(
    runSimulation({ secaggDropout: 0.3, nodes: 4, rounds: 1 }),
    /--secagg-dropout: applies with --secagg only/,
  );
  await assert.rejects(runSimulation({ secagg: true, secaggDropout: 1, nodes: 4, rounds: 1 }), /--secagg-dropout/);
  await assert.rejects(
    runSimulation({ secagg: true, mode: 'async', nodes: 4, rounds: 1 }),
    /--secagg: works with synchronous rounds only, not --mode async/,
  );
  await assert.rejects(
    runSimulation({ secagg: true, profile: 'slow20', nodes: 4, rounds: 1 }),
    /--secagg: works with synchronous rounds only, not with --profile/,
  );
  await assert.rejects(
    runSimulation({ secagg: true, queue: 'redis://127.0.0.1:6379', nodes: 4, rounds: 1 }),
    /--secagg: runs on worker threads only/,
  );
});
