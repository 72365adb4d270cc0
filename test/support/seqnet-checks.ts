/**
 * Shared by the SeqNet tests (seqnet, sequence-layers, vision-layers): the kernels they run on, the engine's
 * gradient against central differences of a float64 reference, tfjs's gradient of the same model, and the
 * tfjs Keras format both ways (our saved model in stock tfjs; a stock tfjs model trained on the engine).
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { AddressInfo } from 'node:net';
import * as stockTf from '@tensorflow/tfjs';
import type { Kernels } from '../../src/nn/kernels.js';
import { jsKernels } from '../../src/nn/kernels-js.js';
import { loadWasmKernelsNode } from '../../src/nn/kernels-wasm-node.js';
import { seqTensorSpecs, seqUnsupportedReason, type SeqNet, type SeqNetSpec } from '../../src/nn/seqnet.js';
import type { ModelSpec } from '../../src/model/spec.js';
import { buildTfjsModel, ensureTfjs, saveTfjsModel, specFromModelJson, tf } from '../../src/model/tfjs.js';
import { makeTrainer } from '../../src/model/make-trainer.js';
import type { Dataset } from '../../src/data/types.js';
import { native, prng, rand } from './kernels.js';

/** The WASM kernels when built, else null. */
export const wasm = await loadWasmKernelsNode();
/** The kernels the engine runs on in these tests: JS always, native and WASM when built. */
export const KERNELS: [string, Kernels][] = [['js', jsKernels]];
if (native) KERNELS.push(['native', native]);
if (wasm) KERNELS.push(['wasm', wasm]);

export const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** A network with weights and a batch of m examples. */
export interface Case {
  spec: SeqNetSpec;
  w: Float32Array;
  x: Float32Array;
  y: Int32Array | Float32Array;
  m: number;
}

/**
 * Random weights (in [-0.8, 0.8]) and a batch of m random examples: inputs in [-1, 1], or integer indices
 * below `vocab` when the net starts with an embedding; class labels, or targets in [-1, 1] for mse.
 */
export function randomCase(spec: SeqNetSpec, m: number, seed: number, vocab = 0): Case {
  const r = prng(seed);
  const w = rand(
    seqTensorSpecs(spec).reduce((a, t) => a + prod(t.shape), 0),
    r,
    -0.8,
    0.8,
  );
  const x =
    vocab > 0
      ? Float32Array.from({ length: m * prod(spec.inputShape) }, () => Math.floor(r() * vocab))
      : rand(m * prod(spec.inputShape), r);
  const outN = (spec.layers[spec.layers.length - 1] as { units: number }).units;
  const y = spec.loss === 'mse' ? rand(m * outN, r) : Int32Array.from({ length: m }, () => Math.floor(r() * outN));
  return { spec, w, x, y, m };
}

/** A float64 reference's mean loss at weights w, and the kinks (ReLU signs, clip regions, pool argmaxes) it met. */
export type ReferenceLoss = (w: ArrayLike<number>) => { loss: number; pattern: number[] };

/**
 * The finite-difference step, |fd - g| <= abs + rel |g|, and the share of the trainable parameters whose
 * gradient must exceed 10 abs (so that a gradient of zeros cannot pass; 0 asks nothing).
 */
export interface GradientTolerance {
  eps: number;
  abs: number;
  rel: number;
  minNonZero: number;
}

/**
 * The engine's gradient g of the mean loss `loss` at c.w against central differences of the reference loss, for
 * every trainable parameter (those before stateStart) except those whose +-eps probe changes the kink pattern
 * (the loss has a kink there; at most 1 in 20 may); the non-trainable state must have a zero gradient. Returns
 * the worst error and how many parameters were skipped.
 */
export function checkAgainstFiniteDifferences(
  c: Case,
  g: Float32Array,
  loss: number,
  stateStart: number,
  reference: ReferenceLoss,
  tol: GradientTolerance,
  what: string,
): { worst: number; skipped: number } {
  const { eps, abs, rel } = tol;
  const base = reference(c.w);
  assert.ok(
    Math.abs(loss - base.loss) <= 1e-5 * Math.max(1, base.loss),
    `${what}: loss ${loss} vs reference ${base.loss}`,
  );
  const names = seqTensorSpecs(c.spec).flatMap((t) =>
    Array.from({ length: prod(t.shape) }, (_, i) => `${t.name}[${i}]`),
  );
  assert.equal(names.length, g.length);
  for (let i = stateStart; i < g.length; i++) assert.equal(g[i], 0, `${names[i]} has a zero gradient`);
  const w = Float64Array.from(c.w);
  let worst = 0;
  let skipped = 0;
  let nonZero = 0;
  const samePattern = (p: number[]) => p.length === base.pattern.length && p.every((v, i) => v === base.pattern[i]);
  for (let i = 0; i < stateStart; i++) {
    const w0 = w[i];
    w[i] = w0 + eps;
    const up = reference(w);
    w[i] = w0 - eps;
    const down = reference(w);
    w[i] = w0;
    if (!samePattern(up.pattern) || !samePattern(down.pattern)) {
      skipped++;
      continue;
    }
    const fd = (up.loss - down.loss) / (2 * eps);
    const diff = Math.abs(fd - g[i]);
    worst = Math.max(worst, diff);
    if (Math.abs(g[i]) > 10 * abs) nonZero++;
    if (!(diff <= abs + rel * Math.abs(g[i]))) {
      assert.fail(
        `${what}: d loss / d ${names[i]} is ${g[i]}, finite difference ${fd} (|diff| ${diff.toExponential(2)} > ${(abs + rel * Math.abs(g[i])).toExponential(2)})`,
      );
    }
  }
  assert.ok(skipped <= stateStart / 20, `${what}: ${skipped} of ${stateStart} parameters sit at a kink`);
  assert.ok(
    nonZero >= stateStart * tol.minNonZero,
    `${what}: only ${nonZero} of ${stateStart} gradients exceed ${10 * abs}`,
  );
  return { worst, skipped };
}

/** The spec's network as a tfjs model (tfjs-cpu), to compare with; weights are tfjs's until set. */
export function tfjsModelOf(spec: SeqNetSpec): Promise<tf.LayersModel> {
  return buildTfjsModel({
    ...spec,
    name: 'n',
    optimizer: { name: 'sgd', lr: 0.1 },
    layers: [...spec.layers],
  } as ModelSpec);
}

/** Asserts that tfjs lays out each net's weights as seqTensorSpecs does: names, shapes, order (trainable, then state). */
export async function assertTfjsWeightLayout(nets: readonly (readonly [string, SeqNetSpec, ...unknown[]])[]) {
  await ensureTfjs();
  for (const [what, spec] of nets) {
    const model = await tfjsModelOf(spec);
    try {
      const theirs = model.weights.map((w) => ({ name: w.originalName, shape: w.shape }));
      assert.deepEqual(seqTensorSpecs(spec), theirs, what);
    } finally {
      model.dispose();
    }
  }
}

/** max |engine - tfjs| over the predictions for c's batch; model must hold c.w. */
export function tfjsPredictionDiff(model: tf.LayersModel, net: SeqNet, c: Case): number {
  const ours = net.predict(c.w, c.x, c.m);
  const theirs = tf.tidy(() => (model.predict(tf.tensor(c.x, [c.m, ...c.spec.inputShape])) as tf.Tensor).dataSync());
  return maxAbsDiff(ours, theirs);
}

/**
 * tfjs's gradient of the mean loss (training mode) of the spec's model with its weights, flat in tfjs order:
 * the trainable weights, then zeros for the non-trainable state.
 */
export function tfjsGradient(model: tf.LayersModel, spec: SeqNetSpec, c: Case): Float32Array {
  return tf.tidy(() => {
    const x = tf.tensor(c.x, [c.m, ...spec.inputShape]);
    const outN = (spec.layers[spec.layers.length - 1] as { units: number }).units;
    const vars = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
    const { grads } = tf.variableGrads(() => {
      const out = model.apply(x, { training: true }) as tf.Tensor;
      if (spec.loss === 'mse') return tf.mean(tf.square(tf.sub(out, tf.tensor(c.y, [c.m, outN])))) as tf.Scalar;
      const picked = tf.sum(tf.mul(out, tf.oneHot(tf.tensor1d(c.y as Int32Array, 'int32'), outN)), 1);
      return tf.neg(tf.mean(tf.log(picked))) as tf.Scalar;
    }, vars);
    const flat = new Float32Array(model.weights.reduce((a, w) => a + prod(w.shape as number[]), 0));
    let o = 0;
    for (const v of vars) {
      const p = grads[v.name].dataSync() as Float32Array;
      flat.set(p, o);
      o += p.length;
    }
    return flat;
  });
}

/** Serves the files of dir (by base name) on a free loopback port, as tfjs's loadLayersModel reads them. */
export async function serve(dir: string): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const file = join(dir, basename(new URL(req.url ?? '/', 'http://x').pathname));
    if (!existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200).end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/**
 * Saves the engine's model (spec, weights w) in the tfjs Keras format into dir, loads it in stock tfjs over
 * HTTP and returns stock tfjs's predictions for the n examples in x; asserts that the saved model reads back
 * as the same spec and weights.
 */
export async function stockPredictionsOfSaved(
  spec: ModelSpec,
  w: Float32Array,
  dir: string,
  x: Float32Array,
  n: number,
): Promise<Float32Array> {
  await saveTfjsModel(spec, w, dir);
  const server = await serve(dir);
  let model: stockTf.LayersModel | null = null;
  let theirs: Float32Array;
  try {
    model = await stockTf.loadLayersModel(`${server.url}/model.json`);
    const stock = model;
    theirs = stockTf.tidy(
      () => (stock.predict(stockTf.tensor(x, [n, ...spec.inputShape])) as stockTf.Tensor).dataSync() as Float32Array,
    );
  } finally {
    model?.dispose();
    await server.close();
  }
  // and it comes back as the same engine spec
  const { spec: back, weights } = await specFromModelJson(join(dir, 'model.json'));
  assert.deepEqual(back.layers, spec.layers);
  assert.deepEqual(weights, w);
  return theirs;
}

/**
 * A user's stock tfjs model, saved as model.json and w.bin into dir, read as an engine spec (with the layer
 * types expected), predicts on the engine what it predicts in stock tfjs and trains there (2 epochs of the
 * 64 examples in data, batches of 16).
 */
export async function checkStockModelOnEngine(
  user: stockTf.Sequential,
  dir: string,
  layerTypes: string[],
  data: Dataset,
): Promise<void> {
  await user.save(
    stockTf.io.withSaveHandler(async (a) => {
      writeFileSync(join(dir, 'w.bin'), Buffer.from(a.weightData as ArrayBuffer));
      writeFileSync(
        join(dir, 'model.json'),
        JSON.stringify({
          modelTopology: a.modelTopology,
          format: 'layers-model',
          weightsManifest: [{ paths: ['./w.bin'], weights: a.weightSpecs }],
        }),
      );
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  const { spec, weights } = await specFromModelJson(join(dir, 'model.json'));
  assert.equal(seqUnsupportedReason(spec), null);
  assert.deepEqual(
    spec.layers.map((l) => l.type),
    layerTypes,
  );
  assert.equal(data.n, 64);
  const tr = await makeTrainer(spec);
  try {
    assert.equal(tr.kind, 'engine');
    const ours = await tr.predict(weights!, data.x, data.n);
    const theirs = stockTf.tidy(() =>
      (user.predict(stockTf.tensor(data.x, [data.n, ...data.featureShape])) as stockTf.Tensor).dataSync(),
    );
    assert.ok(maxAbsDiff(ours, theirs) <= 1e-5, 'the engine predicts what the user model predicts');
    const res = await tr.train(weights!, data, {
      epochs: 2,
      batchSize: 16,
      optimizer: { name: 'adam', lr: 0.01 },
      proxMu: 0,
      seed: 1,
    });
    assert.equal(res.steps, 8);
    assert.ok(Number.isFinite(res.metrics.loss));
    assert.ok(maxAbsDiff(res.weights, weights!) > 1e-4, 'training moved the weights');
  } finally {
    tr.dispose();
  }
}
