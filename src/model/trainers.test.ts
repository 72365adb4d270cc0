// The two LocalTrainers against each other: the dense engine (EngineTrainer) and stock TensorFlow.js
// (TfjsTrainer) train the same model from the same weights on the same batches to the same weights,
// compute the same gradients, honour FedProx and maxSteps alike, and tfjs leaks no tensors.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadMnist } from '../data/mnist.js';
import { subset, type Dataset } from '../data/types.js';
import { firstRows } from '../../test/support/first-rows.js';
import { Rng } from '../core/rng.js';
import { getKernels } from '../nn/kernels-select.js';
import { loadWasmKernelsNode } from '../nn/kernels-wasm-node.js';
import type { OptimizerConfig } from '../nn/optimizer.js';
import {
  asDenseNet,
  builtinModel,
  engineUnsupportedReason,
  initialWeights,
  tensorSpecs,
  type ModelSpec,
} from './spec.js';
import { ensureTfjs, tf } from './tfjs.js';
import { EngineTrainer } from './engine-trainer.js';
import { TfjsTrainer } from './tfjs-trainer.js';
import { makeTrainer } from './make-trainer.js';
import type { LocalTrainer, TrainConfig } from './trainer.js';

const kernels = getKernels();
const mlp = builtinModel('mlp', [28, 28, 1], 10);

/**
 * Max |engine - tfjs| over the weights after 16 steps on 512 MNIST examples: observed about 1e-7 for
 * SGD and momentum (float32 rounding of the same sums in another order) and 3e-7..3e-6 for Adam. SGD is linear
 * in the gradient, so rounding stays rounding: 1e-5 (100x margin). Adam moves a weight by about lr
 * whatever its gradient's size, so a gradient at rounding level could flip a step: 1e-4 (30x margin)
 * is still 10x below one Adam step (1e-3) and far below what training moves (1e-2..1e-1).
 */
const WEIGHT_TOL = 1e-5;
const ADAM_TOL = 1e-4;
const tolFor = (optimizer: OptimizerConfig): number => (optimizer.name === 'adam' ? ADAM_TOL : WEIGHT_TOL);

let train: Dataset; // 512 examples
let small: Dataset; // its first 256
let test: Dataset;

before(async () => {
  await ensureTfjs();
  const d = loadMnist();
  train = firstRows(d.train, 512, 'mnist:train[0:512]');
  small = firstRows(train, 256, 'mnist:train[0:256]');
  test = firstRows(d.test, 500, 'mnist:test[0:500]');
});

function engineFor(spec: ModelSpec): EngineTrainer {
  const dense = asDenseNet(spec);
  assert.ok(dense, `${spec.name} is a dense model`);
  return new EngineTrainer(dense, kernels);
}

function start(spec: ModelSpec, seed = 7): Float32Array {
  return initialWeights(tensorSpecs(spec), new Rng(seed));
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

function dist(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s);
}

const cfg = (optimizer: OptimizerConfig, overrides: Partial<TrainConfig> = {}): TrainConfig => ({
  epochs: 1,
  batchSize: 32,
  optimizer,
  proxMu: 0,
  seed: 42,
  ...overrides,
});

async function withTfjs<T>(spec: ModelSpec, run: (t: TfjsTrainer) => Promise<T>): Promise<T> {
  const t = await TfjsTrainer.create(spec);
  try {
    return await run(t);
  } finally {
    t.dispose();
  }
}

describe('engine and tfjs train alike', () => {
  for (const optimizer of [
    { name: 'sgd', lr: 0.1 },
    { name: 'adam', lr: 0.001 },
    { name: 'momentum', lr: 0.05, momentum: 0.9 },
  ] as OptimizerConfig[]) {
    it(`mlp, 512 MNIST examples, batch 32, 1 epoch, ${optimizer.name} lr ${optimizer.lr}: same weights`, async (t) => {
      const w0 = start(mlp);
      const c = cfg(optimizer);
      const e = await engineFor(mlp).train(w0, train, c);
      const f = await withTfjs(mlp, (tr) => tr.train(w0, train, c));
      assert.equal(e.steps, 16);
      assert.equal(f.steps, 16);
      assert.equal(e.numExamples, 512);
      assert.equal(f.numExamples, 512);
      const diff = maxAbsDiff(e.weights, f.weights);
      const moved = maxAbsDiff(e.weights, w0);
      t.diagnostic(
        `max |engine - tfjs| = ${diff.toExponential(2)}; max |w - w0| = ${moved.toExponential(2)}; ` +
          `loss ${e.metrics.loss.toFixed(5)} / ${f.metrics.loss.toFixed(5)}, accuracy ${e.metrics.accuracy} / ${f.metrics.accuracy}`,
      );
      assert.ok(moved > 100 * tolFor(optimizer), `training moved the weights by only ${moved}`);
      assert.ok(diff <= tolFor(optimizer), `engine and tfjs weights differ by ${diff}`);
      assert.ok(
        Math.abs(e.metrics.loss - f.metrics.loss) <= 1e-5 * e.metrics.loss,
        `loss ${e.metrics.loss} vs ${f.metrics.loss}`,
      );
      assert.equal(e.metrics.accuracy, f.metrics.accuracy);
      // The engine learns: the trained model beats the start on held-out data.
      const eng = engineFor(mlp);
      assert.ok((await eng.evaluate(e.weights, test)).loss < (await eng.evaluate(w0, test)).loss);
    });
  }

  it('the shuffle depends on cfg.seed: another seed gives other weights, the same seed the same', async () => {
    const w0 = start(mlp);
    const eng = engineFor(mlp);
    const a = await eng.train(w0, train, cfg({ name: 'sgd', lr: 0.1 }));
    const b = await eng.train(w0, train, cfg({ name: 'sgd', lr: 0.1 }));
    const c = await eng.train(w0, train, cfg({ name: 'sgd', lr: 0.1 }, { seed: 43 }));
    assert.deepEqual(a.weights, b.weights);
    assert.ok(maxAbsDiff(a.weights, c.weights) > 100 * WEIGHT_TOL);
  });

  it('several epochs with a short last batch (200 examples, batch 64, 2 epochs)', async (t) => {
    const data = subset(
      train,
      Array.from({ length: 200 }, (_, i) => i),
    );
    const w0 = start(mlp, 8);
    const c = cfg({ name: 'sgd', lr: 0.1 }, { batchSize: 64, epochs: 2 });
    const e = await engineFor(mlp).train(w0, data, c);
    const f = await withTfjs(mlp, (tr) => tr.train(w0, data, c));
    assert.equal(e.steps, 8);
    assert.equal(f.steps, 8);
    const diff = maxAbsDiff(e.weights, f.weights);
    t.diagnostic(`max |engine - tfjs| = ${diff.toExponential(2)}`);
    assert.ok(diff <= WEIGHT_TOL);
  });
});

describe('FedProx', () => {
  const sgd: OptimizerConfig = { name: 'sgd', lr: 0.05 }; // lr * mu = 0.5 < 2 keeps the proximal pull stable

  it('a large mu keeps the weights closer to the global model, for both trainers; they agree with mu > 0', async (t) => {
    const w0 = start(mlp, 9);
    const eng = engineFor(mlp);
    const e0 = await eng.train(w0, small, cfg(sgd));
    const e10 = await eng.train(w0, small, cfg(sgd, { proxMu: 10 }));
    const [f0, f10] = await withTfjs(mlp, async (tr) => [
      await tr.train(w0, small, cfg(sgd)),
      await tr.train(w0, small, cfg(sgd, { proxMu: 10 })),
    ]);
    const d = {
      e0: dist(e0.weights, w0),
      e10: dist(e10.weights, w0),
      f0: dist(f0.weights, w0),
      f10: dist(f10.weights, w0),
    };
    const diff = maxAbsDiff(e10.weights, f10.weights);
    t.diagnostic(
      `||w - w0||: engine mu=0 ${d.e0.toFixed(4)}, mu=10 ${d.e10.toFixed(4)}; tfjs mu=0 ${d.f0.toFixed(4)}, mu=10 ${d.f10.toFixed(4)}; ` +
        `max |engine - tfjs| at mu=10 ${diff.toExponential(2)}`,
    );
    assert.ok(d.e10 < 0.8 * d.e0, `engine: mu=10 moved ${d.e10}, mu=0 ${d.e0}`);
    assert.ok(d.f10 < 0.8 * d.f0, `tfjs: mu=10 moved ${d.f10}, mu=0 ${d.f0}`);
    assert.ok(diff <= WEIGHT_TOL, `engine and tfjs differ by ${diff} with mu = 10`);
  });

  it('engine and tfjs agree with a small mu and Adam as well', async (t) => {
    const w0 = start(mlp, 10);
    const c = cfg({ name: 'adam', lr: 0.001 }, { proxMu: 0.5 });
    const e = await engineFor(mlp).train(w0, small, c);
    const f = await withTfjs(mlp, (tr) => tr.train(w0, small, c));
    const diff = maxAbsDiff(e.weights, f.weights);
    t.diagnostic(`max |engine - tfjs| = ${diff.toExponential(2)}`);
    assert.ok(diff <= ADAM_TOL);
    assert.ok(
      Math.abs(e.metrics.loss - f.metrics.loss) <= 1e-5 * e.metrics.loss,
      'both report the data loss, without the proximal term',
    );
  });
});

describe('gradient()', () => {
  it('engine and tfjs full-data gradients agree, and equal the mean of equal-sized per-batch gradients', async (t) => {
    const data = subset(
      train,
      Array.from({ length: 192 }, (_, i) => i),
    );
    const w0 = start(mlp, 11);
    const eng = engineFor(mlp);
    const e = await eng.gradient(w0, data, 64);
    const f = await withTfjs(mlp, (tr) => tr.gradient(w0, data, 64));
    assert.equal(e.numExamples, 192);
    const scale = maxAbsDiff(e.gradient, new Float32Array(e.gradient.length));
    const diff = maxAbsDiff(e.gradient, f.gradient);
    t.diagnostic(`max |g| ${scale.toExponential(2)}, max |engine - tfjs| ${diff.toExponential(2)}`);
    assert.ok(scale > 1e-2);
    assert.ok(diff <= 1e-5 + 1e-4 * scale, `engine and tfjs gradients differ by ${diff}`);
    assert.ok(Math.abs(e.metrics.loss - f.metrics.loss) <= 1e-5 * e.metrics.loss);
    assert.equal(e.metrics.accuracy, f.metrics.accuracy);

    const mean = new Float64Array(e.gradient.length);
    for (let b = 0; b < 3; b++) {
      const part = subset(
        data,
        Array.from({ length: 64 }, (_, i) => b * 64 + i),
      );
      const g = (await eng.gradient(w0, part, 64)).gradient;
      for (let i = 0; i < g.length; i++) mean[i] += g[i] / 3;
    }
    const meanDiff = maxAbsDiff(e.gradient, Float32Array.from(mean));
    assert.ok(meanDiff <= 1e-6 * Math.max(1, scale), `gradient vs mean of batch gradients: ${meanDiff}`);
  });

  it("does not depend on the batch size (uneven last batch), and its loss is evaluate()'s", async () => {
    const data = subset(
      train,
      Array.from({ length: 150 }, (_, i) => i),
    );
    const w0 = start(mlp, 12);
    for (const trainer of [engineFor(mlp), await TfjsTrainer.create(mlp)] as LocalTrainer[]) {
      try {
        const whole = await trainer.gradient(w0, data, 150);
        const pieces = await trainer.gradient(w0, data, 64);
        const d = maxAbsDiff(whole.gradient, pieces.gradient);
        assert.ok(d <= 1e-6, `${trainer.kind}: batch size changes the gradient by ${d}`);
        const ev = await trainer.evaluate(w0, data);
        assert.ok(
          Math.abs(whole.metrics.loss - ev.loss) <= 1e-5 * ev.loss,
          `${trainer.kind}: ${whole.metrics.loss} vs ${ev.loss}`,
        );
        assert.equal(whole.metrics.accuracy, ev.accuracy);
      } finally {
        trainer.dispose();
      }
    }
  });

  it('a training step with SGD is w - lr * the batch gradient', async () => {
    const data = subset(
      train,
      Array.from({ length: 32 }, (_, i) => i),
    );
    const w0 = start(mlp, 13);
    const eng = engineFor(mlp);
    const g = (await eng.gradient(w0, data, 32)).gradient;
    const stepped = (await eng.train(w0, data, cfg({ name: 'sgd', lr: 0.1 }))).weights;
    const want = w0.map((w, i) => w - 0.1 * g[i]);
    assert.ok(maxAbsDiff(stepped, want) <= 1e-6, 'one full-batch step (shuffled order) is one gradient step');
  });

  it('plain SGD (its step folded into the backward pass) trains as a separate gradient and step do', async () => {
    // Momentum 0 takes the separate path (gradient buffer, then the optimizer), as FedProx and SCAFFOLD do.
    const data = train;
    const w0 = start(mlp, 14);
    const eng = engineFor(mlp);
    const fused = (await eng.train(w0, data, cfg({ name: 'sgd', lr: 0.1 }))).weights;
    const apart = (await eng.train(w0, data, cfg({ name: 'momentum', lr: 0.1, momentum: 0 }))).weights;
    const viaProx = (await eng.train(w0, data, { ...cfg({ name: 'sgd', lr: 0.1 }), proxMu: 1e-30 })).weights;
    assert.ok(maxAbsDiff(fused, apart) <= WEIGHT_TOL, `max |diff| ${maxAbsDiff(fused, apart)}`);
    assert.ok(maxAbsDiff(fused, viaProx) <= WEIGHT_TOL, `max |diff| ${maxAbsDiff(fused, viaProx)}`);
    assert.ok(maxAbsDiff(fused, w0) > 100 * WEIGHT_TOL, 'training moved the weights');
  });
});

describe('evaluate() and predict()', () => {
  it('engine and tfjs agree on 500 test images', async () => {
    const w0 = start(mlp, 14);
    const eng = engineFor(mlp);
    const w = (await eng.train(w0, train, cfg({ name: 'adam', lr: 0.001 }))).weights;
    const e = await eng.evaluate(w, test);
    const [f, pf] = await withTfjs(
      mlp,
      async (tr) => [await tr.evaluate(w, test), await tr.predict(w, test.x, test.n)] as const,
    );
    const pe = await eng.predict(w, test.x, test.n);
    assert.ok(Math.abs(e.loss - f.loss) <= 1e-5 * e.loss, `loss ${e.loss} vs ${f.loss}`);
    assert.equal(e.accuracy, f.accuracy);
    assert.ok(maxAbsDiff(pe, pf) <= 1e-5);
  });
});

describe('tfjs memory', () => {
  it('a round (train with Adam and FedProx, evaluate, gradient, predict) leaks no tensors', async () => {
    const data = subset(
      train,
      Array.from({ length: 64 }, (_, i) => i),
    );
    const w0 = start(mlp, 15);
    const beforeCreate = tf.memory().numTensors;
    const tr = await TfjsTrainer.create(mlp);
    const afterCreate = tf.memory().numTensors;
    assert.ok(afterCreate > beforeCreate, 'the model holds its variables');
    for (let round = 0; round < 2; round++) {
      await tr.train(w0, data, cfg({ name: 'adam', lr: 0.001 }, { proxMu: 0.1 }));
      await tr.train(w0, data, cfg({ name: 'momentum', lr: 0.01 }));
      await tr.evaluate(w0, data);
      await tr.gradient(w0, data, 32);
      await tr.predict(w0, data.x, data.n);
      assert.equal(tf.memory().numTensors, afterCreate, `tensors after round ${round}`);
    }
    tr.dispose();
    assert.equal(tf.memory().numTensors, beforeCreate, 'tensors after dispose');
  });
});

describe('models tfjs trains', () => {
  it('the cnn (28x28x1 MNIST) trains two steps on tfjs with a finite loss', async () => {
    const cnn = builtinModel('cnn', [28, 28, 1], 10);
    const data = subset(
      train,
      Array.from({ length: 64 }, (_, i) => i),
    );
    const w0 = start(cnn, 16);
    const tr = await makeTrainer(cnn, 'tfjs');
    try {
      assert.equal(tr.kind, 'tfjs');
      const r = await tr.train(w0, data, cfg({ name: 'sgd', lr: 0.05 }));
      assert.equal(r.steps, 2);
      assert.equal(r.weights.length, w0.length);
      assert.ok(Number.isFinite(r.metrics.loss) && r.metrics.loss > 0, `loss ${r.metrics.loss}`);
      assert.ok(r.weights.every(Number.isFinite));
      assert.ok(maxAbsDiff(r.weights, w0) > 1e-4, 'the weights moved');
      assert.ok(r.metrics.accuracy >= 0 && r.metrics.accuracy <= 1);
    } finally {
      tr.dispose();
    }
  });

  it('makeTrainer picks the engine for cnn, mlp, 2nn and linear, and tfjs for layers the engine does not run', async () => {
    for (const name of ['cnn', 'mlp', '2nn', 'linear'] as const) {
      for (const classes of [10, 0]) {
        const tr = await makeTrainer(builtinModel(name, [28, 28, 1], classes));
        assert.equal(tr.kind, 'engine', `${name} with ${classes} classes`);
        tr.dispose();
      }
    }
    const forced = await makeTrainer(mlp, 'tfjs');
    assert.equal(forced.kind, 'tfjs');
    forced.dispose();
    // specFromModelJson marks a layer only tfjs runs (here a BatchNormalization) as a dropout of rate NaN
    const bn: ModelSpec = {
      ...mlp,
      name: 'with-bn',
      layers: [
        mlp.layers[0],
        mlp.layers[1],
        { type: 'dropout', name: 'bn:BatchNormalization', rate: NaN },
        mlp.layers[2],
      ],
    };
    await assert.rejects(
      makeTrainer(bn, 'engine'),
      /dense engine cannot train model with-bn \(dropout layer 'bn:BatchNormalization' has rate NaN/,
    );
    assert.notEqual(engineUnsupportedReason(bn), null); // so 'auto' builds it on tfjs (from its topology, for a real file)
    const cnnTfjs = await makeTrainer(builtinModel('cnn', [28, 28, 1], 10), 'tfjs');
    assert.equal(cnnTfjs.kind, 'tfjs');
    cnnTfjs.dispose();
  });

  it('linear regression (mse) trains alike on engine and tfjs', async (t) => {
    const reg = builtinModel('linear', [28, 28, 1], 0);
    const data: Dataset = { ...train, numClasses: 0, y: Float32Array.from(train.y, (v) => v / 9) };
    const w0 = start(reg, 17);
    const c = cfg({ name: 'sgd', lr: 0.01 });
    const e = await engineFor(reg).train(w0, data, c);
    const f = await withTfjs(reg, (tr) => tr.train(w0, data, c));
    const diff = maxAbsDiff(e.weights, f.weights);
    t.diagnostic(
      `max |engine - tfjs| = ${diff.toExponential(2)}, loss ${e.metrics.loss.toFixed(5)} / ${f.metrics.loss.toFixed(5)}`,
    );
    assert.ok(diff <= WEIGHT_TOL);
    assert.ok(Math.abs(e.metrics.loss - f.metrics.loss) <= 1e-3 * e.metrics.loss);
  });
});

describe('maxSteps', () => {
  it('caps the steps of both trainers, across epochs, and the capped run is a prefix of the full one', async () => {
    const w0 = start(mlp, 18);
    const eng = engineFor(mlp);
    const base = cfg({ name: 'sgd', lr: 0.1 }, { epochs: 3 }); // 256 examples: 8 steps an epoch
    assert.equal((await eng.train(w0, small, base)).steps, 24);
    const e5 = await eng.train(w0, small, { ...base, maxSteps: 5 });
    const e12 = await eng.train(w0, small, { ...base, maxSteps: 12 }); // stops inside the second epoch
    const e100 = await eng.train(w0, small, { ...base, maxSteps: 100 });
    assert.equal(e5.steps, 5);
    assert.equal(e12.steps, 12);
    assert.equal(e100.steps, 24);
    const short = await eng.train(w0, small, { ...base, epochs: 1, maxSteps: 5 });
    assert.deepEqual(short.weights, e5.weights, 'the first 5 steps do not depend on the epoch count');
    const [f5, f12] = await withTfjs(mlp, async (tr) => [
      await tr.train(w0, small, { ...base, maxSteps: 5 }),
      await tr.train(w0, small, { ...base, maxSteps: 12 }),
    ]);
    assert.equal(f5.steps, 5);
    assert.equal(f12.steps, 12);
    assert.ok(maxAbsDiff(e5.weights, f5.weights) <= WEIGHT_TOL);
    assert.ok(maxAbsDiff(e12.weights, f12.weights) <= WEIGHT_TOL);
    assert.ok(maxAbsDiff(e5.weights, e12.weights) > 100 * WEIGHT_TOL);
  });

  it('bad training configs and gradient batch sizes are rejected by both trainers', async () => {
    const w0 = start(mlp);
    const eng = engineFor(mlp);
    await withTfjs(mlp, async (tr) => {
      for (const trainer of [eng, tr] as LocalTrainer[]) {
        await assert.rejects(trainer.train(w0, train, { ...cfg({ name: 'sgd', lr: 0.1 }), maxSteps: 0 }), /max steps/);
        await assert.rejects(
          trainer.train(w0, train, { ...cfg({ name: 'sgd', lr: 0.1 }), batchSize: 0 }),
          /batch size/,
        );
        await assert.rejects(trainer.train(w0, train, { ...cfg({ name: 'sgd', lr: 0.1 }), proxMu: -1 }), /FedProx mu/);
        await assert.rejects(trainer.train(w0.subarray(1), train, cfg({ name: 'sgd', lr: 0.1 })), /values/);
        await assert.rejects(trainer.gradient(w0, train, 0), /batch size must be a whole number >= 1, got 0/);
      }
    });
  });
});

const wasm = await loadWasmKernelsNode();

describe('engine on the wasm kernels (training in wasm memory)', {
  skip: wasm ? false : 'wasm kernels not built: node scripts/build-wasm.mjs',
}, () => {
  const wk = wasm!;
  for (const optimizer of [
    { name: 'sgd', lr: 0.1 },
    { name: 'adam', lr: 0.001 },
    { name: 'momentum', lr: 0.05, momentum: 0.9 },
  ] as OptimizerConfig[]) {
    it(`mlp, 512 MNIST examples, batch 32, ${optimizer.name}: same weights as tfjs; a second train() gives the same bits and allocates nothing`, async (t) => {
      const dense = asDenseNet(mlp)!;
      const eng = new EngineTrainer(dense, wk);
      const w0 = start(mlp);
      const c = cfg(optimizer);
      const e = await eng.train(w0, train, c);
      const f = await withTfjs(mlp, (tr) => tr.train(w0, train, c));
      const diff = maxAbsDiff(e.weights, f.weights);
      t.diagnostic(`max |engine(wasm) - tfjs| = ${diff.toExponential(2)}`);
      assert.ok(maxAbsDiff(e.weights, w0) > 100 * tolFor(optimizer));
      assert.ok(diff <= tolFor(optimizer), `engine (wasm) and tfjs weights differ by ${diff}`);
      assert.ok(Math.abs(e.metrics.loss - f.metrics.loss) <= 1e-5 * e.metrics.loss);
      assert.notEqual(e.weights.buffer, wk.memory.buffer, 'the returned weights are a copy outside wasm memory');
      // Buffers and optimizer state are reused and reset: the same call again gives the same bits, without
      // growing wasm memory (nothing is allocated per call).
      const bytes = wk.memory.buffer.byteLength;
      const again = await eng.train(w0, train, c);
      assert.deepEqual(again.weights, e.weights);
      assert.equal(wk.memory.buffer.byteLength, bytes);
    });
  }

  it('survives wasm memory growth between calls, a larger batch later, and a rejected call in between', async () => {
    const eng = new EngineTrainer(asDenseNet(mlp)!, wk);
    const w0 = start(mlp, 14);
    const first = await eng.train(w0, small, cfg({ name: 'adam', lr: 0.001 }, { batchSize: 16 }));
    const gen = wk.generation;
    wk.alloc(64 << 20); // grows the memory: every view the trainer and its net hold is detached
    assert.ok(wk.generation > gen);
    const again = await eng.train(w0, small, cfg({ name: 'adam', lr: 0.001 }, { batchSize: 16 }));
    assert.deepEqual(again.weights, first.weights);
    await assert.rejects(eng.train(w0.subarray(1), small, cfg({ name: 'adam', lr: 0.001 })), /weights have/);
    const bigger = await eng.train(w0, small, cfg({ name: 'adam', lr: 0.001 }, { batchSize: 128 }));
    const js = await new EngineTrainer(asDenseNet(mlp)!, getKernels('js')).train(
      w0,
      small,
      cfg({ name: 'adam', lr: 0.001 }, { batchSize: 128 }),
    );
    assert.ok(maxAbsDiff(bigger.weights, js.weights) <= ADAM_TOL);
    assert.deepEqual(
      (await eng.train(w0, small, cfg({ name: 'adam', lr: 0.001 }, { batchSize: 16 }))).weights,
      first.weights,
    );
  });
});

describe('conv nets on the engine (SeqNet) against tfjs', () => {
  const cnn = builtinModel('cnn', [28, 28, 1], 10);

  it('the McMahan cnn: 64 MNIST examples, batch 32, SGD lr 0.05, engine and tfjs train to the same weights and predict alike', async (t) => {
    const data = subset(
      train,
      Array.from({ length: 64 }, (_, i) => i),
    );
    const few = subset(
      test,
      Array.from({ length: 50 }, (_, i) => i),
    );
    const w0 = start(cnn, 19);
    const c = cfg({ name: 'sgd', lr: 0.05 });
    const eng = await makeTrainer(cnn);
    assert.equal(eng.kind, 'engine');
    const e0 = performance.now();
    const e = await eng.train(w0, data, c);
    const engineMs = performance.now() - e0;
    const t0 = performance.now();
    const [f, pf] = await withTfjs(cnn, async (tr) => {
      const r = await tr.train(w0, data, c);
      return [r, await tr.predict(r.weights, few.x, few.n)] as const;
    });
    const tfjsMs = performance.now() - t0;
    assert.equal(e.steps, 2);
    assert.equal(f.steps, 2);
    const diff = maxAbsDiff(e.weights, f.weights);
    const moved = maxAbsDiff(e.weights, w0);
    t.diagnostic(
      `max |engine - tfjs| = ${diff.toExponential(2)}; max |w - w0| = ${moved.toExponential(2)}; loss ${e.metrics.loss.toFixed(6)} / ${f.metrics.loss.toFixed(6)}`,
    );
    assert.ok(moved > 100 * WEIGHT_TOL, `training moved the weights by only ${moved}`);
    assert.ok(diff <= WEIGHT_TOL, `engine and tfjs weights differ by ${diff}`);
    assert.ok(Math.abs(e.metrics.loss - f.metrics.loss) <= 1e-5 * e.metrics.loss);
    assert.equal(e.metrics.accuracy, f.metrics.accuracy);
    // tfjs with the trained weights (predict loads them with setModelWeights) predicts as the engine does,
    // and the engine's test loss is the cross-entropy of those predictions
    const pe = await eng.predict(f.weights, few.x, few.n);
    const pdiff = maxAbsDiff(pe, pf);
    const ee = await eng.evaluate(f.weights, few);
    let tfjsLoss = 0;
    for (let i = 0; i < few.n; i++) tfjsLoss -= Math.log(Math.max(pf[i * 10 + few.y[i]], 1e-7)) / few.n;
    t.diagnostic(
      `predictions on ${few.n} test images: max |engine - tfjs| = ${pdiff.toExponential(2)}; test loss ${ee.loss.toFixed(6)} / ${tfjsLoss.toFixed(6)}; ` +
        `train 2 steps: engine ${engineMs.toFixed(0)} ms, tfjs (with its predict) ${tfjsMs.toFixed(0)} ms`,
    );
    assert.ok(pdiff <= 1e-5);
    assert.ok(Math.abs(ee.loss - tfjsLoss) <= 1e-5 * tfjsLoss);
    eng.dispose();
  });

  it("a conv net with dropout trains on the engine: deterministic per seed, and the full-data gradient is tfjs's (dropout off)", async (t) => {
    const spec: ModelSpec = {
      name: 'conv-dropout',
      inputShape: [28, 28, 1],
      loss: 'sparse_categorical_crossentropy',
      optimizer: { name: 'sgd', lr: 0.1 },
      layers: [
        { type: 'conv2d', name: 'conv1', filters: 4, kernelSize: 5, activation: 'relu', padding: 'same' },
        { type: 'maxpool2d', name: 'pool1', poolSize: 2 },
        { type: 'dropout', name: 'drop1', rate: 0.25 },
        { type: 'flatten', name: 'flatten' },
        { type: 'dense', name: 'dense1', units: 32, activation: 'relu' },
        { type: 'dropout', name: 'drop2', rate: 0.5 },
        { type: 'dense', name: 'output', units: 10, activation: 'softmax' },
      ],
    };
    const data = subset(
      train,
      Array.from({ length: 128 }, (_, i) => i),
    );
    const w0 = start(spec, 20);
    const eng = await makeTrainer(spec);
    assert.equal(eng.kind, 'engine');
    const a = await eng.train(w0, data, cfg({ name: 'sgd', lr: 0.1 }));
    const b = await eng.train(w0, data, cfg({ name: 'sgd', lr: 0.1 }));
    const c = await eng.train(w0, data, cfg({ name: 'sgd', lr: 0.1 }, { seed: 43 }));
    assert.deepEqual(a.weights, b.weights);
    assert.ok(maxAbsDiff(a.weights, c.weights) > 100 * WEIGHT_TOL);
    const ge = await eng.gradient(w0, data, 64);
    const gf = await withTfjs(spec, (tr) => tr.gradient(w0, data, 64));
    const scale = maxAbsDiff(ge.gradient, new Float32Array(ge.gradient.length));
    const diff = maxAbsDiff(ge.gradient, gf.gradient);
    t.diagnostic(`gradient: max |g| ${scale.toExponential(2)}, max |engine - tfjs| ${diff.toExponential(2)}`);
    assert.ok(diff <= 1e-5 + 1e-4 * scale);
    eng.dispose();
  });
});
