import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../rng.js';
import { encodeFrame, FrameError } from '../wire.js';
import { decodeSecAggMessage, encodeSecAggMessage, type SecAggMessage } from './codec.js';
import { addMod32 } from './fixed-point.js';
import { rngRandomBytes } from './random.js';
import { simulateSecAgg } from './simulate.js';
import { identityPublicKey, pinnedPeerTrust, simulationIdentityKey } from './signing.js';

test('a whole session carried through binary frames gives the exact sum, and every message round-trips', () => {
  const rng = new Rng(11);
  const inputs = Array.from({ length: 6 }, () => Uint32Array.from({ length: 257 }, () => rng.nextU32()));
  let frames = 0;
  const result = simulateSecAgg({
    threshold: 4,
    inputs,
    randomBytesFor: (id) => rngRandomBytes(new Rng(id)),
    drops: { 3: 'before-masked-input', 5: 'before-unmask' },
    carry: (m) => {
      const bytes = encodeSecAggMessage(m);
      const back = decodeSecAggMessage(bytes);
      assert.deepEqual(back, m);
      frames++;
      return back;
    },
  });
  assert.ok(frames > 20);
  const want = new Uint32Array(257);
  for (const id of [1, 2, 4, 5, 6]) addMod32(want, inputs[id - 1]);
  assert.deepEqual(result.included, [1, 2, 4, 5, 6]);
  assert.deepEqual(result.sum, want);
});

test('decodeSecAggMessage rejects malformed fields with FrameError bad_secagg', () => {
  const bad = (type: string, fields: Record<string, unknown>, re: RegExp) =>
    assert.throws(
      () => decodeSecAggMessage(encodeFrame(type, fields)),
      (e: unknown) => e instanceof FrameError && e.code === 'bad_secagg' && re.test(e.message),
    );
  const key = 'ab'.repeat(32);
  bad('secagg.advertise-keys', { session: 's', id: 1, c: key, s: 'ab' }, /s must be 64 hex digits/);
  bad('secagg.advertise-keys', { session: 's', id: 0, c: key, s: key }, /id must be an integer/);
  bad('secagg.advertise-keys', { session: '', id: 1, c: key, s: key }, /session/);
  bad('secagg.key-roster', { session: 's', clients: [null] }, /clients\[0\] must be an object/);
  bad(
    'secagg.share-keys',
    { session: 's', from: 1, shares: [{ to: 2, ct: 'zz'.repeat(120) }] },
    /shares\[0\].ct must be 240 hex digits/,
  );
  bad('secagg.unmask-request', { session: 's', survivors: 'all' }, /survivors must be a list/);
  bad(
    'secagg.unmask-shares',
    { session: 's', from: 1, selfMaskShares: [{ of: 1, share: '00' }], keyShares: [] },
    /share must be 96 hex digits/,
  );
  bad('secagg.masked-input', { session: 's', from: 1 }, /exactly one int32 vector/);
  bad('secagg.nonsense', { session: 's' }, /unknown secure-aggregation message type/);
  assert.throws(() => encodeSecAggMessage({ type: 'nope' } as unknown as SecAggMessage), /unknown message type nope/);
});

test('the signed variant (identity keys, signatures, consistency round) round-trips through binary frames', () => {
  const rng = new Rng(12);
  const inputs = Array.from({ length: 5 }, () => Uint32Array.from({ length: 33 }, () => rng.nextU32()));
  const keys = [1, 2, 3, 4, 5].map((id) => identityPublicKey(simulationIdentityKey(3, id)));
  const types = new Set<string>();
  const result = simulateSecAgg({
    threshold: 3,
    inputs,
    randomBytesFor: (id) => rngRandomBytes(new Rng(id)),
    identityFor: (id) => ({ secretKey: simulationIdentityKey(3, id), trust: pinnedPeerTrust((p) => keys[p - 1]) }),
    drops: { 2: 'before-unmask' },
    carry: (m) => {
      const back = decodeSecAggMessage(encodeSecAggMessage(m));
      assert.deepEqual(back, m);
      types.add(m.type);
      return back;
    },
  });
  assert.ok(types.has('secagg.consistency-request') && types.has('secagg.consistency-signature'));
  const want = new Uint32Array(33);
  for (const input of inputs) addMod32(want, input);
  assert.deepEqual(result.sum, want);
  const bad = (type: string, fields: Record<string, unknown>, re: RegExp) =>
    assert.throws(
      () => decodeSecAggMessage(encodeFrame(type, fields)),
      (e: unknown) => e instanceof FrameError && e.code === 'bad_secagg' && re.test(e.message),
    );
  const key = 'ab'.repeat(32);
  bad('secagg.advertise-keys', { session: 's', id: 1, c: key, s: key, identity: key }, /sig must be 128 hex digits/);
  bad('secagg.consistency-signature', { session: 's', from: 1, sig: 'ab' }, /sig must be 128 hex digits/);
  bad(
    'secagg.unmask-request',
    { session: 's', survivors: [1], signatures: [{ from: 1 }] },
    /signatures\[0\].sig must be 128 hex digits/,
  );
});
