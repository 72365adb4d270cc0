/**
 * Secure aggregation against a malicious coordinator, through the round engine and the simulation transport
 * (worker-thread nodes, real MNIST). The attacker is a coordinator-side shim around the transport that
 * rewrites what the coordinator sends; the engine, the protocol and the nodes are the real ones. Each attack
 * must abort the round (no fused model) with the nodes' reason in the round's failures.
 */
import { after, before, test } from 'node:test';
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
import { parseStrategy, Strategy } from '../src/engine/strategy.js';
import { decodeFrame, encodeFrame, peekHeader } from '../src/core/wire.js';
import { DEFAULT_SECAGG } from '../src/engine/secure-round.js';
import { decodeSecAggFrame, encodeSecAggFrame } from '../src/engine/secure-messages.js';
import { generateKeyPair } from '../src/core/secagg/masks.js';
import { rngRandomBytes } from '../src/core/secagg/random.js';
import { advertMessage, identityPublicKey, sign, simulationIdentityKey } from '../src/core/secagg/signing.js';
import type { SecAggMessage } from '../src/core/secagg/codec.js';
import type { Transport } from '../src/engine/transport.js';

const SEED = 11;
const NODES = 6;
const local = { epochs: 1, batchSize: 32, optimizer: { name: 'sgd' as const, lr: 0.1 } };
const data = loadDatasetSpec('mnist');
const train = subset(
  data.train,
  Array.from({ length: 600 }, (_, i) => i),
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

type Rewrite = (nodeId: number, frame: Uint8Array) => Uint8Array;

/** The malicious coordinator's network: every request frame passes through `rewrite` on its way to a node. */
function tampering(inner: Transport, rewrite: Rewrite): Transport {
  return {
    nodeIds: () => inner.nodeIds(),
    request: (nodeId, frame) => inner.request(nodeId, rewrite(nodeId, frame)),
    traffic: () => inner.traffic(),
    close: async () => {},
    pin: (n) => inner.pin?.(n),
    unpin: (n) => inner.unpin?.(n),
  };
}

/** Rewrites the secure-aggregation messages of one type (decoded, changed, re-encoded); others pass. */
function rewriteMessages<T extends SecAggMessage['type']>(
  type: T,
  change: (nodeId: number, msg: Extract<SecAggMessage, { type: T }>) => SecAggMessage,
): Rewrite {
  return (nodeId, frame) => {
    if (peekHeader(frame).type !== type) return frame;
    const { round, msg } = decodeSecAggFrame(frame);
    return encodeSecAggFrame(change(nodeId, msg as Extract<SecAggMessage, { type: T }>), round, nodeId);
  };
}

// Pinned nodes: each virtual node lives on one worker for the run, with its memory of rounds (as simulate does).
let pool: WorkerPoolTransport;
before(async () => {
  pool = await WorkerPoolTransport.start(
    { data: shareDataset(train), parts, validationFraction: 0, seed: SEED, spec, trainer: 'engine' },
    2,
    true,
  );
});
after(async () => {
  await pool.close();
});

/** One secure round numbered `round` through the shim (each test its own round: nodes remember rounds). */
async function secureRound(round: number, rewrite: Rewrite): Promise<RoundRecord> {
  const records: RoundRecord[] = [];
  const engine = new RoundEngine({
    layout,
    strategy: new Strategy(parseStrategy('fedavg')),
    transport: tampering(pool, rewrite),
    initial,
    seed: SEED,
    startRound: round,
    rounds: round,
    fraction: 1,
    minNodes: 2,
    evalFraction: 0,
    local,
    secure: DEFAULT_SECAGG,
    onRound: (r) => {
      records.push(r);
    },
  });
  await engine.run();
  assert.equal(records.length, 1);
  return records[0];
}

function assertAborted(rec: RoundRecord, reason: RegExp): void {
  assert.equal(rec.fused, false, 'no model is fused');
  assert.deepEqual(rec.contributed, []);
  assert.deepEqual(
    rec.failures.map((f) => f.nodeId),
    [...Array(NODES).keys()],
    'every node is recorded as failed',
  );
  for (const f of rec.failures) assert.match(f.error, reason, `node ${f.nodeId}`);
}

test('control: a shim that decodes and re-encodes every message unchanged leaves the round fused', async () => {
  const identity: Rewrite = (nodeId, frame) => {
    const type = String(peekHeader(frame).type);
    if (!type.startsWith('secagg.')) return frame;
    const { round, msg } = decodeSecAggFrame(frame);
    return encodeSecAggFrame(msg, round, nodeId);
  };
  const rec = await secureRound(1, identity);
  assert.equal(rec.fused, true);
  assert.deepEqual(rec.contributed, [...Array(NODES).keys()]);
  assert.deepEqual(rec.failures, []);
});

test('a substituted key advertisement: every node refuses the roster (untrusted_key); the round aborts', async (t) => {
  // The coordinator replaces node 0's keys with its own, signed with an identity key it holds.
  const attacker = simulationIdentityKey(SEED, 9999);
  const keys = generateKeyPair(rngRandomBytes(new Rng(1)));
  const rec = await secureRound(
    2,
    rewriteMessages('secagg.key-roster', (_nodeId, roster) => ({
      ...roster,
      clients: roster.clients.map((k) =>
        k.id !== 1
          ? k
          : {
              ...k,
              sPublicKey: keys.publicKey,
              identityKey: identityPublicKey(attacker),
              signature: sign(advertMessage(roster.session, 1, k.cPublicKey, keys.publicKey), attacker),
            },
      ),
    })),
  );
  assertAborted(rec, /secure aggregation refused \(untrusted_key\): .*client 1 is not the one pinned for it/);
  t.diagnostic(rec.failures[1].error);
});

test('a t = 2 roster: every node refuses the weak threshold and the round aborts', async (t) => {
  // The coordinator lowers the threshold in each node's session settings (6 nodes: the engine asks for 4).
  const rec = await secureRound(3, (_nodeId, frame) => {
    const f = decodeFrame(frame);
    if (f.header.type !== 'train' || f.header.secagg === undefined) return frame;
    const { type, ...fields } = f.header;
    return encodeFrame(type, { ...fields, secagg: { ...(fields.secagg as object), threshold: 2 } }, f.tensors);
  });
  assertAborted(rec, /secure aggregation refused \(weak_threshold\): .*threshold 2 is at most half of the 6 clients/);
  t.diagnostic(rec.failures[0].error);
});

test('a split view: half the nodes are told node 0 dropped; no node unmasks (split_view)', async (t) => {
  // Nodes 3-5 see U3 without client 1 (node 0) in the consistency round and in the unmask request; nodes 0-2
  // see the true U3. Neither view gathers t = 4 signatures.
  const groupB = (nodeId: number) => nodeId >= 3;
  const withoutNode0 = (survivors: number[]) => survivors.filter((id) => id !== 1);
  const check = rewriteMessages('secagg.consistency-request', (nodeId, m) =>
    groupB(nodeId) ? { ...m, survivors: withoutNode0(m.survivors) } : m,
  );
  const unmask = rewriteMessages('secagg.unmask-request', (nodeId, m) =>
    groupB(nodeId) ? { ...m, survivors: withoutNode0(m.survivors) } : m,
  );
  const rec = await secureRound(4, (nodeId, frame) => unmask(nodeId, check(nodeId, frame)));
  assertAborted(rec, /secure aggregation refused \(split_view\): .*only 3 of 6 consistency signatures are valid/);
  t.diagnostic(rec.failures[0].error);
});

test('a second session for the same round: every node refuses it (second_session) and the round aborts', async (t) => {
  const first = await secureRound(5, (_n, frame) => frame);
  assert.equal(first.fused, true);
  // The coordinator runs round 5 again (a fresh session, say with other survivors).
  const again = await secureRound(5, (_n, frame) => frame);
  assertAborted(again, /secure aggregation refused \(second_session\): node \d already shared its keys for round 5/);
  t.diagnostic(again.failures[0].error);
});
