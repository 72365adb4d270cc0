// The malicious-server variant (Bonawitz et al. 2017, section 4): signed key advertisements checked against the
// key each client trusts for a peer, a threshold above half the roster, and the ConsistencyCheck round. The
// server here is the test: it tampers with what it sends, the clients are the real state machines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../rng.js';
import { addMod32 } from './fixed-point.js';
import { generateKeyPair } from './masks.js';
import {
  SecAggClient,
  SecAggError,
  SecAggServer,
  type ClientId,
  type ClientIdentity,
  type KeyRoster,
  type SecAggErrorCode,
  type UnmaskRequest,
} from './protocol.js';
import { rngRandomBytes } from './random.js';
import {
  advertMessage,
  identityPublicKey,
  keySetPeerTrust,
  pinnedPeerTrust,
  sign,
  simulationIdentityKey,
  tofuPeerTrust,
  type PeerTrust,
} from './signing.js';
import { simulateSecAgg } from './simulate.js';

const SEED = 5;
const secretOf = (id: ClientId) => simulationIdentityKey(SEED, id);
const publicKeys = new Map<ClientId, Uint8Array>();
const publicOf = (id: ClientId) => publicKeys.get(id) ?? publicKeys.set(id, identityPublicKey(secretOf(id))).get(id)!;
const pinned = pinnedPeerTrust(publicOf);
const identityFor = (id: ClientId, trust: PeerTrust = pinned): ClientIdentity => ({ secretKey: secretOf(id), trust });
const randomBytesFor = (id: ClientId) => rngRandomBytes(new Rng(9000 + id));
const attackerIdentity = simulationIdentityKey(SEED, 666);

const code = (c: SecAggErrorCode, re?: RegExp) => (e: unknown) =>
  e instanceof SecAggError && e.code === c && (!re || re.test(e.message));

/** A consistency-checking server and n signing clients, driven by hand. */
function signedSession(
  n: number,
  threshold: number,
  trustOf: (id: ClientId) => PeerTrust = () => pinned,
  session = 'signed',
) {
  const d = 8;
  const server = new SecAggServer({ session, threshold, vectorLength: d, consistencyCheck: true });
  const clients = Array.from(
    { length: n },
    (_, i) =>
      new SecAggClient({
        id: i + 1,
        session,
        threshold,
        vectorLength: d,
        randomBytes: randomBytesFor(i + 1),
        identity: identityFor(i + 1, trustOf(i + 1)),
      }),
  );
  const inputs = clients.map((c) => new Uint32Array(d).fill(c.id));
  const roster = (): KeyRoster => {
    for (const c of clients) server.receiveAdvertiseKeys(c.advertiseKeys());
    return server.finishAdvertiseKeys();
  };
  /** Every client through masked input, the same roster for all. */
  const masked = () => {
    const r = roster();
    for (const c of clients) server.receiveShareKeys(c.shareKeys(r));
    const fwd = server.finishShareKeys();
    for (const c of clients) server.receiveMaskedInput(c.maskInput(fwd[c.id - 1], inputs[c.id - 1]));
    return server.finishMaskedInputForConsistency();
  };
  return { server, clients, inputs, roster, masked };
}

test('signed variant, honest server: the exact sum, with dropouts at every stage', () => {
  const inputs = Array.from({ length: 8 }, (_, i) => Uint32Array.from({ length: 64 }, (_, j) => (i * 1000 + j) >>> 0));
  const result = simulateSecAgg({
    threshold: 5,
    inputs,
    randomBytesFor,
    identityFor: (id) => identityFor(id),
    drops: { 1: 'before-share-keys', 4: 'before-masked-input', 7: 'before-unmask' },
  });
  const want = new Uint32Array(64);
  for (const id of result.included) addMod32(want, inputs[id - 1]);
  assert.deepEqual(result.included, [2, 3, 5, 6, 7, 8]);
  assert.deepEqual(result.responders, [2, 3, 5, 6, 8]);
  assert.deepEqual(result.sum, want);
});

test('a substituted key advertisement: every client refuses the roster and reveals nothing', () => {
  // (a) The server swaps client 2's mask keys for its own, keeping 2's signature: the signature fails.
  const a = signedSession(4, 3);
  const roster = a.roster();
  const mine = generateKeyPair(randomBytesFor(666));
  const swapped = {
    ...roster,
    clients: roster.clients.map((k) => (k.id === 2 ? { ...k, sPublicKey: mine.publicKey } : k)),
  };
  for (const c of a.clients) {
    assert.throws(
      () => c.shareKeys(swapped),
      code('bad_signature', /signature on client 2's key advertisement does not verify/),
    );
    assert.equal(c.phase, 'aborted');
  }

  // (b) It re-signs the swapped keys with an identity key of its own: signed, but not the key pinned for 2.
  const b = signedSession(4, 3);
  const r2 = b.roster();
  const forged = r2.clients.map((k) =>
    k.id !== 2
      ? k
      : {
          ...k,
          sPublicKey: mine.publicKey,
          identityKey: identityPublicKey(attackerIdentity),
          signature: sign(advertMessage('signed', 2, k.cPublicKey, mine.publicKey), attackerIdentity),
        },
  );
  assert.throws(
    () => b.clients[0].shareKeys({ ...r2, clients: forged }),
    code('untrusted_key', /not the one pinned for it/),
  );

  // (c) It strips the signatures (a downgrade to the unsigned protocol).
  const c = signedSession(4, 3);
  const r3 = c.roster();
  const unsigned = r3.clients.map(({ identityKey: _i, signature: _s, ...k }) => k);
  assert.throws(
    () => c.clients[0].shareKeys({ ...r3, clients: unsigned }),
    code('bad_signature', /not signed with an identity key/),
  );

  // The honest roster passes (the checks can pass).
  const ok = signedSession(4, 3);
  const r4 = ok.roster();
  for (const client of ok.clients) client.shareKeys(r4);
});

test('trust on first use catches a key changed after the first session; a pinned key set refuses strangers', () => {
  const remembered = new Map<number, string>();
  const tofu = tofuPeerTrust(remembered);
  const first = signedSession(3, 2, (id) => (id === 1 ? tofu : pinned), 'first');
  first.clients[0].shareKeys(first.roster());
  assert.equal(remembered.size, 3);
  // Next session: the server presents its own identity for client 3 (validly self-signed).
  const next = signedSession(3, 2, (id) => (id === 1 ? tofu : pinned), 'next');
  const r = next.roster();
  const forged = r.clients.map((k) =>
    k.id !== 3
      ? k
      : {
          ...k,
          identityKey: identityPublicKey(attackerIdentity),
          signature: sign(advertMessage('next', 3, k.cPublicKey, k.sPublicKey), attackerIdentity),
        },
  );
  assert.throws(
    () => next.clients[0].shareKeys({ ...r, clients: forged }),
    code('untrusted_key', /client 3 advertised identity key .* first seen for it/),
  );

  const set = keySetPeerTrust([publicOf(1), publicOf(2), publicOf(3)]);
  assert.equal(set.check(2, publicOf(2)), null);
  assert.match(set.check(2, publicOf(4)) ?? '', /not in this node's pinned peer keys/);
});

test('threshold t <= |U1| / 2 is refused by clients and by the server; t just above half is accepted', () => {
  // The client is told t = 2 while 4 clients are in the roster (an honest server would not build it).
  const lax = new SecAggServer({ session: 's', threshold: 3, vectorLength: 4, consistencyCheck: true });
  const clients = [1, 2, 3, 4].map(
    (id) =>
      new SecAggClient({
        id,
        session: 's',
        threshold: 2,
        vectorLength: 4,
        randomBytes: randomBytesFor(id),
        identity: identityFor(id),
      }),
  );
  for (const c of clients) lax.receiveAdvertiseKeys(c.advertiseKeys());
  const roster = lax.finishAdvertiseKeys();
  for (const c of clients)
    assert.throws(() => c.shareKeys(roster), code('weak_threshold', /threshold 2 is at most half of the 4 clients/));
  // t = 3 of 6 is exactly half: refused; the server refuses to build such a roster as well.
  const half = signedSession(6, 3);
  assert.throws(() => half.roster(), code('weak_threshold', /threshold 3 is at most half of the 6 clients/));
  assert.equal(half.server.phase, 'failed');
  // Unsigned (honest-but-curious) clients refuse it too.
  assert.throws(
    () => simulateSecAgg({ threshold: 2, inputs: [1, 2, 3, 4].map(() => new Uint32Array(2)), randomBytesFor }),
    code('weak_threshold'),
  );
  const four = signedSession(6, 4);
  const r = four.roster();
  for (const c of four.clients) c.shareKeys(r);
});

test('a split view (different U3 to two groups) is detected: no client unmasks', () => {
  // 8 clients, t = 5. The server tells group A = {1..4} that everyone survived (A would reveal b_1) and
  // group B = {5..8} that client 1 dropped (B would reveal s_1^SK): together the shares unmask x_1 alone.
  const s = signedSession(8, 5);
  const check = s.masked();
  assert.deepEqual(check.survivors, [1, 2, 3, 4, 5, 6, 7, 8]);
  const viewB = { ...check, survivors: [2, 3, 4, 5, 6, 7, 8] };
  const groupA = s.clients.slice(0, 4);
  const groupB = s.clients.slice(4);
  for (const c of groupA) s.server.receiveConsistencySignature(c.consistencyCheck(check));
  for (const c of groupB) s.server.receiveConsistencySignature(c.consistencyCheck(viewB));
  const request = s.server.finishConsistency();
  assert.equal(request.signatures?.length, 8);
  for (const c of groupA) {
    assert.throws(
      () => c.unmask(request),
      code('split_view', /only 4 of 8 consistency signatures are valid over the 8 survivors/),
    );
  }
  for (const c of groupB)
    assert.throws(() => c.unmask({ ...request, survivors: viewB.survivors }), code('split_view', /only 4 of 8/));
  for (const c of s.clients) assert.equal(c.phase, 'aborted');

  // The same split view against the unsigned protocol: both groups answer, one with b_1, the other with s_1^SK.
  const plain = new SecAggServer({ session: 'plain', threshold: 5, vectorLength: 4 });
  const clients = Array.from(
    { length: 8 },
    (_, i) =>
      new SecAggClient({
        id: i + 1,
        session: 'plain',
        threshold: 5,
        vectorLength: 4,
        randomBytes: randomBytesFor(i + 1),
      }),
  );
  for (const c of clients) plain.receiveAdvertiseKeys(c.advertiseKeys());
  const roster = plain.finishAdvertiseKeys();
  for (const c of clients) plain.receiveShareKeys(c.shareKeys(roster));
  const fwd = plain.finishShareKeys();
  for (const c of clients) plain.receiveMaskedInput(c.maskInput(fwd[c.id - 1], new Uint32Array(4)));
  const all = plain.finishMaskedInput();
  const a = clients.slice(0, 4).map((c) => c.unmask(all));
  const b = clients.slice(4).map((c) => c.unmask({ ...all, survivors: [2, 3, 4, 5, 6, 7, 8] }));
  assert.ok(a.every((r) => r.selfMaskShares.some((e) => e.of === 1)));
  assert.ok(b.every((r) => r.keyShares.some((e) => e.of === 1)));
});

test('the unmask request must repeat the signed U3 and carry t valid signatures by distinct members of it', () => {
  const s = signedSession(5, 3);
  const check = s.masked();
  const sigs = s.clients.map((c) => c.consistencyCheck(check));
  for (const sig of sigs) s.server.receiveConsistencySignature(sig);
  const request: UnmaskRequest = s.server.finishConsistency();
  const [c1, c2, c3, c4, c5] = s.clients;
  assert.throws(
    () => c1.unmask({ ...request, survivors: [1, 2, 3, 4] }),
    code('split_view', /after signing \[1, 2, 3, 4, 5\]/),
  );
  assert.throws(
    () => c2.unmask({ ...request, signatures: undefined }),
    code('split_view', /carries no consistency signatures/),
  );
  // One valid signature repeated, and signatures moved to other names, count once or not at all.
  const repeated = [1, 2, 3, 4, 5].map((from) => ({ from, signature: sigs[0].signature }));
  assert.throws(() => c3.unmask({ ...request, signatures: repeated }), code('split_view', /only 1 of 5/));
  const twice = [sigs[0], sigs[0], sigs[1]].map((x) => ({ from: x.from, signature: x.signature }));
  assert.throws(() => c4.unmask({ ...request, signatures: twice }), code('split_view', /only 2 of 3/));
  // Exactly t valid ones suffice.
  const three = request.signatures!.slice(0, 3);
  assert.deepEqual(
    c5.unmask({ ...request, signatures: three }).selfMaskShares.map((e) => e.of),
    [1, 2, 3, 4, 5],
  );
  // The server only forwards signatures from survivors, once each.
  const s2 = signedSession(4, 3);
  s2.masked();
  assert.throws(
    () => s2.server.receiveConsistencySignature({ ...sigs[0], session: 'signed', from: 9 }),
    code('unknown_client'),
  );
  assert.throws(() => s2.server.finishMaskedInput(), code('wrong_phase'));
});

test('the server drops a key advertisement that is unsigned or does not verify', () => {
  const s = signedSession(3, 2);
  const [c1, c2] = s.clients;
  const a1 = c1.advertiseKeys();
  assert.throws(
    () => s.server.receiveAdvertiseKeys({ ...a1, signature: undefined }),
    /advertisement signature of 1 must be 64 bytes/,
  );
  assert.throws(
    () => s.server.receiveAdvertiseKeys({ ...a1, cPublicKey: c2.advertiseKeys().cPublicKey }),
    code('bad_signature'),
  );
  s.server.receiveAdvertiseKeys(a1);
});
