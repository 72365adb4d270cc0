import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  checkTopicLevel,
  decodeEnvelope,
  encodeEnvelope,
  mqttTopics,
  parseNodeTopic,
  SequenceGate,
} from './mqtt-envelope.js';

test('envelopes round-trip kind, session, sequence and payload', () => {
  fc.assert(
    fc.property(
      fc.constantFrom('open', 'control', 'chunk' as const),
      fc.stringMatching(/^[0-9a-f]{16}$/),
      fc.nat(2 ** 32 - 1),
      fc.uint8Array({ maxLength: 300 }),
      (kind, session, seq, payload) => {
        const e = decodeEnvelope(encodeEnvelope({ kind, session, seq, payload }));
        assert.deepEqual(
          { ...e, payload: Array.from(e.payload) },
          { kind, session, seq, payload: Array.from(payload) },
        );
      },
    ),
  );
});

test('bad envelopes and names are refused with a reason', () => {
  assert.throws(() => decodeEnvelope(new Uint8Array(5)), /shorter than an envelope header/);
  assert.throws(() => decodeEnvelope(new Uint8Array(20).fill(9)), /unknown envelope kind 9/);
  assert.throws(
    () => encodeEnvelope({ kind: 'open', session: 'xyz', seq: 0, payload: new Uint8Array() }),
    /16 hex digits/,
  );
  assert.throws(() => checkTopicLevel('--fleet', 'a/b'), /MQTT topic level/);
  assert.throws(() => checkTopicLevel('--fleet', '+'), /MQTT topic level/);
});

test('topics: a node name is read back only from its own fleet, out and presence topics', () => {
  const t = mqttTopics('plant1', 'pump-3');
  assert.deepEqual(parseNodeTopic('plant1', t.toCoordinator), { name: 'pump-3', kind: 'out' });
  assert.deepEqual(parseNodeTopic('plant1', t.presence), { name: 'pump-3', kind: 'presence' });
  assert.equal(parseNodeTopic('plant1', t.toNode), null);
  assert.equal(parseNodeTopic('plant2', t.toCoordinator), null);
});

test('SequenceGate passes each number once, in order (QoS 1 duplicates dropped)', () => {
  const g = new SequenceGate();
  assert.deepEqual(
    [0, 1, 1, 2, 1, 5, 5].map((s) => g.accept(s)),
    [true, true, false, true, false, true, false],
  );
});
