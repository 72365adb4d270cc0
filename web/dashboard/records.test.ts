import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareConfigs, flattenConfig, roundsCsv, roundsJson } from './records.js';
import type { RoundView } from '../../src/coordinator/live-protocol.js';

const round = (n: number, extra: Partial<RoundView> = {}): RoundView => ({
  round: n,
  selected: [0, 1],
  contributed: [0],
  failures: [{ nodeId: 1, error: 'deadline, "late"' }],
  fused: true,
  trainLoss: 0.5,
  trainAccuracy: 0.8,
  federatedLoss: null,
  federatedAccuracy: null,
  testLoss: 0.4,
  testAccuracy: 0.9,
  bytesSent: 10,
  bytesReceived: 20,
  seconds: 1.5,
  ...extra,
});

test('roundsCsv: one header, one line per round, quoting per RFC 4180, nulls empty', () => {
  const csv = roundsCsv([round(1), round(2, { testAccuracy: null })]);
  const lines = csv.trimEnd().split('\r\n');
  assert.equal(lines.length, 3);
  assert.equal(lines[0].split(',')[0], 'round');
  assert.match(
    lines[1],
    /^1,0\.9,0\.4,,,0\.8,0\.5,true,0 1,0,"\[\{""nodeId"":1,""error"":""deadline, \\""late\\""""\}\]",10,20,1\.5$/,
  );
  assert.ok(lines[2].startsWith('2,,0.4,'), lines[2]);
});

test('roundsJson round-trips the records and the run config', () => {
  const rounds = [round(1)];
  const parsed = JSON.parse(roundsJson({ id: 3, config: { model: 'mlp' }, seed: 1, status: 'completed' }, rounds));
  assert.deepEqual(parsed.rounds, rounds);
  assert.deepEqual(parsed.run, { id: 3, config: { model: 'mlp' }, seed: 1, status: 'completed' });
});

test('flattenConfig and compareConfigs: dotted keys, missing keys differ, equal keys do not', () => {
  assert.deepEqual(flattenConfig({ a: { b: 1, c: 'x' }, d: [1, 2] }), { 'a.b': '1', 'a.c': 'x', d: '[1,2]' });
  const rows = compareConfigs([
    { model: 'mlp', strategy: { name: 'fedavg' }, rounds: 5 },
    { model: 'mlp', strategy: { name: 'fedprox', mu: 0.01 } },
  ]);
  assert.deepEqual(
    rows.map((r) => [r.key, r.differs]),
    [
      ['model', false],
      ['rounds', true],
      ['strategy.mu', true],
      ['strategy.name', true],
    ],
  );
  assert.deepEqual(rows.find((r) => r.key === 'rounds')!.values, ['5', undefined]);
});

test('roundsCsv: personalised accuracy columns only when a round has them, empty where a round lacks them', () => {
  const plain = roundsCsv([round(1)]).split('\r\n')[0];
  assert.doesNotMatch(plain, /personalized/);
  const personal = roundsCsv([
    round(1),
    round(2, { personalizedAccuracyMean: 0.9, personalizedAccuracyP10: 0.8, personalizedAccuracyMin: 0.75 }),
  ]).split('\r\n');
  assert.deepEqual(personal[0].split(',').slice(-3), [
    'personalizedAccuracyMean',
    'personalizedAccuracyP10',
    'personalizedAccuracyMin',
  ]);
  assert.deepEqual(personal[1].split(',').slice(-3), ['', '', '']);
  assert.deepEqual(personal[2].split(',').slice(-3), ['0.9', '0.8', '0.75']);
});
