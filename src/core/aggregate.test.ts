import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { applyDelta, averageDelta, deltas, fedNova, weightedAverage } from './aggregate.ts';
import { ABS, REL, assertClose, bitsEqual, coordScale } from '../../test/support/numeric.js';

// ---------- naive references: plain float64 scalar loops over number[], one element at a time ----------

function naiveWeightedAverage(vectors: number[][], weights: number[]): number[] {
  const out: number[] = [];
  for (let j = 0; j < vectors[0].length; j++) {
    let num = 0;
    let den = 0;
    for (let i = 0; i < vectors.length; i++) {
      num += weights[i] * vectors[i][j];
      den += weights[i];
    }
    out.push(num / den);
  }
  return out;
}

function naiveFedNova(global: number[], locals: number[][], n: number[], tau: number[]): number[] {
  const total = n.reduce((a, b) => a + b, 0);
  const p = n.map((x) => x / total);
  let tauEff = 0;
  for (let i = 0; i < p.length; i++) tauEff += p[i] * tau[i];
  const out: number[] = [];
  for (let j = 0; j < global.length; j++) {
    let dir = 0;
    for (let i = 0; i < locals.length; i++) dir += p[i] * ((global[j] - locals[i][j]) / tau[i]);
    out.push(global[j] - tauEff * dir);
  }
  return out;
}

// ---------- helpers ----------

const f32 = (xs: number[]) => new Float32Array(xs);
const arr = (v: Float32Array) => Array.from(v);

// ---------- generators ----------

const MAG = Math.fround(1000);
const vec = (n: number) =>
  fc.float32Array({ minLength: n, maxLength: n, min: -MAG, max: MAG, noNaN: true, noDefaultInfinity: true });
const weight = fc.oneof(
  fc.constant(0),
  fc.integer({ min: 1, max: 100_000 }),
  fc.double({ min: 1e-3, max: 1e3, noNaN: true }),
);

/** k clients with vectors of a common length n and weights with at least one > 0. */
const clients = fc.tuple(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 12 })).chain(([k, n]) =>
  fc.record({
    vectors: fc.array(vec(n), { minLength: k, maxLength: k }),
    weights: fc.array(weight, { minLength: k, maxLength: k }).filter((w) => w.some((x) => x > 0)),
  }),
);

const novaCase = fc.tuple(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 12 })).chain(([k, n]) =>
  fc.record({
    global: vec(n),
    locals: fc.array(vec(n), { minLength: k, maxLength: k }),
    weights: fc.array(weight, { minLength: k, maxLength: k }).filter((w) => w.some((x) => x > 0)),
    steps: fc.array(fc.oneof(fc.integer({ min: 1, max: 500 }), fc.double({ min: 0.1, max: 100, noNaN: true })), {
      minLength: k,
      maxLength: k,
    }),
  }),
);

// ---------- weightedAverage ----------

test('weightedAverage: hand-computed 2 clients x 3 params', () => {
  // (1*[1,2,3] + 3*[3,6,9]) / 4 = [10, 20, 30] / 4
  assert.deepEqual(arr(weightedAverage([f32([1, 2, 3]), f32([3, 6, 9])], [1, 3])), [2.5, 5, 7.5]);
  // Equal weights: plain mean; a zero-weight client is ignored entirely, even if it holds NaN.
  assert.deepEqual(arr(weightedAverage([f32([0, -2]), f32([4, 2]), f32([NaN, Infinity])], [5, 5, 0])), [2, 0]);
});

test('weightedAverage: matches the naive float64 reference', () => {
  fc.assert(
    fc.property(clients, ({ vectors, weights }) => {
      const got = weightedAverage(vectors, weights);
      const want = naiveWeightedAverage(vectors.map(arr), weights);
      assertClose(got, want, ABS, REL);
    }),
  );
});

test('weightedAverage: identical vectors give that vector exactly', () => {
  fc.assert(
    fc.property(clients, ({ vectors, weights }) => {
      const copies = vectors.map(() => new Float32Array(vectors[0]));
      // x + 0 maps -0 to +0: the float64 accumulator starts at +0, and -0 == 0 anyway.
      assert.ok(
        bitsEqual(
          weightedAverage(copies, weights),
          vectors[0].map((x) => x + 0),
        ),
      );
    }),
  );
});

test('weightedAverage: each coordinate lies within the min/max of the clients with weight > 0', () => {
  fc.assert(
    fc.property(clients, ({ vectors, weights }) => {
      const got = weightedAverage(vectors, weights);
      const used = vectors.filter((_, i) => weights[i] > 0);
      for (let j = 0; j < got.length; j++) {
        const col = used.map((v) => v[j]);
        assert.ok(
          got[j] >= Math.min(...col) && got[j] <= Math.max(...col),
          `coordinate ${j}: ${got[j]} outside [${col}]`,
        );
      }
    }),
  );
});

// Reordering or rescaling changes only float64 rounding, which can flip the final Float32 rounding by one ulp.
const ROUNDING_ABS = 1e-9;
const ROUNDING_REL = 2 ** -22;

test('weightedAverage: permuting clients with their weights changes at most float rounding', () => {
  fc.assert(
    fc.property(
      clients.chain((c) =>
        fc.record({
          c: fc.constant(c),
          perm: fc.shuffledSubarray(
            c.vectors.map((_, i) => i),
            { minLength: c.vectors.length },
          ),
        }),
      ),
      ({ c, perm }) => {
        const a = weightedAverage(c.vectors, c.weights);
        const b = weightedAverage(
          perm.map((i) => c.vectors[i]),
          perm.map((i) => c.weights[i]),
        );
        assertClose(b, a, ROUNDING_ABS, ROUNDING_REL);
      },
    ),
  );
});

test('weightedAverage: scaling every weight by the same factor leaves the result unchanged', () => {
  fc.assert(
    fc.property(clients, fc.double({ min: 1e-3, max: 1e3, noNaN: true }), ({ vectors, weights }, s) => {
      const a = weightedAverage(vectors, weights);
      const b = weightedAverage(
        vectors,
        weights.map((w) => w * s),
      );
      assertClose(b, a, ROUNDING_ABS, ROUNDING_REL);
      // Powers of two scale exactly, so there the result is bit-identical.
      assert.ok(
        bitsEqual(
          weightedAverage(
            vectors,
            weights.map((w) => w * 1024),
          ),
          a,
        ),
      );
    }),
  );
});

test('weightedAverage: deterministic and does not mutate its inputs', () => {
  fc.assert(
    fc.property(clients, ({ vectors, weights }) => {
      const before = vectors.map((v) => new Float32Array(v));
      const w0 = [...weights];
      const a = weightedAverage(vectors, weights);
      const b = weightedAverage(vectors, weights);
      assert.ok(bitsEqual(a, b));
      vectors.forEach((v, i) => assert.ok(bitsEqual(v, before[i])));
      assert.deepEqual(weights, w0);
    }),
  );
});

test('weightedAverage: rejects bad input with a clear error', () => {
  const a = f32([1, 2]);
  const b = f32([3, 4]);
  assert.throws(() => weightedAverage([], []), /no vectors/);
  assert.throws(
    () => weightedAverage([a, f32([1, 2, 3])], [1, 1]),
    /vectors\[1\] has length 3 but vectors\[0\] has length 2/,
  );
  assert.throws(() => weightedAverage([a, b], [1]), /got 1 weights for 2 vectors/);
  assert.throws(() => weightedAverage([a, b], [1, -1]), /weights\[1\] must be a finite number >= 0, got -1/);
  assert.throws(() => weightedAverage([a, b], [1, NaN]), /weights\[1\] must be a finite number >= 0, got NaN/);
  assert.throws(() => weightedAverage([a, b], [Infinity, 1]), /weights\[0\] must be a finite number >= 0/);
  assert.throws(() => weightedAverage([a, b], [0, 0]), /all weights are zero/);
  assert.throws(() => weightedAverage([a, b], [Number.MAX_VALUE, Number.MAX_VALUE]), /overflows/);
});

// ---------- fedNova ----------

test('fedNova: hand-computed 2 clients x 3 params', () => {
  // p = [1/4, 3/4]; d1 = ([1,1,1]-[0,1,2])/1 = [1,0,-1]; d2 = ([1,1,1]-[1,3,5])/2 = [0,-1,-2]
  // tau_eff = 1/4*1 + 3/4*2 = 1.75; sum p d = [0.25, -0.75, -1.75]; new = g - 1.75 * that
  const got = fedNova(f32([1, 1, 1]), [f32([0, 1, 2]), f32([1, 3, 5])], [1, 3], [1, 2]);
  assert.deepEqual(arr(got), [0.5625, 2.3125, 4.0625]);
  // FedAvg would give [0.75, 2.5, 4.25]: the client with more steps is pulled back.
  assert.deepEqual(arr(weightedAverage([f32([0, 1, 2]), f32([1, 3, 5])], [1, 3])), [0.75, 2.5, 4.25]);
});

test('fedNova: matches the naive float64 reference', () => {
  fc.assert(
    fc.property(novaCase, ({ global, locals, weights, steps }) => {
      const got = fedNova(global, locals, weights, steps);
      const want = naiveFedNova(arr(global), locals.map(arr), weights, steps);
      assertClose(got, want, ABS, REL, coordScale([global, ...locals]));
    }),
  );
});

test('fedNova: equals weightedAverage when every client ran the same number of steps', () => {
  fc.assert(
    fc.property(novaCase, fc.integer({ min: 1, max: 1000 }), ({ global, locals, weights }, tau) => {
      const got = fedNova(
        global,
        locals,
        weights,
        locals.map(() => tau),
      );
      assertClose(got, weightedAverage(locals, weights), ABS, REL, coordScale([global, ...locals]));
    }),
  );
});

test('fedNova: rejects bad input with a clear error', () => {
  const g = f32([0, 0]);
  const l = [f32([1, 1]), f32([2, 2])];
  assert.throws(() => fedNova(g, [], [], []), /no locals/);
  assert.throws(() => fedNova(f32([0]), l, [1, 1], [1, 1]), /global has length 1 but locals have length 2/);
  assert.throws(() => fedNova(g, l, [1], [1, 1]), /got 1 numExamples for 2 vectors/);
  assert.throws(() => fedNova(g, l, [1, 1], [1]), /got 1 localSteps for 2 locals/);
  assert.throws(() => fedNova(g, l, [1, 1], [1, 0]), /localSteps\[1\] must be a finite number > 0, got 0/);
  assert.throws(() => fedNova(g, l, [1, 1], [-2, 1]), /localSteps\[0\] must be a finite number > 0/);
  assert.throws(() => fedNova(g, l, [1, 1], [NaN, 1]), /localSteps\[0\]/);
  assert.throws(() => fedNova(g, l, [0, 0], [1, 1]), /all numExamples are zero/);
  assert.throws(() => fedNova(g, l, [-1, 2], [1, 1]), /numExamples\[0\] must be a finite number >= 0/);
});

// ---------- deltas / averageDelta / applyDelta ----------

test('deltas, averageDelta and applyDelta agree with the plain formulas', () => {
  assert.deepEqual(deltas(f32([1, 2]), [f32([2, 2]), f32([0, 5])]).map(arr), [
    [1, 0],
    [-1, 3],
  ]);
  assert.deepEqual(arr(applyDelta(f32([1, 2]), f32([0.5, -1]))), [1.5, 1]);
  assert.deepEqual(arr(applyDelta(f32([1, 2]), f32([0.5, -1]), -2)), [0, 4]);
  fc.assert(
    fc.property(novaCase, ({ global, locals, weights }) => {
      const scale = coordScale([global, ...locals]);
      const avg = averageDelta(global, locals, weights);
      const naive = naiveWeightedAverage(
        locals.map((l) => arr(l).map((x, j) => x - global[j])),
        weights,
      );
      assertClose(avg, naive, ABS, REL, scale);
      assertClose(avg, weightedAverage(deltas(global, locals), weights), ABS, REL, scale);
      // global + mean delta is the FedAvg model.
      assertClose(applyDelta(global, avg), weightedAverage(locals, weights), ABS, REL, scale);
    }),
  );
  assert.throws(() => applyDelta(f32([1]), f32([1, 2])), /delta has length 2 but global has length 1/);
  assert.throws(() => applyDelta(f32([1]), f32([1]), NaN), /scale must be finite/);
  assert.throws(() => deltas(f32([1]), [f32([1, 2])]), /global has length 1/);
  assert.throws(() => averageDelta(f32([1]), [f32([1])], [0]), /all weights are zero/);
});

test('averageDelta over several accumulator blocks equals one pass per local, to the bit', () => {
  const n = 5000 + 17; // spans three blocks, the last one partial
  const rng = (seed: number) => () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32 - 0.5;
  const r = rng(7);
  const global = Float32Array.from({ length: n }, r);
  const locals = Array.from({ length: 7 }, () => Float32Array.from({ length: n }, r));
  const weights = [600, 0, 13, 600, 1, 250, 600];
  const acc = new Float64Array(n);
  locals.forEach((l, i) => {
    for (let j = 0; j < n; j++) acc[j] += weights[i] * (l[j] - global[j]);
  });
  const total = weights.reduce((a, w) => a + w, 0);
  const onePass = Float32Array.from(acc, (v) => v / total);
  assert.deepEqual(averageDelta(global, locals, weights), onePass);
});
