import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  anyDpRun,
  isDpConfig,
  readerOf,
  visibleEvents,
  visibleNodes,
  visibleRound,
  visibleRun,
} from './run-visibility.ts';
import type { NodeView } from './live-protocol.ts';

const record = {
  round: 3,
  selected: [1, 4, 7],
  contributed: [1, 7],
  examples: [120, 80],
  failures: [{ nodeId: 4, error: 'straggler' }],
  fused: true,
  trainLoss: 0.4,
  trainAccuracy: 0.9,
  federatedLoss: 0.5,
  federatedAccuracy: 0.88,
  testLoss: 0.3,
  testAccuracy: 0.91,
  bytesSent: 1000,
  bytesReceived: 900,
  seconds: 2,
  epsilon: 1.2,
  delta: 1e-5,
  samplingRate: 0.1,
  noiseSource: 'csprng',
  clipNorm: 1,
};
const dpConfig = { strategy: 'dpfedavg:clip=1,noise=1', rounds: 5 };

test('a DP round record shows public readers no participation, counts or unnoised metrics; the admin sees all', () => {
  const shown = visibleRound(record, true, 'public');
  assert.deepEqual([shown.selected, shown.contributed, shown.examples, shown.failures], [[], [], [], []]);
  assert.deepEqual(
    [shown.trainLoss, shown.trainAccuracy, shown.federatedLoss, shown.federatedAccuracy],
    [null, null, null, null],
  );
  assert.deepEqual(
    [shown.testAccuracy, shown.epsilon, shown.delta, shown.samplingRate, shown.noiseSource],
    [0.91, 1.2, 1e-5, 0.1, 'csprng'],
  );
  assert.match(String((shown as Record<string, unknown>).redacted), /admin only/);
  assert.ok(!JSON.stringify(shown).includes('"nodeId"'));
  assert.equal(visibleRound(record, true, 'admin'), record);
  assert.equal(visibleRound(record, false, 'public'), record, 'runs without DP are shown in full');
  assert.deepEqual(record.contributed, [1, 7], 'the stored record is not changed');
});

test('visibleRun redacts every round of a DP run only', () => {
  const run = { id: 1, config: dpConfig, seed: 1, rounds: [record, { ...record, round: 4 }] };
  assert.ok(visibleRun(run, 'public').rounds.every((r) => (r.contributed as number[]).length === 0));
  assert.deepEqual(visibleRun({ ...run, config: { strategy: 'fedavg' } }, 'public').rounds[0].contributed, [1, 7]);
  assert.deepEqual(visibleRun(run, 'admin').rounds[1].contributed, [1, 7]);
});

test("visibleRun hides a DP run's standardisation coverage (which nodes) from non-admin readers, not its counts", () => {
  const standardization = { rows: 800, nodes: [1, 4], lateNodes: 1, joinedLater: [{ nodeId: 7, firstRound: 3 }] };
  const run = { id: 1, config: dpConfig, seed: 1, rounds: [record], standardization };
  assert.deepEqual(visibleRun(run, 'public').standardization, { rows: 800, nodes: [], lateNodes: 1, joinedLater: [] });
  assert.deepEqual(visibleRun(run, 'admin').standardization, standardization);
  assert.deepEqual(visibleRun({ ...run, config: { strategy: 'fedavg' } }, 'public').standardization, standardization);
  assert.deepEqual(standardization.nodes, [1, 4], 'the stored coverage is not changed');
});

test('isDpConfig: dpfedavg is DP, other strategies and a missing one are not, an unreadable one is treated as DP', () => {
  assert.equal(isDpConfig(dpConfig), true);
  assert.equal(isDpConfig({ strategy: 'fedavg:clip=5' }), false);
  assert.equal(isDpConfig({}), false);
  assert.equal(isDpConfig(null), false);
  assert.equal(isDpConfig({ strategy: 'dpfedavg:bogus' }), true);
  assert.equal(anyDpRun({ listRuns: () => [{ config: { strategy: 'fedavg' } }, { config: dpConfig }] }), true);
  assert.equal(anyDpRun({ listRuns: () => [{ config: { strategy: 'fedavg' } }] }), false);
});

test('events of DP runs lose participation events and node names for public readers', () => {
  const events = [
    { id: 1, runId: 1, at: 0, kind: 'node_failure', data: { round: 1, nodeId: 4, error: 'straggler' } },
    { id: 2, runId: 1, at: 0, kind: 'late_update', data: { nodeId: 4, forRound: 1, atRound: 2 } },
    { id: 3, runId: 1, at: 0, kind: 'rejected', data: { nodeId: 2, name: 'n2', code: 'bad_frame', message: 'x' } },
    { id: 4, runId: 2, at: 0, kind: 'node_failure', data: { round: 1, nodeId: 5, error: 'straggler' } },
    { id: 5, runId: null, at: 0, kind: 'rejected', data: { name: 'x', code: 'enroll_refused' } },
  ];
  const isDp = (id: number) => id === 1;
  const shown = visibleEvents(events, isDp, 'public');
  assert.deepEqual(
    shown.map((e) => e.id),
    [3, 4, 5],
  );
  assert.deepEqual(Object.keys(shown[0].data).sort(), ['code', 'message', 'redacted']);
  assert.deepEqual(shown[1], events[3]);
  assert.deepEqual(visibleEvents(events, isDp, 'admin'), events);
});

test('while a DP run exists the public node table hides rounds contributed, bytes and data counts', () => {
  const node: NodeView = {
    id: 0,
    name: 'a',
    tags: {},
    firstSeen: 0,
    lastSeen: 0,
    roundsContributed: 7,
    bytesSent: 10,
    bytesReceived: 20,
    online: true,
    resources: { cores: 4, examples: 5000, labelCounts: [500, 500] },
  };
  const [shown] = visibleNodes([node], true, 'public');
  assert.deepEqual(Object.keys(shown).sort(), ['firstSeen', 'id', 'lastSeen', 'name', 'online', 'resources', 'tags']);
  assert.deepEqual(shown.resources, { cores: 4 });
  assert.deepEqual(visibleNodes([node], true, 'admin'), [node]);
  assert.deepEqual(visibleNodes([node], false, 'public'), [node]);
});

test('readerOf: only the admin token makes the admin (scoped tokens and nodes are public readers)', () => {
  assert.equal(readerOf({ kind: 'admin' }), 'admin');
  for (const kind of ['token', 'node', 'anonymous']) assert.equal(readerOf({ kind }), 'public');
});
