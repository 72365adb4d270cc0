import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { applyPolicy, mergeEscalated } from './policy.js';

test('threshold: accept at or above, abstain below; regression outputs are accepted', () => {
  const { answers, escalate } = applyPolicy(
    [{ class: 1, confidence: 0.9 }, { class: 0, confidence: 0.5 }, { value: [3.5] }],
    7,
    { threshold: 0.9, escalate: false },
  );
  assert.deepEqual(
    answers.map((a) => a.decision),
    ['accept', 'abstain', 'accept'],
  );
  assert.deepEqual(escalate, []);
  assert.ok(answers.every((a) => a.modelVersion === 7));
  assert.throws(() => applyPolicy([], 1, { threshold: 1.5, escalate: false }), /threshold/);
});

test('escalation replaces exactly the low-confidence answers, keeping what the edge said', () => {
  const { answers, escalate } = applyPolicy(
    [
      { class: 1, confidence: 0.3 },
      { class: 2, confidence: 0.95 },
      { class: 0, confidence: 0.4 },
    ],
    3,
    { threshold: 0.5, escalate: true },
  );
  assert.deepEqual(escalate, [0, 2]);
  const merged = mergeEscalated(answers, escalate, [
    { class: 4, confidence: 0.8, modelVersion: 'escalation:x' },
    { class: 5, confidence: 0.7, modelVersion: 'escalation:x' },
  ]);
  assert.deepEqual(merged[0], {
    class: 4,
    confidence: 0.8,
    decision: 'escalated',
    modelVersion: 'escalation:x',
    edge: { class: 1, confidence: 0.3, modelVersion: 3 },
  });
  assert.deepEqual(merged[1], answers[1]);
  assert.equal(merged[2].class, 5);
  const failed = mergeEscalated(answers, escalate, new Error('down'));
  assert.deepEqual(
    failed.map((a) => [a.decision, a.escalationFailed]),
    [
      ['abstain', 'down'],
      ['accept', undefined],
      ['abstain', 'down'],
    ],
  );
});

test('property: escalated count = samples below the threshold; every sample gets one decision', () => {
  fc.assert(
    fc.property(
      fc.array(fc.float({ min: 0, max: 1, noNaN: true })),
      fc.float({ min: 0, max: 1, noNaN: true }),
      fc.boolean(),
      (confs, threshold, escalate) => {
        const { answers, escalate: idx } = applyPolicy(
          confs.map((c) => ({ class: 0, confidence: c })),
          1,
          { threshold, escalate },
        );
        const below = confs.filter((c) => c < threshold).length;
        assert.equal(idx.length, escalate ? below : 0);
        assert.equal(answers.filter((a) => a.decision === 'abstain').length, below);
        assert.equal(answers.length, confs.length);
      },
    ),
  );
});
