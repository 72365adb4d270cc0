import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { averageDelta, weightedAverage } from './aggregate.ts';
import { ABS, REL, assertClose, bitsEqual } from '../../test/support/numeric.js';
import {
  makeServerOptimizer,
  SERVER_OPT_DEFAULTS,
  SERVER_OPT_NAMES,
  type ServerOptHyper,
  type ServerOptName,
  type ServerOptState,
} from './server-opt.ts';

// ---------- naive reference: the papers' formulas as plain float64 scalar loops over number[] ----------
// The optimizer's state and the returned model are documented as Float32 storage, so the reference rounds
// exactly those stored values with Math.fround; every formula is otherwise written out per element.

type Hyper = Record<string, number>;

function naiveRun(name: ServerOptName, hyper: Hyper, global0: number[], inputs: number[][]): number[][] {
  const n = global0.length;
  const h = { ...SERVER_OPT_DEFAULTS[name], ...hyper };
  let global = global0.map(Math.fround);
  const tau2 = h.tau === undefined ? 0 : h.tau * h.tau;
  let m: number[] = new Array(n).fill(0);
  // Reddi et al. Alg. 2 starts v at tau^2; Keras Adam starts at 0.
  let v: number[] = new Array(n).fill(name.startsWith('fed') ? Math.fround(tau2) : 0);
  const history: number[][] = [];
  inputs.forEach((x, r) => {
    const next: number[] = [];
    const newM: number[] = [];
    const newV: number[] = [];
    for (let j = 0; j < n; j++) {
      let y: number;
      if (name === 'fedavg') {
        y = global[j] + h.eta * x[j];
      } else if (name === 'fedavgm') {
        newM[j] = h.beta * m[j] + x[j];
        y = global[j] + h.eta * newM[j];
      } else if (name === 'fedadam' || name === 'fedyogi' || name === 'fedadagrad') {
        newM[j] = h.beta1 * m[j] + (1 - h.beta1) * x[j];
        if (name === 'fedadam') newV[j] = h.beta2 * v[j] + (1 - h.beta2) * x[j] * x[j];
        else if (name === 'fedyogi') newV[j] = v[j] - (1 - h.beta2) * x[j] * x[j] * Math.sign(v[j] - x[j] * x[j]);
        else newV[j] = v[j] + x[j] * x[j];
        y = global[j] + (h.eta * newM[j]) / (Math.sqrt(newV[j]) + h.tau);
      } else if (name === 'sgd') {
        newM[j] = h.momentum * m[j] + x[j];
        y = global[j] - h.lr * (h.momentum > 0 ? newM[j] : x[j]);
      } else {
        const t = r + 1;
        newM[j] = h.beta1 * m[j] + (1 - h.beta1) * x[j];
        newV[j] = h.beta2 * v[j] + (1 - h.beta2) * x[j] * x[j];
        const mHat = newM[j] / (1 - h.beta1 ** t);
        const vHat = newV[j] / (1 - h.beta2 ** t);
        y = global[j] - (h.lr * mHat) / (Math.sqrt(vHat) + h.eps);
      }
      next.push(Math.fround(y));
    }
    m = newM.length ? newM.map(Math.fround) : m;
    v = newV.length ? newV.map(Math.fround) : v;
    global = next;
    history.push(next);
  });
  return history;
}

// ---------- helpers ----------

const f32 = (xs: number[]) => new Float32Array(xs);
const arr = (v: Float32Array) => Array.from(v);

/** Runs an optimizer over a sequence of inputs, feeding each output back as the next global. */
function run(
  opt: ReturnType<typeof makeServerOptimizer>,
  global: Float32Array,
  inputs: Float32Array[],
): Float32Array[] {
  const out: Float32Array[] = [];
  let g = global;
  for (const x of inputs) {
    g = opt.step(g, x);
    out.push(g);
  }
  return out;
}

// Hyper-parameter overrides exercised besides the defaults (e.g. FedAdagrad with Reddi's momentum).
const CONFIGS: [ServerOptName, ServerOptHyper][] = [
  ['fedavg', {}],
  ['fedavg', { eta: 0.5 }],
  ['fedavgm', {}],
  ['fedavgm', { eta: 0.7, beta: 0.5 }],
  ['fedadam', {}],
  ['fedadam', { eta: 0.03, beta1: 0.5, beta2: 0.9, tau: 1e-3 }],
  ['fedyogi', {}],
  ['fedyogi', { tau: 1e-9, eta: 0.1 }],
  ['fedadagrad', {}],
  ['fedadagrad', { beta1: 0.9, tau: 1e-2 }],
  ['sgd', {}],
  ['sgd', { lr: 0.05, momentum: 0.9 }],
  ['adam', {}],
  ['adam', { lr: 0.01, beta1: 0.5, beta2: 0.9, eps: 1e-3 }],
];

const MAG = Math.fround(10);
const vec = (n: number) =>
  fc.float32Array({ minLength: n, maxLength: n, min: -MAG, max: MAG, noNaN: true, noDefaultInfinity: true });
/** A starting model and 5 rounds of inputs of a common length. */
const sequence = fc
  .integer({ min: 0, max: 10 })
  .chain((n) => fc.record({ global: vec(n), inputs: fc.array(vec(n), { minLength: 5, maxLength: 5 }) }));

// ---------- hand-computed examples ----------

test('fedavg / fedavgm: hand-computed steps', () => {
  const avg = makeServerOptimizer('fedavg', {});
  assert.equal(avg.kind, 'delta');
  assert.deepEqual(arr(avg.step(f32([1, 2, 3]), f32([0.5, -1, 0]))), [1.5, 1, 3]);

  // v1 = D1 = [1, -2]; new1 = g + v1. v2 = 0.5 * v1 + D2 = [0.5 + 1, -1 + 0] = [1.5, -1].
  const m = makeServerOptimizer('fedavgm', { beta: 0.5 });
  const g1 = m.step(f32([0, 0]), f32([1, -2]));
  assert.deepEqual(arr(g1), [1, -2]);
  assert.deepEqual(arr(m.step(g1, f32([1, 0]))), [2.5, -3]);
  assert.deepEqual(arr(m.state().slots.momentum), [1.5, -1]);
});

test('fedadam: first step moves each coordinate by about eta * sign(Delta)', () => {
  // m = 0.1 D; v = 0.99 tau^2 + 0.01 D^2 ~= (0.1 |D|)^2; eta m / sqrt(v) = 0.1 * sign(D). D = 0 stays put.
  const opt = makeServerOptimizer('fedadam', {});
  const got = opt.step(f32([1, 2, 3]), f32([0.1, -0.2, 0]));
  assertClose(got, [1.1, 1.9, 3], 1e-6, 0);
  const s = opt.state();
  assert.equal(s.round, 1);
  assertClose(s.slots.m, [0.01, -0.02, 0], 1e-9, 1e-6);
  assertClose(s.slots.v, [1e-4, 4e-4, 1e-18], 1e-12, 1e-5);
});

test('fedyogi / fedadagrad: hand-computed first step', () => {
  // Yogi: v0 = tau^2 = 1e-6 < D^2 = 1, so v = 1e-6 + 0.01 * 1; m = 0.1; new = 0 + 0.01 * 0.1 / (sqrt(v) + 1e-3).
  const y = makeServerOptimizer('fedyogi', {});
  const expectY = (0.01 * 0.1) / (Math.sqrt(1e-6 + 0.01) + 1e-3);
  assertClose(y.step(f32([0]), f32([1])), [expectY], 1e-9, 1e-6);
  // Adagrad (Flower: beta1 = 0, so m = D): v = tau^2 + 4; new = 1 + 0.1 * 2 / (2 + 1e-9) ~= 1.1.
  const a = makeServerOptimizer('fedadagrad', {});
  assertClose(a.step(f32([1]), f32([2])), [1.1], 1e-6, 0);
  assertClose(a.step(f32([1]), f32([2])), [1 + (0.1 * 2) / Math.sqrt(8)], 1e-6, 0);
});

test('sgd / adam (gradient input): hand-computed steps', () => {
  const sgd = makeServerOptimizer('sgd', {});
  assert.equal(sgd.kind, 'gradient');
  assert.deepEqual(arr(sgd.step(f32([1, 2]), f32([10, -5]))), [0, 2.5]);
  assert.deepEqual(sgd.state().slots, {});

  const mom = makeServerOptimizer('sgd', { lr: 0.5, momentum: 0.5 });
  const g1 = mom.step(f32([0]), f32([2])); // u = 2, new = -1
  assert.deepEqual(arr(g1), [-1]);
  assert.deepEqual(arr(mom.step(g1, f32([2]))), [-2.5]); // u = 1 + 2 = 3, new = -1 - 1.5

  // Bias-corrected Adam: first step is lr * g / (|g| + eps), i.e. about lr against the gradient's sign.
  const adam = makeServerOptimizer('adam', {});
  assert.equal(adam.kind, 'gradient');
  assertClose(
    adam.step(f32([0, 0, 5]), f32([2, -1, 0])),
    [(-0.001 * 2) / (2 + 1e-7), 0.001 / (1 + 1e-7), 5],
    1e-10,
    1e-6,
  );
});

test('defaults are the documented ones and are reported in state().hyper', () => {
  assert.deepEqual(makeServerOptimizer('fedadam', {}).state().hyper, { eta: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-9 });
  assert.deepEqual(makeServerOptimizer('fedyogi', {}).state().hyper, { eta: 0.01, beta1: 0.9, beta2: 0.99, tau: 1e-3 });
  assert.deepEqual(makeServerOptimizer('fedadagrad', {}).state().hyper, { eta: 0.1, beta1: 0, tau: 1e-9 });
  assert.deepEqual(makeServerOptimizer('fedavgm', {}).state().hyper, { eta: 1, beta: 0.9 });
  assert.deepEqual(makeServerOptimizer('fedavg', {}).state().hyper, { eta: 1 });
  assert.deepEqual(makeServerOptimizer('sgd', {}).state().hyper, { lr: 0.1, momentum: 0 });
  assert.deepEqual(makeServerOptimizer('adam', {}).state().hyper, { lr: 0.001, beta1: 0.9, beta2: 0.999, eps: 1e-7 });
  assert.deepEqual(makeServerOptimizer('adam', { lr: 0.01 }).state().hyper.lr, 0.01);
  assert.deepEqual(SERVER_OPT_NAMES.sort(), ['adam', 'fedadagrad', 'fedadam', 'fedavg', 'fedavgm', 'fedyogi', 'sgd']);
});

// ---------- against the naive reference ----------

test('5-round sequences match the naive reference for every optimizer', () => {
  for (const [name, hyper] of CONFIGS) {
    fc.assert(
      fc.property(sequence, ({ global, inputs }) => {
        const got = run(makeServerOptimizer(name, hyper), global, inputs);
        const want = naiveRun(name, hyper as Hyper, arr(global), inputs.map(arr));
        got.forEach((g, r) => {
          try {
            assertClose(g, want[r]);
          } catch (e) {
            throw new Error(`${name} ${JSON.stringify(hyper)} round ${r + 1}: ${(e as Error).message}`);
          }
        });
      }),
      { numRuns: 40 },
    );
  }
});

test('fedavg with eta = 1 applied to the mean delta equals weightedAverage of the locals', () => {
  const MAGL = Math.fround(100);
  const v = (n: number) =>
    fc.float32Array({ minLength: n, maxLength: n, min: -MAGL, max: MAGL, noNaN: true, noDefaultInfinity: true });
  const c = fc.tuple(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 10 })).chain(([k, n]) =>
    fc.record({
      global: v(n),
      locals: fc.array(v(n), { minLength: k, maxLength: k }),
      weights: fc
        .array(fc.integer({ min: 0, max: 10_000 }), { minLength: k, maxLength: k })
        .filter((w) => w.some((x) => x > 0)),
    }),
  );
  fc.assert(
    fc.property(c, ({ global, locals, weights }) => {
      const got = makeServerOptimizer('fedavg', { eta: 1 }).step(global, averageDelta(global, locals, weights));
      // Two Float32 roundings (mean delta, then global + delta): tolerance scales with the inputs' size.
      const scale = Array.from(global, (x, j) => Math.max(Math.abs(x), ...locals.map((l) => Math.abs(l[j]))));
      assertClose(got, weightedAverage(locals, weights), ABS, REL, scale);
    }),
  );
});

// ---------- checkpoint / restore ----------

test('restoring from state() then stepping is bit-identical to continuing the original', () => {
  for (const [name, hyper] of CONFIGS) {
    fc.assert(
      fc.property(sequence, fc.integer({ min: 0, max: 5 }), ({ global, inputs }, cut) => {
        const original = makeServerOptimizer(name, hyper);
        const head = run(original, global, inputs.slice(0, cut));
        const at = head.length ? head[head.length - 1] : global;
        const saved: ServerOptState = original.state();
        // A checkpoint goes through bytes: copy every buffer so nothing is shared with the original.
        const copy: ServerOptState = {
          name: saved.name,
          round: saved.round,
          hyper: { ...saved.hyper },
          slots: Object.fromEntries(Object.entries(saved.slots).map(([k, s]) => [k, new Float32Array(s)])),
        };
        assert.equal(copy.round, cut);
        const resumed = makeServerOptimizer(name, {}, copy);
        const a = run(original, at, inputs.slice(cut));
        const b = run(resumed, at, inputs.slice(cut));
        a.forEach((x, i) => assert.ok(bitsEqual(x, b[i]), `${name} step ${cut + i + 1} differs after restore`));
        // The checkpoint itself was not modified by the resumed optimizer.
        for (const [k, s] of Object.entries(saved.slots)) assert.ok(bitsEqual(s, copy.slots[k]), `slot ${k} mutated`);
        assert.deepEqual(resumed.state().round, original.state().round);
      }),
      { numRuns: 25 },
    );
  }
});

test('state() is a deep copy and step() does not mutate its inputs', () => {
  const opt = makeServerOptimizer('fedadam', {});
  const g = f32([1, 2]);
  const d = f32([0.5, -0.5]);
  const g1 = opt.step(g, d);
  assert.deepEqual(arr(g), [1, 2]);
  assert.deepEqual(arr(d), [0.5, -0.5]);
  const s = opt.state();
  s.slots.m.fill(123);
  s.hyper.eta = 99;
  assert.notEqual(opt.state().slots.m[0], 123);
  assert.equal(opt.state().hyper.eta, 0.1);
  // Same result as a fresh optimizer stepped the same way, so the edits above did not leak in.
  const fresh = makeServerOptimizer('fedadam', {});
  fresh.step(g, d);
  assert.ok(bitsEqual(opt.step(g1, d), fresh.step(g1, d)));
});

test('restore: explicit hyper overrides the checkpoint (e.g. a new learning rate on resume)', () => {
  const a = makeServerOptimizer('fedavgm', { eta: 1 });
  a.step(f32([0]), f32([1]));
  const b = makeServerOptimizer('fedavgm', { eta: 0.5 }, a.state());
  assert.equal(b.state().hyper.eta, 0.5);
  assert.equal(b.state().hyper.beta, 0.9);
  assert.deepEqual(arr(b.step(f32([0]), f32([1]))), [Math.fround(0.5 * (0.9 * 1 + 1))]);
});

// ---------- validation ----------

test('rejects bad names, hyper-parameters, lengths and checkpoints with clear errors', () => {
  assert.throws(() => makeServerOptimizer('fedprox' as ServerOptName, {}), /unknown server optimizer 'fedprox'/);
  assert.throws(
    () => makeServerOptimizer('fedadam', { beta: 0.9 }),
    /'fedadam': unknown hyper-parameter 'beta' \(accepted: eta, beta1, beta2, tau\)/,
  );
  assert.throws(() => makeServerOptimizer('fedavg', { lr: 0.1 }), /unknown hyper-parameter 'lr'/);
  assert.throws(() => makeServerOptimizer('sgd', { foo: 1 } as ServerOptHyper), /unknown hyper-parameter 'foo'/);
  assert.throws(() => makeServerOptimizer('fedadam', { eta: NaN }), /'eta' must be a finite number, got NaN/);
  assert.throws(() => makeServerOptimizer('adam', { lr: Infinity }), /'lr' must be a finite number, got Infinity/);
  assert.throws(() => makeServerOptimizer('fedyogi', { beta2: 1 }), /'beta2' must be in \[0, 1\), got 1/);
  assert.throws(() => makeServerOptimizer('fedadam', { tau: 0 }), /'tau' must be > 0/);
  assert.throws(() => makeServerOptimizer('sgd', { lr: -1 }), /'lr' must be > 0/);

  const opt = makeServerOptimizer('fedadam', {});
  assert.throws(() => opt.step(f32([1, 2]), f32([1])), /avgDelta has length 1 but global has length 2/);
  assert.throws(() => makeServerOptimizer('adam', {}).step(f32([1, 2]), f32([1])), /gradient has length 1/);
  assert.throws(() => opt.step(f32([1, 2]), f32([1, NaN])), /avgDelta\[1\] is NaN/);
  assert.equal(opt.state().round, 0, 'a rejected step leaves the state alone');
  opt.step(f32([1, 2, 3]), f32([0, 0, 0]));
  assert.throws(() => opt.step(f32([1, 2]), f32([0, 0])), /global has length 2 but state slot 'm' has length 3/);

  const s = opt.state();
  assert.throws(() => makeServerOptimizer('fedyogi', {}, s), /cannot restore from a 'fedadam' checkpoint/);
  assert.throws(() => makeServerOptimizer('fedadam', {}, { ...s, round: -1 }), /round must be an integer >= 0/);
  assert.throws(() => makeServerOptimizer('fedadam', {}, { ...s, slots: { m: s.slots.m } }), /lacks state slot\(s\) v/);
  assert.throws(() => makeServerOptimizer('fedadam', {}, { ...s, slots: {} }), /lacks state slot\(s\) m, v/);
  assert.throws(
    () => makeServerOptimizer('fedadam', {}, { ...s, slots: { ...s.slots, extra: f32([1, 2, 3]) } }),
    /unexpected state slot 'extra'/,
  );
  assert.throws(
    () => makeServerOptimizer('fedadam', {}, { ...s, slots: { m: s.slots.m, v: f32([1]) } }),
    /different lengths/,
  );
  assert.throws(
    () => makeServerOptimizer('fedadam', {}, { ...s, hyper: { ...s.hyper, tau: NaN } }),
    /'tau' must be a finite number/,
  );
  assert.throws(
    () => makeServerOptimizer('fedadam', {}, { ...s, hyper: { gamma: 1 } }),
    /unknown hyper-parameter 'gamma'/,
  );
  const restored = makeServerOptimizer('fedadam', {}, s);
  assert.throws(() => restored.step(f32([1]), f32([0])), /state slot 'm' has length 3/);
  // A round-0 checkpoint has no buffers yet; they are created on the first step.
  assert.equal(
    makeServerOptimizer('fedadam', {}, makeServerOptimizer('fedadam', {}).state()).step(f32([1]), f32([0]))[0],
    1,
  );
});
