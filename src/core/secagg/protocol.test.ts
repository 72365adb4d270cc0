import { test } from 'node:test';
import assert from 'node:assert/strict';
import { weightedAverage } from '../aggregate.js';
import { Rng } from '../rng.js';
import {
  addMod32,
  decodeAverage,
  decodeWeightedAverage,
  encodeFixed,
  encodeWeightedUpdate,
  fixedPointConfig,
  fixedPointErrorBound,
  type FixedPointConfig,
} from './fixed-point.js';
import { SecAggClient, SecAggError, SecAggServer, type ClientId, type ServerInbound } from './protocol.js';
import { rngRandomBytes, type RandomBytes } from './random.js';
import { simulateSecAgg, type DropStage } from './simulate.js';

const randomBytesFor = (id: ClientId): RandomBytes => rngRandomBytes(new Rng(7000 + id));

function floatInputs(n: number, d: number, seed: number, scale = 0.1): Float32Array[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => Float32Array.from({ length: d }, () => scale * rng.normal()));
}

/** sum_{i in ids} enc_i mod 2^32, the plaintext the protocol must reproduce exactly. */
function plainSum(encoded: Uint32Array[], ids: ClientId[]): Uint32Array {
  const acc = new Uint32Array(encoded[0].length);
  for (const id of ids) addMod32(acc, encoded[id - 1]);
  return acc;
}

/** Mean of the clipped float inputs of ids, in float64 (the FedAvg the fixed-point result approximates). */
function plainMean(xs: Float32Array[], ids: ClientId[], cfg: FixedPointConfig): Float64Array {
  const out = new Float64Array(xs[0].length);
  for (const id of ids)
    for (let j = 0; j < out.length; j++) out[j] += Math.max(-cfg.clip, Math.min(cfg.clip, xs[id - 1][j])) / ids.length;
  return out;
}

function assertWithin(got: ArrayLike<number>, want: ArrayLike<number>, tol: (j: number) => number): void {
  assert.equal(got.length, want.length);
  let worst = 0;
  for (let j = 0; j < got.length; j++) {
    const err = Math.abs(got[j] - want[j]);
    worst = Math.max(worst, err / tol(j));
    assert.ok(err <= tol(j), `coordinate ${j}: ${got[j]} vs ${want[j]} (tolerance ${tol(j)})`);
  }
  assert.ok(worst <= 1);
}

function runCase(n: number, d: number, threshold: number, drops: Record<number, DropStage>) {
  const cfg = fixedPointConfig({ maxClients: n, clip: 1, scaleBits: 16 });
  const xs = floatInputs(n, d, 99);
  const encoded = xs.map((x) => encodeFixed(x, cfg));
  const result = simulateSecAgg({ threshold, inputs: encoded, randomBytesFor, drops });
  return { cfg, xs, encoded, result };
}

test('10 clients x 1000 floats, no dropouts: the unmasked sum equals the plaintext fixed-point sum exactly', () => {
  const { cfg, xs, encoded, result } = runCase(10, 1000, 7, {});
  const all = Array.from({ length: 10 }, (_, i) => i + 1);
  assert.deepEqual(result.included, all);
  assert.deepEqual(result.dropped, []);
  assert.deepEqual(result.responders, all);
  assert.deepEqual(result.sum, plainSum(encoded, all));
  // Decoded average = plaintext FedAvg within n * 2^-17 / n (+ one float32 rounding).
  const avg = decodeAverage(result.sum, 10, cfg);
  const ref = plainMean(xs, all, cfg);
  assertWithin(avg, ref, (j) => fixedPointErrorBound(cfg, 10) / 10 + 2 ** -24 * Math.abs(ref[j]));
  // The same against aggregate.ts's FedAvg with equal weights.
  const fedavg = weightedAverage(xs, new Array(10).fill(1));
  assertWithin(avg, fedavg, (j) => fixedPointErrorBound(cfg, 10) / 10 + 2 ** -23 * Math.abs(fedavg[j]));
});

test('30% of clients drop after sharing keys (before their masked input): the sum of the other 7 is exact', () => {
  const { cfg, xs, encoded, result } = runCase(10, 1000, 7, {
    2: 'before-masked-input',
    5: 'before-masked-input',
    9: 'before-masked-input',
  });
  const survivors = [1, 3, 4, 6, 7, 8, 10];
  assert.deepEqual(result.included, survivors);
  assert.deepEqual(result.dropped, [2, 5, 9]);
  assert.deepEqual(result.sum, plainSum(encoded, survivors));
  const avg = decodeAverage(result.sum, survivors.length, cfg);
  const ref = plainMean(xs, survivors, cfg);
  assertWithin(avg, ref, (j) => fixedPointErrorBound(cfg, 7) / 7 + 2 ** -24 * Math.abs(ref[j]));
});

test('clients dropping after their masked input (during unmasking) are still summed; b_u rebuilt from the others', () => {
  const { encoded, result } = runCase(10, 1000, 6, {
    6: 'before-masked-input',
    3: 'before-unmask',
    8: 'before-unmask',
  });
  const included = [1, 2, 3, 4, 5, 7, 8, 9, 10];
  assert.deepEqual(result.included, included);
  assert.deepEqual(result.dropped, [6]);
  assert.deepEqual(result.responders, [1, 2, 4, 5, 7, 9, 10]);
  assert.deepEqual(result.sum, plainSum(encoded, included));
});

test('dropouts at every stage at once, with exactly threshold responders left', () => {
  const drops: Record<number, DropStage> = {
    1: 'before-advertise',
    4: 'before-share-keys',
    7: 'before-masked-input',
    10: 'before-unmask',
  };
  const { encoded, result } = runCase(10, 300, 6, drops);
  assert.deepEqual(result.included, [2, 3, 5, 6, 8, 9, 10]);
  assert.deepEqual(result.dropped, [4, 7]); // 1 never joined U1
  assert.deepEqual(result.responders, [2, 3, 5, 6, 8, 9]);
  assert.deepEqual(result.sum, plainSum(encoded, result.included));
});

test('fewer than threshold survivors: a clear too_few_clients error at the stage where it happens', () => {
  const expectTooFew = (drops: Record<number, DropStage>, stage: RegExp) =>
    assert.throws(
      () => runCase(6, 50, 5, drops),
      (e: unknown) => e instanceof SecAggError && e.code === 'too_few_clients' && stage.test(e.message),
    );
  const two = (s: DropStage): Record<number, DropStage> => ({ 2: s, 5: s });
  expectTooFew(two('before-advertise'), /only 4 clients advertised keys, fewer than the threshold 5/);
  expectTooFew(two('before-share-keys'), /only 4 clients shared their keys/);
  expectTooFew(two('before-masked-input'), /only 4 clients sent masked inputs/);
  expectTooFew(two('before-unmask'), /only 4 clients sent unmask shares/);
});

test('weighted FedAvg, 5 clients: decodeWeightedAverage of the secure sum matches weightedAverage', () => {
  const n = 5;
  const d = 500;
  const cfg = fixedPointConfig({ maxClients: n, maxWeight: 1000, clip: 2, scaleBits: 16 });
  const xs = floatInputs(n, d, 5, 0.5);
  const numExamples = [120, 600, 37, 999, 250];
  const encoded = xs.map((x, i) => encodeWeightedUpdate(x, numExamples[i], cfg));
  const check = (drops: Record<number, DropStage>, included: ClientId[]) => {
    const result = simulateSecAgg({ threshold: 3, inputs: encoded, randomBytesFor, drops });
    assert.deepEqual(result.included, included);
    assert.deepEqual(result.sum, plainSum(encoded, included));
    const { average, totalWeight } = decodeWeightedAverage(result.sum, cfg);
    const w = included.map((id) => numExamples[id - 1]);
    assert.equal(
      totalWeight,
      w.reduce((a, b) => a + b, 0),
    );
    const ref = weightedAverage(
      included.map((id) => xs[id - 1]),
      w,
    );
    assertWithin(
      average,
      ref,
      (j) => fixedPointErrorBound(cfg, included.length) / totalWeight + 2 ** -23 * Math.abs(ref[j]),
    );
  };
  check({}, [1, 2, 3, 4, 5]);
  check({ 2: 'before-masked-input', 4: 'before-unmask' }, [1, 3, 4, 5]);
});

// ------------------------------------------------------------------ what the server sees

function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i] / n;
    mb += b[i] / n;
  }
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

/** Chi-squared statistic of the top 4 bits of the words against a uniform spread over 16 buckets. */
function chi2TopNibble(words: Uint32Array): number {
  const buckets = new Array(16).fill(0);
  for (const w of words) buckets[w >>> 28]++;
  const e = words.length / 16;
  return buckets.reduce((a, b) => a + ((b - e) * (b - e)) / e, 0);
}
const CHI2_15_999 = 37.7; // 99.9% quantile with 15 degrees of freedom

/** Every byte array inside a message (Uint32Arrays as their bytes). */
function byteFields(v: unknown, out: Uint8Array[] = []): Uint8Array[] {
  if (v instanceof Uint8Array) out.push(v);
  else if (v instanceof Uint32Array) out.push(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  else if (Array.isArray(v)) for (const x of v) byteFields(x, out);
  else if (typeof v === 'object' && v !== null) for (const x of Object.values(v)) byteFields(x, out);
  return out;
}

function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let k = 0; k < needle.length; k++) if (hay[i + k] !== needle[k]) continue outer;
    return true;
  }
  return false;
}

test('the server only ever sees masked vectors: each y_u is uniform and uncorrelated with its plaintext', () => {
  const n = 10;
  const d = 1000;
  const cfg = fixedPointConfig({ maxClients: n, clip: 1, scaleBits: 16 });
  const xs = floatInputs(n, d, 1234, 0.2);
  const encoded = xs.map((x) => encodeFixed(x, cfg));
  const received: ServerInbound[] = [];
  // Record every 32-byte draw: these are all the clients' secrets (c^SK, s^SK, b_u).
  const secrets: Uint8Array[] = [];
  const recording = (id: ClientId): RandomBytes => {
    const inner = randomBytesFor(id);
    return (k) => {
      const b = inner(k);
      if (k === 32) secrets.push(b.slice());
      return b;
    };
  };
  const result = simulateSecAgg({
    threshold: 7,
    inputs: encoded,
    randomBytesFor: recording,
    drops: { 4: 'before-masked-input' },
    onServerReceive: (m) => received.push(m),
  });
  assert.equal(secrets.length, 3 * n);

  const masked = received.filter((m) => m.type === 'secagg.masked-input');
  assert.equal(masked.length, n - 1);
  assert.deepEqual(
    new Set(received.map((m) => m.type)),
    new Set(['secagg.advertise-keys', 'secagg.share-keys', 'secagg.masked-input', 'secagg.unmask-shares']),
  );
  for (const m of masked) {
    const y = m.masked;
    const enc = encoded[m.from - 1];
    const x = xs[m.from - 1];
    const yNum = Array.from(y);
    const encSigned = Array.from(enc, (w) => w | 0);
    // Uncorrelated with the plaintext (|r| < 0.15 is ~4.7 standard errors for 1000 points)...
    assert.ok(Math.abs(pearson(yNum, x)) < 0.15, `client ${m.from}: r(y, x) = ${pearson(yNum, x)}`);
    assert.ok(Math.abs(pearson(yNum, encSigned)) < 0.15);
    assert.ok(
      Math.abs(
        pearson(
          Array.from(y, (w) => w | 0),
          encSigned,
        ),
      ) < 0.15,
    );
    // ...spread uniformly over [0, 2^32) (the plaintext encoding sits near 0 and 2^32 and fails this badly)...
    assert.ok(chi2TopNibble(y) < CHI2_15_999, `client ${m.from}: chi2 ${chi2TopNibble(y)}`);
    assert.ok(chi2TopNibble(enc) > 1000);
    // ...and different from the encoding in every coordinate.
    assert.equal(y.filter((w, j) => w === enc[j]).length, 0);
  }
  // No client secret (keys, self-mask seeds) appears anywhere in anything the server received.
  const fields = received.flatMap((m) => byteFields(m));
  for (const s of secrets) for (const f of fields) assert.ok(!contains(f, s), 'a client secret reached the server');
  // And the sum is still right.
  assert.deepEqual(result.sum, plainSum(encoded, result.included));
});

// ------------------------------------------------------------------ state machines and their checks

/** A server and n clients, driven by hand. */
function manual(n: number, threshold: number, d = 16) {
  const session = 'manual';
  const server = new SecAggServer({ session, threshold, vectorLength: d });
  const clients = Array.from(
    { length: n },
    (_, i) => new SecAggClient({ id: i + 1, session, threshold, vectorLength: d, randomBytes: randomBytesFor(i + 1) }),
  );
  const inputs = Array.from({ length: n }, (_, i) => new Uint32Array(d).fill(i + 1));
  const advertise = () => {
    for (const c of clients) server.receiveAdvertiseKeys(c.advertiseKeys());
    return server.finishAdvertiseKeys();
  };
  const share = () => {
    const roster = advertise();
    for (const c of clients) server.receiveShareKeys(c.shareKeys(roster));
    return server.finishShareKeys();
  };
  const mask = () => {
    const fwd = share();
    for (const c of clients) server.receiveMaskedInput(c.maskInput(fwd[c.id - 1], inputs[c.id - 1]));
    return server.finishMaskedInput();
  };
  return { server, clients, inputs, advertise, share, mask };
}

const code = (c: string) => (e: unknown) => e instanceof SecAggError && e.code === c;

test('client: refuses to unmask if the survivors are not a subset of U2 containing itself, and then stays aborted', () => {
  const m = manual(4, 3);
  const req = m.mask();
  const [c1, c2, c3] = m.clients;
  assert.throws(() => c1.unmask({ ...req, survivors: [1, 2, 3, 9] }), code('inconsistent'));
  assert.equal(c1.phase, 'aborted');
  assert.throws(() => c1.unmask(req), code('wrong_phase'));
  assert.throws(() => c2.unmask({ ...req, survivors: [1, 3, 4] }), /missing from the survivors/);
  assert.throws(() => c3.unmask({ ...req, survivors: [1, 3] }), code('too_few_clients'));
  assert.throws(() => m.clients[3].unmask({ ...req, session: 'other' }), code('wrong_session'));
});

test('client: checks the roster (threshold, own keys, distinct keys) and the forwarded shares', () => {
  const m = manual(3, 3);
  const roster = m.advertise();
  const [c1, c2] = m.clients;
  assert.throws(() => c1.shareKeys({ ...roster, clients: roster.clients.slice(0, 2) }), code('too_few_clients'));
  const dup = roster.clients.map((k) => ({ ...k }));
  dup[2].sPublicKey = dup[1].sPublicKey;
  assert.throws(() => c2.shareKeys({ ...roster, clients: dup }), /two public keys in the roster are equal/);
  const ok = manual(3, 3);
  const r2 = ok.advertise();
  const forged = r2.clients.map((k) => ({ ...k }));
  forged[0].cPublicKey = forged[1].cPublicKey.map((b) => b ^ 1);
  assert.throws(() => ok.clients[0].shareKeys({ ...r2, clients: forged }), /does not carry this client's own keys/);
  // Tampered ciphertext in round 2.
  const t = manual(3, 2);
  const fwd = t.share();
  const bad = {
    ...fwd[0],
    shares: fwd[0].shares.map((e) => ({ ...e, ciphertext: e.ciphertext.map((b, i) => (i === 0 ? b ^ 1 : b)) })),
  };
  assert.throws(() => t.clients[0].maskInput(bad, t.inputs[0]), /do not authenticate/);
  assert.throws(() => t.clients[1].maskInput(fwd[1], new Uint32Array(3)), /input must be a Uint32Array of length 16/);
  assert.throws(() => t.clients[2].maskInput(fwd[1], t.inputs[2]), /addressed to 2/);
});

test('client: rounds must come in order', () => {
  const m = manual(3, 2);
  const c = m.clients[0];
  assert.throws(
    () => c.unmask({ type: 'secagg.unmask-request', session: 'manual', survivors: [1, 2] }),
    code('wrong_phase'),
  );
  assert.equal(c.phase, 'new'); // a wrong-phase call does not abort
  c.advertiseKeys();
  assert.throws(() => c.advertiseKeys(), /advertiseKeys needs phase 'new' but the client is 'advertised'/);
  assert.throws(
    () => new SecAggClient({ id: 0, session: 's', threshold: 2, vectorLength: 1, randomBytes: randomBytesFor(1) }),
    /id must be an integer/,
  );
  assert.throws(
    () => new SecAggClient({ id: 1, session: 's', threshold: 1, vectorLength: 1, randomBytes: randomBytesFor(1) }),
    /threshold must be an integer >= 2/,
  );
  assert.throws(
    () => new SecAggServer({ session: '', threshold: 2, vectorLength: 1 }),
    /session must be a non-empty string/,
  );
});

test('server: rejects duplicate, foreign, malformed and late messages without changing state', () => {
  const m = manual(4, 3);
  const [c1, c2, c3, c4] = m.clients;
  const a1 = c1.advertiseKeys();
  m.server.receiveAdvertiseKeys(a1);
  assert.throws(() => m.server.receiveAdvertiseKeys(a1), code('duplicate'));
  assert.throws(() => m.server.receiveAdvertiseKeys({ ...c2.advertiseKeys(), session: 'x' }), code('wrong_session'));
  assert.throws(
    () => m.server.receiveAdvertiseKeys({ ...c3.advertiseKeys(), cPublicKey: new Uint8Array(5) }),
    /c public key of 3 must be 32 bytes/,
  );
  const a4 = c4.advertiseKeys();
  assert.throws(
    () => m.server.receiveShareKeys({ type: 'secagg.share-keys', session: 'manual', from: 1, shares: [] }),
    code('wrong_phase'),
  );
  m.server.receiveAdvertiseKeys(a4);
  const m2 = manual(4, 3);
  const roster = m2.advertise();
  assert.throws(() => m2.server.receiveAdvertiseKeys(a1), code('wrong_phase'));
  const s1 = m2.clients[0].shareKeys(roster);
  assert.throws(
    () => m2.server.receiveShareKeys({ ...s1, shares: s1.shares.slice(1) }),
    /one ciphertext to each other client/,
  );
  m2.server.receiveShareKeys(s1);
  assert.throws(() => m2.server.receiveShareKeys(s1), code('duplicate'));
  for (const c of m2.clients.slice(1, 3)) m2.server.receiveShareKeys(c.shareKeys(roster)); // client 4 drops
  const fwd = m2.server.finishShareKeys();
  assert.deepEqual(
    fwd.map((f) => f.to),
    [1, 2, 3],
  );
  assert.deepEqual(
    fwd[0].shares.map((e) => e.from),
    [2, 3],
  ); // nothing from 4
  assert.throws(
    () =>
      m2.server.receiveMaskedInput({
        type: 'secagg.masked-input',
        session: 'manual',
        from: 4,
        masked: new Uint32Array(16),
      }),
    code('unknown_client'),
  );
  assert.throws(
    () =>
      m2.server.receiveMaskedInput({
        type: 'secagg.masked-input',
        session: 'manual',
        from: 1,
        masked: new Uint32Array(15),
      }),
    code('bad_message'),
  );
  const y1 = m2.clients[0].maskInput(fwd[0], m2.inputs[0]);
  m2.server.receiveMaskedInput(y1);
  assert.throws(() => m2.server.receiveMaskedInput(y1), code('duplicate'));
  assert.throws(() => m2.server.finishMaskedInput(), code('too_few_clients'));
  assert.equal(m2.server.phase, 'failed');
  assert.throws(() => m2.server.receiveMaskedInput(m2.clients[1].maskInput(fwd[1], m2.inputs[1])), code('wrong_phase'));
});

test('server: unmask responses must cover exactly the survivors and the dropped clients', () => {
  const m = manual(4, 3);
  const roster = m.advertise();
  for (const c of m.clients) m.server.receiveShareKeys(c.shareKeys(roster));
  const fwd = m.server.finishShareKeys();
  for (const c of m.clients.slice(0, 3)) m.server.receiveMaskedInput(c.maskInput(fwd[c.id - 1], m.inputs[c.id - 1]));
  const req = m.server.finishMaskedInput();
  assert.deepEqual(req.survivors, [1, 2, 3]);
  const r1 = m.clients[0].unmask(req);
  assert.deepEqual(
    r1.selfMaskShares.map((e) => e.of),
    [1, 2, 3],
  );
  assert.deepEqual(
    r1.keyShares.map((e) => e.of),
    [4],
  );
  assert.throws(
    () => m.server.receiveUnmaskShares({ ...r1, keyShares: [] }),
    /key share for exactly the dropped clients/,
  );
  assert.throws(
    () => m.server.receiveUnmaskShares({ ...r1, selfMaskShares: r1.selfMaskShares.slice(1) }),
    /self-mask share for exactly the survivors/,
  );
  assert.throws(() => m.server.receiveUnmaskShares({ ...r1, from: 4 }), code('unknown_client'));
  m.server.receiveUnmaskShares(r1);
  m.server.receiveUnmaskShares(m.clients[1].unmask(req));
  m.server.receiveUnmaskShares(m.clients[2].unmask(req));
  const result = m.server.finishUnmask();
  assert.deepEqual(result.sum, new Uint32Array(16).fill(1 + 2 + 3));
  assert.deepEqual(result.responders, [1, 2, 3]);
  assert.equal(m.server.phase, 'done');
});

test('timing: 10 clients x 100k parameters, 3 dropouts after sharing keys and 1 during unmasking', (t) => {
  const n = 10;
  const d = 100_000;
  const cfg = fixedPointConfig({ maxClients: n, clip: 1, scaleBits: 16 });
  const encoded = floatInputs(n, d, 3).map((x) => encodeFixed(x, cfg));
  const t0 = performance.now();
  const result = simulateSecAgg({
    threshold: 6,
    inputs: encoded,
    randomBytesFor,
    drops: { 2: 'before-masked-input', 5: 'before-masked-input', 9: 'before-masked-input', 7: 'before-unmask' },
  });
  const ms = performance.now() - t0;
  assert.deepEqual(result.included, [1, 3, 4, 6, 7, 8, 10]);
  assert.deepEqual(result.sum, plainSum(encoded, result.included));
  t.diagnostic(
    `10 clients x 100k params, 30% + 10% dropouts: ${ms.toFixed(0)} ms for the whole protocol (all clients + server, one thread)`,
  );
});
