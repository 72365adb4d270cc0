// DenseNet (the dense training engine) against central finite differences of its own loss, for both
// kernel implementations. The native block runs only when the addon is built (node scripts/build-native.mjs).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Kernels } from './kernels.js';
import { jsKernels } from './kernels-js.js';

import { DenseNet, denseTensorSpecs, denseUnsupportedReason, type Activation, type DenseNetSpec } from './dense.js';
import { prng, rand, native, nativeSkip } from '../../test/support/kernels.js';

// ---------- helpers ----------

/** Float64 forward pass written out here: the pre-activations of every layer (for the ReLU kink check). */
function preActivations(spec: DenseNetSpec, w: Float32Array, x: Float32Array, m: number): Float64Array[] {
  const out: Float64Array[] = [];
  let input: ArrayLike<number> = x;
  let fanIn = spec.inputSize;
  let off = 0;
  for (const l of spec.layers) {
    const z = new Float64Array(m * l.units);
    const a = new Float64Array(m * l.units);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < l.units; j++) {
        let s = w[off + fanIn * l.units + j];
        for (let p = 0; p < fanIn; p++) s += input[i * fanIn + p] * w[off + p * l.units + j];
        z[i * l.units + j] = s;
        a[i * l.units + j] =
          l.activation === 'relu'
            ? Math.max(0, s)
            : l.activation === 'sigmoid'
              ? 1 / (1 + Math.exp(-s))
              : l.activation === 'tanh'
                ? Math.tanh(s)
                : s;
      }
    }
    out.push(z);
    input = a;
    off += fanIn * l.units + l.units;
    fanIn = l.units;
  }
  return out;
}

interface Case {
  spec: DenseNetSpec;
  w: Float32Array;
  x: Float32Array;
  y: Int32Array | Float32Array;
  m: number;
}

const EPS = 1e-2;
/**
 * |fd - g| <= ABS + REL |g|. With float32 forward passes and eps = 1e-2 the central difference errs by
 * about 1e-6 (rounding of a loss of order 1, divided by 2 eps) plus eps^2 f''' / 6; the worst error seen
 * on these nets is about 3e-5, so ABS leaves a margin of 15x. Typical gradient entries are 1e-2..1e-1,
 * so a sign flip, a transposed kernel or a wrong derivative fails by far more than ABS (checked by
 * breaking a copy of dense.ts on purpose).
 */
const ABS = 5e-4;
const REL = 1e-2;
/** Hidden ReLU pre-activations stay this far from 0, so no FD probe (|dz| <= EPS * ~1) crosses the kink. */
const KINK_MARGIN = 0.05;

/** A tiny net with random weights and data; seeds are searched (deterministically) until no ReLU sits near its kink. */
function makeCase(spec: DenseNetSpec, m: number, seed0: number): Case {
  const sizes = denseTensorSpecs(spec).reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
  const outN = spec.layers[spec.layers.length - 1].units;
  for (let seed = seed0; seed < seed0 + 1000; seed++) {
    const r = prng(seed);
    const w = rand(sizes, r, -0.9, 0.9);
    const x = rand(m * spec.inputSize, r);
    const y =
      spec.loss === 'mse' ? rand(m * outN, r, -1, 1) : Int32Array.from({ length: m }, () => Math.floor(r() * outN));
    const z = preActivations(spec, w, x, m);
    const nearKink = spec.layers.some((l, i) => l.activation === 'relu' && z[i].some((v) => Math.abs(v) < KINK_MARGIN));
    if (!nearKink) return { spec, w, x, y, m };
  }
  throw new Error('no seed keeps the ReLUs away from their kinks');
}

function meanLoss(net: DenseNet, c: Case, w: Float32Array): number {
  return net.evaluate(w, c.x, c.y, c.m).loss / c.m;
}

/** Checks every parameter's analytic gradient against a central difference; returns the worst |fd - g|. */
function checkGradient(k: Kernels, c: Case, what: string): number {
  const net = new DenseNet(c.spec, k);
  const g = new Float32Array(net.numParams).fill(NaN); // gradient() must overwrite all of g
  const r = net.gradient(c.w, c.x, c.y, c.m, g);
  assert.ok(Number.isFinite(r.loss), `${what}: loss ${r.loss}`);
  const names = denseTensorSpecs(c.spec).flatMap((t) =>
    Array.from({ length: t.shape.reduce((a, b) => a * b, 1) }, (_, i) => `${t.name}[${i}]`),
  );
  assert.equal(names.length, net.numParams);
  const w = new Float32Array(c.w);
  let worst = 0;
  let nonZero = 0;
  for (let i = 0; i < net.numParams; i++) {
    const w0 = w[i];
    w[i] = w0 + EPS;
    const up = meanLoss(net, c, w);
    w[i] = w0 - EPS;
    const down = meanLoss(net, c, w);
    w[i] = w0;
    const fd = (up - down) / (2 * EPS);
    const diff = Math.abs(fd - g[i]);
    worst = Math.max(worst, diff);
    if (Math.abs(g[i]) > 10 * ABS) nonZero++;
    if (!(diff <= ABS + REL * Math.abs(g[i]))) {
      assert.fail(
        `${what}: d loss / d ${names[i]} is ${g[i]}, finite difference ${fd} (|diff| ${diff.toExponential(2)} > ${(ABS + REL * Math.abs(g[i])).toExponential(2)})`,
      );
    }
  }
  // The check means something only if many gradients are well above the absolute tolerance (inactive
  // ReLUs legitimately zero whole rows, so not all of them).
  assert.ok(nonZero >= net.numParams / 3, `${what}: only ${nonZero} of ${net.numParams} gradients exceed ${10 * ABS}`);
  return worst;
}

const softmaxNet = (hidden: Activation): DenseNetSpec => ({
  inputSize: 5,
  layers: [
    { name: 'h', units: 4, activation: hidden },
    { name: 'out', units: 3, activation: 'softmax' },
  ],
  loss: 'sparse_categorical_crossentropy',
});

const deepNet: DenseNetSpec = {
  inputSize: 5,
  layers: [
    { name: 'h1', units: 4, activation: 'tanh' },
    { name: 'h2', units: 3, activation: 'relu' },
    { name: 'h3', units: 4, activation: 'sigmoid' },
    { name: 'out', units: 3, activation: 'softmax' },
  ],
  loss: 'sparse_categorical_crossentropy',
};

const linearMse: DenseNetSpec = {
  inputSize: 5,
  layers: [{ name: 'out', units: 2, activation: 'linear' }],
  loss: 'mse',
};
const hiddenMse: DenseNetSpec = {
  inputSize: 5,
  layers: [
    { name: 'h', units: 4, activation: 'tanh' },
    { name: 'out', units: 2, activation: 'linear' },
  ],
  loss: 'mse',
};

// ---------- the suite both implementations run ----------

function denseSuite(k: Kernels): void {
  describe('gradient vs central finite differences', () => {
    for (const act of ['relu', 'sigmoid', 'tanh'] as const) {
      it(`5 -> 4 ${act} -> 3 softmax, sparse cross-entropy, every parameter`, (t) => {
        const worst = checkGradient(k, makeCase(softmaxNet(act), 6, 100), `${act} net`);
        t.diagnostic(`worst |fd - g| ${worst.toExponential(2)}`);
      });
    }

    it('5 -> 4 tanh -> 3 relu -> 4 sigmoid -> 3 softmax (backprop through several hidden layers)', (t) => {
      const worst = checkGradient(k, makeCase(deepNet, 7, 200), 'deep net');
      t.diagnostic(`worst |fd - g| ${worst.toExponential(2)}`);
    });

    it('5 -> 2 linear, mse (Keras mean over outputs and batch)', (t) => {
      const worst = checkGradient(k, makeCase(linearMse, 6, 300), 'linear mse');
      t.diagnostic(`worst |fd - g| ${worst.toExponential(2)}`);
    });

    it('5 -> 4 tanh -> 2 linear, mse', (t) => {
      const worst = checkGradient(k, makeCase(hiddenMse, 6, 400), 'tanh mse');
      t.diagnostic(`worst |fd - g| ${worst.toExponential(2)}`);
    });

    it('a single example (m = 1) and a batch whose size is not a multiple of anything', () => {
      checkGradient(k, makeCase(softmaxNet('relu'), 1, 500), 'relu net m=1');
      checkGradient(k, makeCase(deepNet, 13, 600), 'deep net m=13');
    });
  });

  describe('batch semantics', () => {
    it('the gradient is the mean of the per-example gradients, and the loss their sum', () => {
      for (const spec of [softmaxNet('tanh'), hiddenMse]) {
        const c = makeCase(spec, 5, 700);
        const net = new DenseNet(spec, k);
        const g = new Float32Array(net.numParams);
        const full = net.gradient(c.w, c.x, c.y, c.m, g);
        const sum = new Float64Array(net.numParams);
        const gi = new Float32Array(net.numParams);
        const outN = spec.layers[spec.layers.length - 1].units;
        let loss = 0;
        for (let i = 0; i < c.m; i++) {
          const yi = c.y instanceof Int32Array ? c.y.subarray(i, i + 1) : c.y.subarray(i * outN, (i + 1) * outN);
          loss += net.gradient(c.w, c.x.subarray(i * 5, (i + 1) * 5), yi, 1, gi).loss;
          for (let j = 0; j < gi.length; j++) sum[j] += gi[j];
        }
        assert.ok(Math.abs(full.loss - loss) <= 1e-5 * Math.abs(loss), `summed loss ${full.loss} vs ${loss}`);
        for (let j = 0; j < g.length; j++) {
          assert.ok(
            Math.abs(g[j] - sum[j] / c.m) <= 1e-6 + 1e-5 * Math.abs(g[j]),
            `parameter ${j}: ${g[j]} vs mean ${sum[j] / c.m}`,
          );
        }
      }
    });

    it('results do not depend on earlier calls with other batch sizes (scratch buffers grow and are reused)', () => {
      const big = makeCase(deepNet, 9, 800);
      const fresh = new DenseNet(deepNet, k);
      const gFresh = new Float32Array(fresh.numParams);
      const rFresh = fresh.gradient(big.w, big.x.subarray(0, 4 * 5), big.y.subarray(0, 4), 4, gFresh);
      const used = new DenseNet(deepNet, k);
      const g = new Float32Array(used.numParams);
      used.gradient(big.w, big.x.subarray(0, 2 * 5), big.y.subarray(0, 2), 2, g);
      used.gradient(big.w, big.x, big.y, 9, g);
      used.evaluate(big.w, big.x, big.y, 9);
      const r = used.gradient(big.w, big.x.subarray(0, 4 * 5), big.y.subarray(0, 4), 4, g);
      assert.equal(r.loss, rFresh.loss);
      assert.equal(r.correct, rFresh.correct);
      assert.deepEqual(g, gFresh);
    });

    it('the gradient is the same for weights held in an offset view of a larger buffer', () => {
      const c = makeCase(softmaxNet('sigmoid'), 6, 900);
      const net = new DenseNet(c.spec, k);
      const g = new Float32Array(net.numParams);
      net.gradient(c.w, c.x, c.y, c.m, g);
      const big = new Float32Array(c.w.length + 7).fill(123);
      big.set(c.w, 3);
      const gBig = new Float32Array(net.numParams + 5).fill(-7);
      net.gradient(big.subarray(3, 3 + c.w.length), c.x, c.y, c.m, gBig.subarray(2, 2 + net.numParams));
      assert.deepEqual(gBig.subarray(2, 2 + net.numParams), g);
      assert.deepEqual([...gBig.subarray(0, 2), ...gBig.subarray(2 + net.numParams)], [-7, -7, -7, -7, -7]);
    });
  });

  describe('sgdStep (the SGD update folded into the backward pass)', () => {
    it('steps every parameter as gradient() then w -= lr * g does, to float32 rounding, and reports the same loss', () => {
      for (const [spec, seed] of [
        [deepNet, 1900],
        [softmaxNet('relu'), 2000],
        [hiddenMse, 2100],
      ] as const) {
        const c = makeCase(spec, 7, seed);
        const lr = 0.3;
        const net = new DenseNet(spec, k);
        const g = new Float32Array(net.numParams);
        const want = net.gradient(c.w, c.x, c.y, c.m, g);
        const w = new Float32Array(c.w);
        const got = net.sgdStep(w, c.x, c.y, c.m, lr);
        assert.equal(got.loss, want.loss);
        assert.equal(got.correct, want.correct);
        let moved = 0;
        for (let i = 0; i < w.length; i++) {
          // Two float32 roundings apart: the stored gradient (scaled by lr) and the stored weight.
          const ref = c.w[i] - lr * g[i];
          const tol = 2 ** -23 * (Math.abs(ref) + lr * Math.abs(g[i])) + 1e-12;
          assert.ok(Math.abs(w[i] - ref) <= tol, `parameter ${i}: ${w[i]} vs ${ref} (tolerance ${tol})`);
          if (w[i] !== c.w[i]) moved++;
        }
        assert.ok(moved >= w.length / 3, `only ${moved} of ${w.length} parameters moved`);
      }
    });

    it('steps weights held in an offset view and leaves the rest of the buffer alone', () => {
      const c = makeCase(softmaxNet('tanh'), 5, 2200);
      const net = new DenseNet(c.spec, k);
      const w = new Float32Array(c.w);
      net.sgdStep(w, c.x, c.y, c.m, 0.1);
      const big = new Float32Array(c.w.length + 7).fill(123);
      big.set(c.w, 3);
      net.sgdStep(big.subarray(3, 3 + c.w.length), c.x, c.y, c.m, 0.1);
      assert.deepEqual(big.subarray(3, 3 + c.w.length), w);
      assert.deepEqual([...big.subarray(0, 3), ...big.subarray(3 + c.w.length)], [123, 123, 123, 123, 123, 123, 123]);
    });

    it('rejects a learning rate that is not a positive number, before changing any weight', () => {
      const c = makeCase(softmaxNet('relu'), 3, 2300);
      const net = new DenseNet(c.spec, k);
      const w = new Float32Array(c.w);
      for (const lr of [0, -0.1, NaN, Infinity]) {
        assert.throws(() => net.sgdStep(w, c.x, c.y, c.m, lr), /learning rate must be a positive number/);
      }
      assert.deepEqual(w, c.w);
    });
  });

  describe('evaluate and predict', () => {
    it('evaluate() reports the same summed loss and correct count as gradient()', () => {
      for (const [spec, seed] of [
        [softmaxNet('relu'), 1000],
        [deepNet, 1100],
        [linearMse, 1200],
        [hiddenMse, 1300],
      ] as const) {
        const c = makeCase(spec, 11, seed);
        const net = new DenseNet(spec, k);
        const r = net.gradient(c.w, c.x, c.y, c.m, new Float32Array(net.numParams));
        const e = net.evaluate(c.w, c.x, c.y, c.m);
        assert.ok(
          Math.abs(e.loss - r.loss) <= 1e-6 * Math.abs(r.loss),
          `loss: evaluate ${e.loss} vs gradient ${r.loss}`,
        );
        assert.equal(e.correct, r.correct);
      }
    });

    it('predict() gives rows of probabilities summing to 1 whose argmax gives the correct count', () => {
      const c = makeCase(deepNet, 12, 1400);
      const net = new DenseNet(deepNet, k);
      const p = net.predict(c.w, c.x, c.m);
      assert.equal(p.length, c.m * 3);
      let correct = 0;
      for (let i = 0; i < c.m; i++) {
        const row = Array.from(p.subarray(i * 3, i * 3 + 3));
        assert.ok(
          row.every((v) => v > 0 && v < 1),
          `row ${i}: ${row}`,
        );
        assert.ok(
          Math.abs(row.reduce((a, b) => a + b, 0) - 1) <= 1e-6,
          `row ${i} sums to ${row.reduce((a, b) => a + b, 0)}`,
        );
        if (row.indexOf(Math.max(...row)) === c.y[i]) correct++;
      }
      assert.equal(correct, net.evaluate(c.w, c.x, c.y, c.m).correct);
      // -log p[label] summed is the reported loss.
      let loss = 0;
      for (let i = 0; i < c.m; i++) loss -= Math.log(p[i * 3 + c.y[i]]);
      assert.ok(Math.abs(loss - net.evaluate(c.w, c.x, c.y, c.m).loss) <= 1e-5 * loss);
    });

    it('predict() returns the linear outputs for regression, in a new array', () => {
      const c = makeCase(linearMse, 4, 1500);
      const net = new DenseNet(linearMse, k);
      const p = net.predict(c.w, c.x, c.m);
      const want = preActivations(linearMse, c.w, c.x, c.m)[0];
      for (let i = 0; i < want.length; i++)
        assert.ok(Math.abs(p[i] - want[i]) <= 1e-6, `output ${i}: ${p[i]} vs ${want[i]}`);
      const again = net.predict(c.w, c.x, c.m);
      assert.notEqual(again.buffer, p.buffer);
      assert.deepEqual(again, p);
    });

    it('mse loss is mean over outputs, summed over examples', () => {
      const net = new DenseNet(linearMse, k);
      const w = new Float32Array(net.numParams); // zero weights: outputs are 0
      const y = new Float32Array([1, 3, -2, 0]);
      assert.equal(net.evaluate(w, new Float32Array(10), y, 2).loss, (1 + 9) / 2 + (4 + 0) / 2);
    });
  });
}

describe('DenseNet spec checks', () => {
  const bad: [string, DenseNetSpec, RegExp][] = [
    [
      'softmax on a hidden layer',
      {
        inputSize: 3,
        loss: 'sparse_categorical_crossentropy',
        layers: [
          { name: 'h', units: 2, activation: 'softmax' },
          { name: 'o', units: 2, activation: 'softmax' },
        ],
      },
      /softmax on hidden layer 'h'/,
    ],
    [
      'mse with a softmax output',
      { inputSize: 3, loss: 'mse', layers: [{ name: 'o', units: 2, activation: 'softmax' }] },
      /mse needs a linear output/,
    ],
    [
      'cross-entropy without a softmax output',
      {
        inputSize: 3,
        loss: 'sparse_categorical_crossentropy',
        layers: [{ name: 'o', units: 2, activation: 'linear' }],
      },
      /needs a softmax output/,
    ],
    ['no layers', { inputSize: 3, loss: 'mse', layers: [] }, /no dense layers/],
    [
      'an activation the engine does not compute',
      {
        inputSize: 3,
        loss: 'mse',
        layers: [
          { name: 'h', units: 2, activation: 'elu' as Activation },
          { name: 'o', units: 1, activation: 'linear' },
        ],
      },
      /activation 'elu'/,
    ],
  ];
  for (const [what, spec, message] of bad) {
    it(`the constructor rejects ${what}`, () => {
      assert.notEqual(denseUnsupportedReason(spec), null);
      assert.throws(
        () => new DenseNet(spec, jsKernels),
        (e: unknown) =>
          e instanceof Error && /dense engine cannot run this model/.test(e.message) && message.test(e.message),
      );
    });
  }

  it('accepts the supported forms and lays parameters out per layer as kernel [in, out] then bias', () => {
    for (const spec of [softmaxNet('relu'), deepNet, linearMse, hiddenMse])
      assert.equal(denseUnsupportedReason(spec), null);
    assert.deepEqual(denseTensorSpecs(softmaxNet('relu')), [
      { name: 'h/kernel', shape: [5, 4] },
      { name: 'h/bias', shape: [4] },
      { name: 'out/kernel', shape: [4, 3] },
      { name: 'out/bias', shape: [3] },
    ]);
    assert.equal(new DenseNet(softmaxNet('relu'), jsKernels).numParams, 5 * 4 + 4 + 4 * 3 + 3);
  });

  it('classification labels must be an Int32Array', () => {
    const c = makeCase(softmaxNet('tanh'), 2, 1600);
    const net = new DenseNet(c.spec, jsKernels);
    assert.throws(() => net.gradient(c.w, c.x, new Float32Array(2), 2, new Float32Array(net.numParams)), /Int32Array/);
  });
});

describe('DenseNet on the JS kernels', () => denseSuite(jsKernels));

if (native) {
  const nk: Kernels = native;
  describe('DenseNet on the native kernels', () => {
    denseSuite(nk);

    it('native and JS gradients agree to float32 rounding', () => {
      for (const [spec, seed] of [
        [deepNet, 1700],
        [hiddenMse, 1800],
      ] as const) {
        const c = makeCase(spec, 10, seed);
        const a = new DenseNet(spec, jsKernels);
        const b = new DenseNet(spec, nk);
        const ga = new Float32Array(a.numParams);
        const gb = new Float32Array(b.numParams);
        const ra = a.gradient(c.w, c.x, c.y, c.m, ga);
        const rb = b.gradient(c.w, c.x, c.y, c.m, gb);
        assert.ok(Math.abs(ra.loss - rb.loss) <= 1e-5 * Math.abs(ra.loss));
        assert.equal(ra.correct, rb.correct);
        for (let i = 0; i < ga.length; i++)
          assert.ok(Math.abs(ga[i] - gb[i]) <= 1e-6 + 1e-5 * Math.abs(ga[i]), `parameter ${i}: ${ga[i]} vs ${gb[i]}`);
      }
    });
  });
} else {
  it('DenseNet on the native kernels', { skip: nativeSkip }, () => {});
}
