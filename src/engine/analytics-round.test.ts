import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runAnalytics } from './analytics-round.ts';
import { parseAnalyticsQuery } from './analytics-query.ts';
import { decodeAnalyticsReply, encodeAnalyticsReply } from './analytics-messages.ts';
import { answerAnalyticsFrame } from '../node/analytics-answer.ts';
import { DirectTransport } from '../sim/direct.ts';
import { encodeFrame, peekHeader } from '../core/wire.ts';
import type { Dataset } from '../data/types.ts';

const table = (rows: number[][], y: number[]): Dataset => ({
  source: 't',
  n: rows.length,
  featureShape: [rows[0].length],
  x: Float32Array.from(rows.flat()),
  y: Int32Array.from(y),
  numClasses: 3,
});

test('runAnalytics merges the nodes that answer and lists the others with their reasons', async () => {
  const data = new Map<number, Dataset[]>([
    [
      0,
      [
        table(
          [
            [1, 10],
            [2, 20],
          ],
          [0, 1],
        ),
      ],
    ],
    [1, [table([[3, 30]], [2]), table([[4, 40]], [2])]],
    [2, [table([[1, 2, 3]], [0])]], // another layout: refused, not merged
  ]);
  const answer = (frame: Uint8Array) => answerAnalyticsFrame(frame, (id) => data.get(id));
  const transport = new DirectTransport(
    {
      handle: async (frame) => {
        // Node 3 answers with a frame that is not an analytics reply.
        const h = peekHeader(frame);
        return h.node === 3 ? encodeFrame('eval_result', { round: h.round, node: 3 }) : answer(frame);
      },
    },
    [0, 1, 2, 3],
  );
  const r = await runAnalytics(transport, parseAnalyticsQuery({ query: 'stats,labels,quantiles', bins: 3 }));
  assert.deepEqual(r.nodes.answered, [0, 1]);
  assert.deepEqual(
    r.nodes.failed.map((f) => f.nodeId),
    [2, 3],
  );
  assert.match(r.nodes.failed[0].message, /holds 3 features, other nodes 2/);
  assert.equal(r.count, 4);
  assert.deepEqual(r.stats!.mean, [2.5, 25]);
  assert.deepEqual(r.stats!.variance, [1.25, 125]);
  assert.deepEqual(r.labels, [1, 1, 2]);
  assert.equal(r.rounds, 2);
  assert.deepEqual(r.quantiles!.maxError, [1, 10]);
});

test('with the expected columns given, a node whose data names other columns fails by name', async () => {
  const named = (columns: string[]): Dataset => ({ ...table([[1, 2]], [0]), columns });
  const data = new Map([
    [0, [named(['temp', 'speed'])]],
    [1, [named(['temp', 'rpm'])]],
    [2, [named(['temp', 'speed'])]],
  ]);
  const transport = new DirectTransport(
    { handle: async (frame) => answerAnalyticsFrame(frame, (id) => data.get(id)) },
    [0, 1, 2],
  );
  const r = await runAnalytics(transport, parseAnalyticsQuery({ query: 'stats' }), { columns: ['temp', 'speed'] });
  assert.deepEqual(r.nodes.answered, [0, 2]);
  assert.equal(r.nodes.failed[0].nodeId, 1);
  assert.match(r.nodes.failed[0].message, /feature column 1 is 'rpm', the expected is 'speed'/);
  assert.deepEqual(r.columns, ['temp', 'speed']);
});

test('a reply with negative counts or ragged moments is refused at decoding', () => {
  const good = encodeAnalyticsReply({
    round: 0,
    nodeId: 1,
    featureCount: 1,
    count: 2,
    labels: new Float64Array([1, 1]),
  });
  assert.deepEqual(Array.from(decodeAnalyticsReply(good).labels!), [1, 1]);
  const negative = encodeAnalyticsReply({
    round: 0,
    nodeId: 1,
    featureCount: 1,
    count: 2,
    labels: new Float64Array([-1, 3]),
  });
  assert.throws(() => decodeAnalyticsReply(negative), /counts must be >= 0/);
  const ragged = encodeFrame('analytics_result', {
    round: 0,
    node: 1,
    featureCount: 2,
    count: 2,
    moments: { mean: [1, 2], m2: [0], min: [1, 2], max: [1, 2] },
  });
  assert.throws(() => decodeAnalyticsReply(ragged), /moments.m2' has 1 values, expected 2/);
});

test('parseAnalyticsQuery lists every problem at once', () => {
  assert.throws(
    () => parseAnalyticsQuery({ query: 'median', features: 'x', bins: 0, quantiles: '2', ranges: '5:1' }),
    /query: unknown query 'median'.*features: expected feature indices.*bins: expected.*quantiles: expected.*ranges: expected/,
  );
});
