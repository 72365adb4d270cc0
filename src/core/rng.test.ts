import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { hashString, Rng, type RngState } from './rng.ts';

// ---------- independent reference: xoshiro128** from the published algorithm (Blackman & Vigna), in BigInt ----------

const M32 = 0xffffffffn;

function refRotl(x: bigint, k: bigint): bigint {
  return ((x << k) | (x >> (32n - k))) & M32;
}

/** A naive xoshiro128** over BigInt words, sharing no code with rng.ts. */
function refXoshiro128ss(state: RngState): () => number {
  const s = state.map((w) => BigInt(w) & M32);
  return () => {
    const result = (refRotl((s[1] * 5n) & M32, 7n) * 9n) & M32;
    const t = (s[1] << 9n) & M32;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = refRotl(s[3], 11n);
    return Number(result);
  };
}

function draws(rng: Rng, n: number): number[] {
  return Array.from({ length: n }, () => rng.nextU32());
}

// ---------- golden values: a change here changes every seeded run's results ----------

test('golden: seed 1 gives a pinned state and pinned first five nextU32 values', () => {
  const rng = new Rng(1);
  assert.deepEqual(rng.state(), [2527132011, 314344336, 2535364964, 2041432039]);
  assert.deepEqual(draws(rng, 5), [2442144158, 3238099751, 3819917871, 2104621829, 2021136066]);
});

test('golden: the pinned values agree with an independent BigInt xoshiro128** reference', () => {
  const ref = refXoshiro128ss(new Rng(1).state());
  assert.deepEqual(Array.from({ length: 5 }, ref), [2442144158, 3238099751, 3819917871, 2104621829, 2021136066]);
});

test('nextU32 matches the reference for arbitrary seeds and states', () => {
  fc.assert(
    fc.property(fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), (seed) => {
      const rng = new Rng(seed);
      const ref = refXoshiro128ss(rng.state());
      assert.deepEqual(draws(rng, 20), Array.from({ length: 20 }, ref));
    }),
    { numRuns: 100 },
  );
  fc.assert(
    fc.property(fc.tuple(fc.nat(0xffffffff), fc.nat(0xffffffff), fc.nat(0xffffffff), fc.nat(0xffffffff)), (st) => {
      fc.pre(st.some((w) => w !== 0));
      const rng = new Rng(st as RngState);
      assert.deepEqual(rng.state(), st);
      const ref = refXoshiro128ss(st as RngState);
      assert.deepEqual(draws(rng, 20), Array.from({ length: 20 }, ref));
    }),
    { numRuns: 100 },
  );
});

test('hashString is FNV-1a 32-bit (published test vectors)', () => {
  assert.equal(hashString(''), 0x811c9dc5);
  assert.equal(hashString('a'), 0xe40c292c);
  assert.equal(hashString('foobar'), 0xbf9cf968);
});

// ---------- determinism, state, fork ----------

test('same seed gives the same sequence; different seeds differ', () => {
  assert.deepEqual(draws(new Rng(42), 100), draws(new Rng(42), 100));
  const seen = new Set<string>();
  for (let seed = 0; seed < 200; seed++) seen.add(draws(new Rng(seed), 4).join(','));
  assert.equal(seen.size, 200);
  assert.notDeepEqual(draws(new Rng(1), 10), draws(new Rng(2), 10));
});

test('an all-zero state is replaced (xoshiro would be stuck at zero)', () => {
  const rng = new Rng([0, 0, 0, 0]);
  assert.notDeepEqual(rng.state(), [0, 0, 0, 0]);
  assert.ok(draws(rng, 10).some((x) => x !== 0));
});

test('state() then new Rng(state) continues identically, and state() is a snapshot', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 31 }), fc.nat(50), (seed, skip) => {
      const a = new Rng(seed);
      for (let i = 0; i < skip; i++) a.next();
      const st = a.state();
      const b = new Rng(st);
      assert.deepEqual(draws(a, 30), draws(b, 30));
      // drawing did not mutate the snapshot taken earlier
      assert.deepEqual(new Rng(st).state(), st);
    }),
    { numRuns: 100 },
  );
});

test('fork: same label at the same state gives the same stream; different labels differ; parent untouched', () => {
  const parent = new Rng(7);
  const before = parent.state();
  const a1 = draws(parent.fork('data'), 20);
  const a2 = draws(parent.fork('data'), 20);
  assert.deepEqual(parent.state(), before, 'fork does not advance the parent');
  assert.deepEqual(a1, a2);
  assert.notDeepEqual(a1, draws(parent.fork('model'), 20));
  assert.notDeepEqual(a1, draws(parent, 20), 'the fork is not the parent stream');
  // after the parent moves on, the same label gives a different stream
  assert.notDeepEqual(draws(parent.fork('data'), 20), a1);
  // forks from equal states in different objects agree
  assert.deepEqual(draws(new Rng(7).fork('data'), 20), a1);
  // many labels give pairwise different streams
  const labels = Array.from({ length: 100 }, (_, i) => `node-${i}`);
  const base = new Rng(3);
  assert.equal(new Set(labels.map((l) => draws(base.fork(l), 3).join(','))).size, labels.length);
});

// ---------- distributions ----------

test('next() is in [0, 1) and mean ~ 1/2', () => {
  const rng = new Rng(11);
  let sum = 0;
  const n = 100_000;
  for (let i = 0; i < n; i++) {
    const x = rng.next();
    assert.ok(x >= 0 && x < 1, `next() = ${x}`);
    sum += x;
  }
  assert.ok(Math.abs(sum / n - 0.5) < 0.005, `mean ${sum / n}`);
});

test('int(n) is in range, whole, and roughly uniform (chi-square over 10 bins, 100k draws)', () => {
  const rng = new Rng(2024);
  const bins = 10;
  const n = 100_000;
  const counts = new Array<number>(bins).fill(0);
  for (let i = 0; i < n; i++) {
    const x = rng.int(bins);
    assert.ok(Number.isInteger(x) && x >= 0 && x < bins, `int(10) = ${x}`);
    counts[x]++;
  }
  const expected = n / bins;
  const chi2 = counts.reduce((acc, c) => acc + (c - expected) ** 2 / expected, 0);
  // 9 degrees of freedom: p = 0.001 at 27.9; 40 is a loose bound a broken generator still fails
  assert.ok(chi2 < 40, `chi-square ${chi2.toFixed(2)} for counts ${counts.join(',')}`);
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 2 ** 40 }), fc.nat(1000), (m, seed) => {
      const r = new Rng(seed);
      for (let i = 0; i < 10; i++) {
        const x = r.int(m);
        assert.ok(Number.isInteger(x) && x >= 0 && x < m);
      }
    }),
    { numRuns: 200 },
  );
  assert.equal(new Rng(5).int(1), 0);
});

test('uniform(lo, hi) lies in [lo, hi)', () => {
  const rng = new Rng(8);
  for (let i = 0; i < 1000; i++) {
    const x = rng.uniform(-3, 5);
    assert.ok(x >= -3 && x < 5);
  }
});

test('normal() has mean ~ 0 and variance ~ 1', () => {
  const rng = new Rng(99);
  const n = 100_000;
  let s = 0;
  let s2 = 0;
  let within1 = 0;
  for (let i = 0; i < n; i++) {
    const x = rng.normal();
    assert.ok(Number.isFinite(x));
    s += x;
    s2 += x * x;
    if (Math.abs(x) < 1) within1++;
  }
  const mean = s / n;
  const variance = s2 / n - mean * mean;
  assert.ok(Math.abs(mean) < 0.02, `mean ${mean}`);
  assert.ok(Math.abs(variance - 1) < 0.03, `variance ${variance}`);
  assert.ok(Math.abs(within1 / n - 0.6827) < 0.01, `P(|x|<1) = ${within1 / n}`);
});

test('gamma(shape) is positive with mean ~ shape and variance ~ shape, for shape 0.5, 1, 3', () => {
  for (const shape of [0.5, 1, 3]) {
    const rng = new Rng(1000 + shape * 10);
    const n = 40_000;
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const x = rng.gamma(shape);
      assert.ok(x >= 0 && Number.isFinite(x), `gamma(${shape}) = ${x}`);
      s += x;
      s2 += x * x;
    }
    const mean = s / n;
    const variance = s2 / n - mean * mean;
    // standard error of the mean is sqrt(shape / n) <= 0.009; allow ~5 of them
    assert.ok(Math.abs(mean - shape) < 0.05 * Math.max(1, shape), `gamma(${shape}) mean ${mean}`);
    assert.ok(Math.abs(variance - shape) < 0.15 * shape, `gamma(${shape}) variance ${variance}`);
  }
});

test('dirichlet sums to 1 with non-negative parts, and its mean part is 1/k', () => {
  fc.assert(
    fc.property(
      fc.double({ min: 0.05, max: 20, noNaN: true }),
      fc.integer({ min: 1, max: 20 }),
      fc.nat(1000),
      (alpha, k, seed) => {
        const p = new Rng(seed).dirichlet(alpha, k);
        assert.equal(p.length, k);
        assert.ok(p.every((x) => x >= 0 && x <= 1 && Number.isFinite(x)));
        assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-9);
      },
    ),
    { numRuns: 200 },
  );
  const rng = new Rng(4);
  const k = 4;
  const acc = new Array<number>(k).fill(0);
  for (let i = 0; i < 5000; i++) rng.dirichlet(1, k).forEach((x, j) => (acc[j] += x / 5000));
  for (const m of acc) assert.ok(Math.abs(m - 1 / k) < 0.02, `mean part ${m}`);
});

// ---------- permutations and samples ----------

test('permutation(n) is a permutation of 0..n-1, deterministic for a seed', () => {
  fc.assert(
    fc.property(fc.nat(300), fc.nat(10_000), (n, seed) => {
      const p = new Rng(seed).permutation(n);
      assert.equal(p.length, n);
      assert.deepEqual(
        Array.from(p).sort((a, b) => a - b),
        Array.from({ length: n }, (_, i) => i),
      );
      assert.deepEqual(new Rng(seed).permutation(n), p);
    }),
    { numRuns: 300 },
  );
  // it actually shuffles
  assert.notDeepEqual(
    Array.from(new Rng(1).permutation(50)),
    Array.from({ length: 50 }, (_, i) => i),
  );
});

test('shuffle keeps the multiset and puts each element in each place about equally often', () => {
  const rng = new Rng(21);
  const n = 4;
  const counts = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  const trials = 20_000;
  for (let t = 0; t < trials; t++) {
    const a = rng.shuffle([0, 1, 2, 3]);
    assert.deepEqual([...a].sort(), [0, 1, 2, 3]);
    a.forEach((v, pos) => counts[v][pos]++);
  }
  for (const row of counts)
    for (const c of row) assert.ok(Math.abs(c / trials - 1 / n) < 0.02, `position frequency ${c / trials}`);
});

test('sample(n, k) gives k distinct integers in [0, n)', () => {
  fc.assert(
    fc.property(
      fc.nat(200).chain((n) => fc.tuple(fc.constant(n), fc.nat(n))),
      fc.nat(10_000),
      ([n, k], seed) => {
        const s = new Rng(seed).sample(n, k);
        assert.equal(s.length, k);
        assert.equal(new Set(s).size, k);
        assert.ok(s.every((x) => Number.isInteger(x) && x >= 0 && x < n));
        assert.deepEqual(new Rng(seed).sample(n, k), s);
      },
    ),
    { numRuns: 300 },
  );
});

// ---------- bad inputs ----------

test('bad inputs throw', () => {
  const rng = new Rng(1);
  assert.throws(() => rng.int(0));
  assert.throws(() => rng.int(-3));
  assert.throws(() => rng.int(2.5));
  assert.throws(() => rng.int(NaN));
  assert.throws(() => rng.gamma(0));
  assert.throws(() => rng.gamma(-1));
  assert.throws(() => rng.gamma(NaN));
  assert.throws(() => rng.sample(3, 5));
  assert.throws(() => rng.sample(5, -1));
  assert.throws(() => rng.sample(5, 2.5));
  assert.throws(() => new Rng(NaN));
  assert.throws(() => new Rng(Infinity));
  assert.throws(() => new Rng(-Infinity));
});
