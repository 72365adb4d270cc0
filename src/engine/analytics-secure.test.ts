import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runAnalytics, type AnalyticsResult } from './analytics-round.ts';
import { runSecureAnalytics, SECURE_FRACTION_BITS } from './analytics-secure.ts';
import { parseAnalyticsQuery, type AnalyticsQueryInput } from './analytics-query.ts';
import { answerAnalyticsFrame } from '../node/analytics-answer.ts';
import { encodeAnalyticsRequest } from './analytics-messages.ts';
import { decodeMessage } from './messages.ts';
import { encodeFrame } from '../core/wire.ts';
import { SecureNodeSessions, type SecureNodeOptions } from '../node/secure-session.ts';
import { simulationIdentities } from '../sim/sim-host.ts';
import { federatedStandardization, rawShards, shardAnalyticsTransport } from '../sim/analytics.ts';
import { DirectTransport } from '../sim/direct.ts';
import { Rng } from '../core/rng.ts';
import type { Dataset } from '../data/types.ts';

const table = (rows: number[][], y: number[]): Dataset => ({
  source: 't',
  n: rows.length,
  featureShape: [rows[0].length],
  x: Float32Array.from(rows.flat()),
  y: Int32Array.from(y),
  numClasses: 3,
});

/** Four in-process nodes with secure sessions; `faults` injects a dropout. */
function nodes(faults: SecureNodeOptions = {}) {
  const rng = new Rng(5);
  const data = new Map<number, Dataset[]>(
    [0, 1, 2, 3].map((id) => {
      const n = 20 + id * 7;
      const rows = Array.from({ length: n }, () => [rng.normal() * 3 + 40, rng.normal() * 0.5 - 2]);
      return [
        id,
        [
          table(
            rows,
            rows.map((_, i) => (i * (id + 1)) % 3),
          ),
        ],
      ];
    }),
  );
  const secure = {
    sessions: new SecureNodeSessions({ ...faults, identity: simulationIdentities(1, 4) }),
    noiseWords: (nodeId: number, round: number) => new Rng(9).fork(`${nodeId}:${round}`),
  };
  const transport = new DirectTransport(
    { handle: async (frame) => answerAnalyticsFrame(frame, (id) => data.get(id), secure) },
    [0, 1, 2, 3],
  );
  return { data, transport };
}

const query = (input: AnalyticsQueryInput) => parseAnalyticsQuery(input);

/** Secure mean/variance within the fixed-point bound plus float64 rounding (values <= 50) of the plaintext pass. */
function assertClose(secure: AnalyticsResult, plain: AnalyticsResult) {
  const bound = secure.secure!.errorBound!;
  secure.stats!.mean.forEach((m, j) => {
    assert.ok(Math.abs(m - plain.stats!.mean[j]) <= bound.mean[j] + 1e-12 * 50, `mean ${j}`);
    const v = plain.stats!.variance[j];
    assert.ok(Math.abs(secure.stats!.variance[j] - v) <= bound.variance[j] + 1e-11 * (2500 + v), `variance ${j}`);
  });
}

test('secure moments, histograms and labels equal the plaintext pass; the coordinator gets only the sum', async () => {
  const { transport } = nodes();
  const asked = { query: 'moments,histogram,labels', ranges: '30:50,-4:0', features: [0, 1], bins: 8 };
  const plain = await runAnalytics(transport, query(asked));
  const secure = await runSecureAnalytics(transport, query({ ...asked, secagg: true }));
  assert.deepEqual(secure.nodes.answered, [0, 1, 2, 3]);
  assert.equal(secure.count, plain.count);
  assert.deepEqual(secure.labels, plain.labels);
  assert.deepEqual(secure.histogram, plain.histogram);
  assert.equal(secure.stats!.min, undefined);
  assertClose(secure, plain);
  assert.equal(secure.secure!.fractionBits, SECURE_FRACTION_BITS);
  assert.ok(secure.secure!.errorBound!.variance.every((b) => b < 1e-9));
  assert.equal(secure.rounds, 2);
});

test('values outside the declared range are clipped and counted', async () => {
  const { data, transport } = nodes();
  const secure = await runSecureAnalytics(transport, query({ query: 'moments', secagg: true, clip: 41 }));
  const above = [...data.values()].flatMap((d) => [...d[0].x].filter((_, i) => i % 2 === 0 && _ > 41)).length;
  assert.ok(above > 0);
  assert.deepEqual(secure.secure!.clipped, [above, 0]);
  assert.ok(secure.stats!.mean[0] < 41);
});

test('a node dropping after sharing its keys is left out and the sum of the others is still exact', async () => {
  const { data, transport } = nodes({ dropAfterShareKeys: (_round, nodeId) => nodeId === 2 });
  const secure = await runSecureAnalytics(transport, query({ query: 'moments,labels', secagg: true }));
  assert.deepEqual(secure.nodes.answered, [0, 1, 3]);
  assert.match(secure.nodes.failed.find((f) => f.nodeId === 2)!.message, /dropped out after sharing keys/);
  const others = nodes().transport;
  const plain = await runAnalytics(others, query({ query: 'moments,labels' }), { nodeIds: [0, 1, 3] });
  assert.equal(secure.count, plain.count);
  assert.equal(
    secure.count,
    [0, 1, 3].reduce((s, id) => s + data.get(id)![0].n, 0),
  );
  assert.deepEqual(secure.labels, plain.labels);
  assertClose(secure, plain);
});

test('DP under secagg: each node adds its share of the noise before masking; epsilon is for the summed noise', async () => {
  const { transport } = nodes();
  const secure = await runSecureAnalytics(transport, query({ query: 'labels', secagg: true, dpNoise: 4 }));
  const dp = secure.dp!;
  assert.equal(dp.minNodes, 3);
  assert.equal(dp.perNode!.labels, Math.ceil(4 / Math.sqrt(3)));
  assert.equal(dp.sigma.labels, dp.perNode!.labels * Math.sqrt(3));
  // The same noise multiplier centrally (sigma = 4 exactly) spends at least as much as the summed noise here.
  const central = await runAnalytics(transport, query({ query: 'labels', dpNoise: 4 }), {
    dpWords: () => new Rng(1).fork('dp'),
  });
  assert.ok(dp.epsilon > 0 && dp.epsilon <= central.dp!.epsilon, `${dp.epsilon} vs ${central.dp!.epsilon}`);
  assert.notDeepEqual(secure.labels, (await runAnalytics(transport, query({ query: 'labels' }))).labels);
});

test('refused: min/max and histograms without ranges under secagg, bad clip, too few nodes', async () => {
  assert.throws(
    () => query({ query: 'stats', secagg: true }),
    /query: stats includes min and max, which are not additive .* ask for 'moments'/,
  );
  assert.throws(() => query({ query: 'quantiles', secagg: true }), /ranges: histograms and quantiles under secagg/);
  assert.throws(() => query({ query: 'moments', secagg: true, clip: -1 }), /clip: expected a number in \(0, 2\^60\]/);
  assert.throws(() => query({ query: 'moments', clip: 3 }), /clip: only with secagg/);
  assert.throws(() => query({ query: 'moments', secagg: 'yes' }), /secagg: expected true or false, got 'yes'/);
  assert.throws(
    () => query({ query: 'moments', secagg: true, ranges: '0:1', clip: 3 }),
    /clip: give ranges or clip, not both/,
  );
  const { transport } = nodes();
  await assert.rejects(
    runSecureAnalytics(transport, query({ query: 'moments', secagg: true }), { nodeIds: [1] }),
    /secure aggregation needs at least 2 nodes, 1 connected/,
  );
  await assert.rejects(
    runSecureAnalytics(transport, query({ query: 'moments', secagg: true, features: [5] })),
    /feature index 5 is out of range: the nodes' data has 2 features/,
  );
});

test('real MNIST, 5 nodes: secure moments and labels equal the plaintext pass within the stated bound', async () => {
  const { data, parts } = rawShards({ dataset: 'mnist', partition: 'dirichlet:0.5', nodes: 5, seed: 3 });
  const transport = shardAnalyticsTransport(data.train, parts, 3);
  const plain = await runAnalytics(transport, query({ query: 'moments,labels' }));
  const secure = await runSecureAnalytics(transport, query({ query: 'moments,labels', secagg: true, ranges: '0:1' }));
  assert.equal(secure.count, 60000);
  assert.deepEqual(secure.labels, plain.labels);
  assert.deepEqual(secure.secure!.clipped, new Array(784).fill(0));
  assertClose(secure, plain);
});

test('federated standardisation with secagg: the secure pass gives the plaintext mean and std within 1e-9', async () => {
  const { data, parts } = rawShards({
    dataset: 'csv:examples/industrial-fault/synthetic-pump-sensors.csv?label=fault&keep=machine_id',
    partition: 'natural:machine_id',
    nodes: 8,
    seed: 1,
  });
  const plain = await federatedStandardization(data.train, parts);
  const secure = await federatedStandardization(data.train, parts, true);
  assert.ok(secure.result.secure, 'the pass ran securely');
  plain.stats.mean.forEach((m, j) => {
    assert.ok(Math.abs(secure.stats.mean[j] - m) <= 1e-9 * Math.abs(m), `mean ${j}`);
    assert.ok(Math.abs(secure.stats.std[j] - plain.stats.std[j]) <= 1e-9 * plain.stats.std[j], `std ${j}`);
  });
});

test('a node refuses a malformed secure request or one its data does not fit, with an error frame', () => {
  const { data } = nodes();
  const secure = {
    sessions: new SecureNodeSessions({ identity: simulationIdentities(1, 4) }),
    noiseWords: () => new Rng(1),
  };
  const answer = (frame: Uint8Array) => {
    const reply = decodeMessage(
      [],
      answerAnalyticsFrame(frame, (id) => data.get(id), secure),
    );
    assert.equal(reply.type, 'error');
    return reply.type === 'error' ? reply.message : '';
  };
  const base = { type: 'analytics', round: 7, node: 0, moments: false, labels: false };
  assert.match(answer(encodeFrame('analytics', { ...base, secure: 3 })), /field 'secure' must be an object/);
  assert.match(
    answer(encodeFrame('analytics', { ...base, secure: { session: {}, fractionBits: 40, limbs: 4 } })),
    /secagg.session must be a string/,
  );
  const session = { session: 's', clientId: 1, threshold: 2, scaleBits: 0, clip: 1, maxWeight: 1, maxClients: 4 };
  const request = (spec: object) =>
    encodeAnalyticsRequest({
      round: 7,
      nodeId: 0,
      moments: false,
      labels: false,
      secure: { session, fractionBits: 40, limbs: 4, maxRows: 1000, classes: 0, ...spec },
    });
  assert.match(answer(request({ maxRows: 5 })), /this node holds 20 rows, more than the secure pass's limit of 5/);
  assert.match(answer(request({ value: { lo: [0], hi: [1] } })), /value ranges cover 1 features, the rows have 2/);
  assert.match(answer(request({ limbs: 17 })), /limbs must be a whole number in \[1, 16\]/);
  assert.match(answer(request({ classes: 2 })), /this node holds 3 classes, the pass gives 2 slots/);
  assert.match(answer(request({ classes: 70000 })), /classes must be a whole number in \[0, 65536\]/);
});
