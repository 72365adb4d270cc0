// Data-parallel training (ParallelEngineTrainer): k threads give the same bits every run, gradients within float
// rounding of one thread's and of a naive per-example reference, the same accuracy after an epoch; models it
// cannot split are refused with the reason; workers stop on dispose and never keep a process alive.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadMnist } from '../data/mnist.js';
import type { Dataset } from '../data/types.js';
import { firstRows } from '../../test/support/first-rows.js';
import { Rng } from '../core/rng.js';
import { getKernels } from '../nn/kernels-select.js';
import { jsKernels } from '../nn/kernels-js.js';
import { loadWasmKernelsNode } from '../nn/kernels-wasm-node.js';
import { builtinModel, initialWeights, tensorSpecs, type ModelSpec } from './spec.js';
import { EngineTrainer } from './engine-trainer.js';
import { ParallelEngineTrainer, parallelUnsupportedReason } from './parallel-trainer.js';
import { chooseThreadSplit, makeNodeTrainer, setNodeTrainingThreads } from './parallel-choice.js';
import { TeamEngineTrainer } from './team-trainer.js';
import { partRows } from './parallel-protocol.js';
import type { TrainConfig } from './trainer.js';

const kernels = getKernels();
const mlp = builtinModel('mlp', [28, 28, 1], 10);
const twoNN = builtinModel('2nn', [28, 28, 1], 10);
const cnn = builtinModel('cnn', [28, 28, 1], 10);

let train: Dataset;
let test: Dataset;
const open: ParallelEngineTrainer[] = [];

before(() => {
  const d = loadMnist();
  train = firstRows(d.train, 600, 'mnist:train[0:600]');
  test = firstRows(d.test, 500, 'mnist:test[0:500]');
});

after(async () => {
  for (const t of open) t.dispose();
  await Promise.all(open.map((t) => t.stopped()));
});

async function parallel(spec: ModelSpec, threads: number, k = kernels): Promise<ParallelEngineTrainer> {
  const t = await ParallelEngineTrainer.create(spec, k, threads);
  open.push(t);
  return t;
}

const start = (spec: ModelSpec) => initialWeights(tensorSpecs(spec), new Rng(3));
const cfg = (spec: ModelSpec, batchSize: number): TrainConfig => ({
  epochs: 1,
  batchSize,
  optimizer: spec.optimizer,
  proxMu: 0,
  seed: 5,
});
/**
 * Weights after an epoch on k threads vs one: the gradients differ by float rounding (1e-8), but a ReLU whose input
 * lies within rounding of zero can then flip for one example, which moves the weights it feeds by up to lr * x / B
 * (0.1 / 10 for the 2NN): measured 1.4e-3 on the 2NN test below, and one thread alone does the same when its start
 * weights are perturbed by 3e-8. So 1e-2, which still catches a wrong slice (a whole example's gradient missing or
 * counted twice moves weights by far more within an epoch).
 */
const EPOCH_TOL = 1e-2;
const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

/** The batch's mean gradient as the mean of one-example gradients, summed in float64 (no batch split at all). */
function naiveGradient(spec: ModelSpec, w: Float32Array, data: Dataset, m: number): Float64Array {
  const one = new EngineTrainer(spec, jsKernels);
  const f = data.x.length / data.n;
  const g = new Float32Array(w.length);
  const sum = new Float64Array(w.length);
  for (let r = 0; r < m; r++) {
    one.batchGradient(w, data.x.subarray(r * f, (r + 1) * f), data.y.subarray(r, r + 1), 1, g);
    for (let i = 0; i < g.length; i++) sum[i] += g[i] / m;
  }
  return sum;
}

/** One batch's gradient on a trainer, from buffers shared with its workers (as train() passes them). */
function batchOn(t: EngineTrainer, w: Float32Array, data: Dataset, m: number) {
  const f = data.x.length / data.n;
  const shared = <T extends Float32Array | Int32Array>(a: T): T => {
    const s = new (a.constructor as new (b: SharedArrayBuffer) => T)(new SharedArrayBuffer(a.byteLength));
    s.set(a as never);
    return s;
  };
  const g = new Float32Array(new SharedArrayBuffer(4 * w.length));
  const r = t.batchGradient(shared(w), shared(data.x.subarray(0, m * f)), shared(data.y.subarray(0, m)), m, g);
  return { g, ...r };
}

describe('ParallelEngineTrainer', () => {
  it('splits a batch into contiguous parts that cover it once', () => {
    for (const [m, parts] of [
      [32, 2],
      [10, 3],
      [7, 7],
      [33, 4],
    ]) {
      let next = 0;
      for (let j = 0; j < parts; j++) {
        const [lo, hi] = partRows(m, parts, j);
        assert.equal(lo, next);
        assert.ok(hi > lo, `part ${j} of ${m} rows in ${parts} is empty`);
        next = hi;
      }
      assert.equal(next, m);
    }
  });

  for (const [spec, m] of [
    [mlp, 32],
    [twoNN, 10],
    [cnn, 8],
  ] as const) {
    it(`${spec.name}: a batch of ${m} on 2 and 3 threads has one thread's gradient, loss and count`, async () => {
      const w = start(spec);
      const one = batchOn(new EngineTrainer(spec, kernels), w, train, m);
      const naive = naiveGradient(spec, w, train, m);
      for (const threads of [2, 3]) {
        const t = await parallel(spec, threads);
        const k = batchOn(t, w, train, m);
        // Float32 rounding of the same sums in another grouping: gradients are O(1e-2..1), rounding O(1e-7).
        assert.ok(maxAbsDiff(k.g, one.g) < 1e-5, `vs 1 thread: ${maxAbsDiff(k.g, one.g)}`);
        let vsNaive = 0;
        for (let i = 0; i < naive.length; i++) vsNaive = Math.max(vsNaive, Math.abs(k.g[i] - naive[i]));
        assert.ok(vsNaive < 1e-5, `vs the per-example reference: ${vsNaive}`);
        assert.ok(Math.abs(k.loss - one.loss) < 1e-4 * m, `loss ${k.loss} vs ${one.loss}`);
        assert.equal(k.correct, one.correct);
        const again = batchOn(t, w, train, m);
        assert.deepEqual(again.g, k.g, 'the same batch again gives the same bits');
      }
    });
  }

  it('mlp: an epoch on 2 threads gives the same bits twice, and one thread`s accuracy within 1%', async () => {
    const w0 = start(mlp);
    const t = await parallel(mlp, 2);
    const a = await t.train(w0, train, cfg(mlp, 32));
    const b = await t.train(w0, train, cfg(mlp, 32));
    const fresh = await parallel(mlp, 2);
    const c = await fresh.train(w0, train, cfg(mlp, 32));
    assert.deepEqual(a.weights, b.weights);
    assert.deepEqual(a.weights, c.weights, 'a new trainer with the same threads gives the same bits');
    const one = new EngineTrainer(mlp, kernels);
    const r1 = await one.train(w0, train, cfg(mlp, 32));
    assert.equal(a.steps, r1.steps);
    assert.ok(maxAbsDiff(a.weights, r1.weights) < EPOCH_TOL, `weights differ by ${maxAbsDiff(a.weights, r1.weights)}`);
    const acc1 = (await one.evaluate(r1.weights, test)).accuracy;
    const accK = (await t.evaluate(a.weights, test)).accuracy;
    assert.ok(acc1 > 0.6, `one epoch learns (accuracy ${acc1})`);
    assert.ok(Math.abs(acc1 - accK) <= 0.01, `accuracy ${acc1} on 1 thread, ${accK} on 2`);
  });

  it('2nn: an epoch of B=10 with a ragged last batch on 3 threads matches one thread', async () => {
    const data = firstRows(train, 205, 'mnist:train[0:205]'); // 20 batches of 10 and one of 5
    const w0 = start(twoNN);
    const t = await parallel(twoNN, 3);
    const a = await t.train(w0, data, cfg(twoNN, 10));
    const b = await t.train(w0, data, cfg(twoNN, 10));
    const r1 = await new EngineTrainer(twoNN, kernels).train(w0, data, cfg(twoNN, 10));
    assert.deepEqual(a.weights, b.weights);
    assert.ok(maxAbsDiff(a.weights, r1.weights) < EPOCH_TOL, `weights differ by ${maxAbsDiff(a.weights, r1.weights)}`);
    assert.ok(Math.abs(a.metrics.loss - r1.metrics.loss) < 1e-3, `loss ${a.metrics.loss} vs ${r1.metrics.loss}`);
    assert.ok(Math.abs(a.metrics.accuracy - r1.metrics.accuracy) <= 0.01);
  });

  it('refuses dropout, BatchNormalization, wasm kernels and bad thread counts, saying why', async () => {
    const dropout: ModelSpec = {
      ...mlp,
      name: 'mlp-dropout',
      layers: [mlp.layers[0], mlp.layers[1], { type: 'dropout', name: 'drop', rate: 0.2 }, mlp.layers[2]],
    };
    const mobilenet = builtinModel('mobilenet', [28, 28, 1], 10);
    assert.match(parallelUnsupportedReason(dropout, kernels) ?? '', /dropout layer 'drop'/);
    assert.match(parallelUnsupportedReason(mobilenet, kernels) ?? '', /BatchNormalization layer/);
    assert.equal(parallelUnsupportedReason(mlp, kernels), null);
    await assert.rejects(ParallelEngineTrainer.create(dropout, kernels, 2), /cannot train this model on 2 threads/);
    await assert.rejects(ParallelEngineTrainer.create(mlp, kernels, 1), /2 to 256 threads, got 1/);
    await assert.rejects(ParallelEngineTrainer.create(mlp, kernels, 2.5), /2 to 256 threads/);
    const wasm = await loadWasmKernelsNode();
    if (wasm) assert.match(parallelUnsupportedReason(mlp, wasm) ?? '', /unshared wasm memory/);
    // What a node does instead: OpenBLAS threads where the kernels are native, else one thread.
    const native = kernels.name === 'native-openblas';
    assert.equal(chooseThreadSplit(mobilenet, kernels, 2).split, native ? 'blas' : 'one');
    assert.equal(chooseThreadSplit(cnn, kernels, 2).split, 'batches');
    // Dense-only models share each step over a native team (their steps are too short for JS threads); a dense
    // model with dropout is not dense-only (it runs on SeqNet) and keeps one thread.
    assert.equal(chooseThreadSplit(dropout, kernels, 2).split, 'one');
    assert.equal(chooseThreadSplit(mlp, kernels, 2).split, native ? 'layers' : 'one');
    assert.equal(chooseThreadSplit(mlp, kernels, 1).split, 'one');
    assert.equal(chooseThreadSplit(mlp, null, 4).split, 'one');
    assert.throws(() => setNodeTrainingThreads(0), /whole number from 1 to 1024, got 0/);
  });

  it('a node on one thread trains on EngineTrainer itself; on 2, the CNN on the batch split, the MLP on a team', async () => {
    const one = await makeNodeTrainer(mlp);
    assert.ok(one instanceof EngineTrainer && !(one instanceof ParallelEngineTrainer));
    setNodeTrainingThreads(2);
    try {
      const two = await makeNodeTrainer(cnn);
      assert.ok(two instanceof ParallelEngineTrainer);
      open.push(two);
      const dense = await makeNodeTrainer(mlp);
      const native = kernels.name === 'native-openblas';
      assert.ok(native ? dense instanceof TeamEngineTrainer : !(dense instanceof ParallelEngineTrainer));
      dense.dispose();
    } finally {
      setNodeTrainingThreads(1);
    }
  });

  it('dispose stops the workers; a disposed trainer says so rather than hang', async () => {
    const t = await ParallelEngineTrainer.create(mlp, kernels, 3);
    t.dispose();
    await t.stopped();
    const w = start(mlp);
    await assert.rejects(t.train(w, firstRows(train, 64, 'mnist:train[0:64]'), cfg(mlp, 32)), /disposed/);
  });

  it('workers never keep a process alive, and SIGTERM mid-training exits at once', () => {
    const child = fileURLToPath(new URL('../../test/support/parallel-train-child.ts', import.meta.url));
    // Trains, never disposes, and returns: the process must end by itself.
    const ended = spawnSync(process.execPath, ['--import', 'tsx', child, 'return'], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(ended.status, 0, ended.stderr);
    assert.match(ended.stdout, /trained/);
    // Trains in a loop; its SIGTERM handler exits as `edgefed node`'s does.
    const killed = spawnSync(process.execPath, ['--import', 'tsx', child, 'sigterm'], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(killed.status, 0, `exit ${killed.status} signal ${killed.signal}: ${killed.stderr}`);
    assert.match(killed.stdout, /stopping/);
  });
});
