import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { mergedAnswer, requirePlaintext } from './edge-analytics.ts';
import { answerAnalytics, answerAnalyticsFrame } from '../node/analytics-answer.ts';
import { ANALYTICS_REQUEST, type AnalyticsRequest } from '../engine/analytics-messages.ts';
import { DirectTransport } from '../sim/direct.ts';
import { encodeFrame, peekHeader } from '../core/wire.ts';
import type { Dataset } from '../data/types.ts';

const F = 3;
const table = (values: number[], labels: number[], columns?: string[]): Dataset => ({
  source: 't',
  n: labels.length,
  featureShape: [F],
  x: Float32Array.from(values),
  y: Int32Array.from(labels),
  numClasses: 4,
  ...(columns ? { columns } : {}),
});
const hosting = (data: Map<number, Dataset[]>) =>
  new DirectTransport({ handle: async (frame) => answerAnalyticsFrame(frame, (id) => data.get(id)) }, [...data.keys()]);
const request: AnalyticsRequest = {
  round: 7,
  nodeId: 42,
  moments: true,
  labels: true,
  histogram: { bins: 5, lo: [-50, -50, -50], hi: [50, 50, 50] },
};
const close = (a: ArrayLike<number>, b: ArrayLike<number>, rel: number) =>
  Array.from(a).every((v, j) => Math.abs(v - b[j]) <= rel * Math.max(1, Math.abs(v), Math.abs(b[j])));

test('property: the merged answer of the local nodes is the answer of one node holding all their rows', async () => {
  const node = fc
    .integer({ min: 1, max: 12 })
    .chain((n) =>
      fc.tuple(
        fc.array(fc.float({ min: -40, max: 40, noNaN: true }), { minLength: n * F, maxLength: n * F }),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: n, maxLength: n }),
      ),
    );
  await fc.assert(
    fc.asyncProperty(fc.array(node, { minLength: 1, maxLength: 5 }), async (nodes) => {
      const parts = nodes.map(([x, y]) => table(x, y));
      const merged = await mergedAnswer(hosting(new Map(parts.map((d, i) => [i, [d]]))), request);
      const pooled = answerAnalytics(request, [
        table(
          parts.flatMap((d) => [...d.x]),
          parts.flatMap((d) => [...d.y]),
        ),
      ]);
      assert.equal(merged.nodeId, 42, "answered for the cloud's node id");
      assert.equal(merged.count, pooled.count);
      assert.deepEqual(merged.labels, pooled.labels);
      assert.deepEqual(merged.histogram, pooled.histogram);
      assert.deepEqual([merged.moments!.min, merged.moments!.max], [pooled.moments!.min, pooled.moments!.max]);
      assert.ok(close(merged.moments!.mean, pooled.moments!.mean, 1e-12), 'mean');
      assert.ok(close(merged.moments!.m2, pooled.moments!.m2, 1e-9), 'm2');
    }),
    { numRuns: 60 },
  );
});

test('one local node failing, or holding other columns, fails the answer by name', async () => {
  const named = (columns: string[]) => table([1, 2, 3], [0], columns);
  const other = hosting(
    new Map([
      [0, [named(['a', 'b', 'c'])]],
      [1, [named(['a', 'b', 'd'])]],
    ]),
  );
  await assert.rejects(mergedAnswer(other, request), /local node 1's columns are a, b, d, local node 0's a, b, c/);
  const empty = hosting(
    new Map([
      [0, [named(['a', 'b', 'c'])]],
      [3, []],
    ]),
  );
  await assert.rejects(
    mergedAnswer(empty, request),
    /not every local node answered \(local node 3: node 3 holds no data here\)/,
  );
  await assert.rejects(mergedAnswer(hosting(new Map()), request), /no live local node/);
});

test('a request with fields a plaintext request has not (a secure round) is refused, not forwarded', () => {
  const plain = encodeFrame(ANALYTICS_REQUEST, { round: 1, node: 0, moments: true, labels: false, features: [0] });
  assert.doesNotThrow(() => requirePlaintext(peekHeader(plain)));
  const secure = encodeFrame(ANALYTICS_REQUEST, { round: 1, node: 0, moments: true, labels: false, secagg: {} });
  assert.throws(() => requirePlaintext(peekHeader(secure)), /forwards plaintext analytics only; .* carries secagg/);
});
