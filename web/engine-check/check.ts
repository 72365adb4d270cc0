/**
 * The engine check: trains the seed MLP (and the CNN, when the engine can run it) on an MNIST slice
 * through EngineTrainer with whatever kernels it is given, and measures it. BROWSER-SAFE: shared by the
 * page (main.ts, bundled by scripts/build-web.mjs) and the Node side of test/browser/engine.browser.test.ts,
 * so both run exactly the same code. It must import nothing from Node, tfjs, make-trainer.ts or
 * kernels-select.ts (build-web.mjs fails the build when the bundle reaches a node: module or tfjs).
 */
import { EngineTrainer } from '../../src/model/engine-trainer.js';
import { asDenseNet, builtinModel, initialWeights, tensorSpecs, type ModelSpec } from '../../src/model/spec.js';
import type { LocalTrainer } from '../../src/model/trainer.js';
import type { Kernels } from '../../src/nn/kernels.js';
import { Rng } from '../../src/core/rng.js';
import { featureSize, type Dataset } from '../../src/data/types.js';

import type { MnistSlice } from '../../src/data/slice.js';

export {
  SLICE_HEADER_BYTES,
  SLICE_MAGIC,
  SLICE_VERSION,
  decodeSlice,
  encodeSlice,
  type MnistSlice,
} from '../../src/data/slice.js';

/** The first n rows of d, as views (no copy). */
export function headRows(d: Dataset, n: number): Dataset {
  const m = Math.min(n, d.n);
  const f = featureSize(d);
  return {
    source: d.source,
    n: m,
    featureShape: [...d.featureShape],
    x: d.x.subarray(0, m * f),
    y: d.y.subarray(0, m),
    numClasses: d.numClasses,
  };
}

/** FNV-1a over the bytes of a Float32Array, as 8 hex digits: a cheap identity for comparing weights across runtimes. */
export function fnv1aHex(a: Float32Array): string {
  const b = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) {
    h ^= b[i];
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

// ---------- building an engine trainer without make-trainer.ts ----------

/** The argument EngineTrainer's constructor takes may change (dense spec today, a layer spec later). */
type AnyEngineTrainer = new (spec: unknown, kernels: Kernels) => LocalTrainer;

export interface EngineBuild {
  trainer: LocalTrainer;
  /** Which spec form the constructor accepted: 'dense' (asDenseNet's form) or 'model' (the ModelSpec itself). */
  form: 'dense' | 'model';
}

/**
 * An EngineTrainer for `spec` on `kernels`, constructed directly (make-trainer.ts reaches Node and tfjs,
 * so browser code cannot use it). Tries the ModelSpec itself first, then asDenseNet's form (what
 * EngineTrainer takes today; today's constructor rejects a ModelSpec, whose flatten/pool layers have no
 * activation), so that when the engine learns conv layers and takes the ModelSpec, the CNN is picked up
 * without changing this file. If the constructor comes to take yet another form, this is the one place
 * to adapt. Throws, with every attempt's reason, when the engine cannot run the model.
 */
export function buildEngineTrainer(spec: ModelSpec, kernels: Kernels): EngineBuild {
  const Ctor = EngineTrainer as unknown as AnyEngineTrainer;
  const reasons: string[] = [];
  try {
    return { trainer: new Ctor(spec, kernels), form: 'model' };
  } catch (e) {
    reasons.push(`EngineTrainer(ModelSpec): ${e instanceof Error ? e.message : String(e)}`);
  }
  const dense = asDenseNet(spec);
  if (dense) {
    try {
      return { trainer: new Ctor(dense, kernels), form: 'dense' };
    } catch (e) {
      reasons.push(`EngineTrainer(asDenseNet(spec)): ${e instanceof Error ? e.message : String(e)}`);
    }
  } else {
    const other = [...new Set(spec.layers.map((l) => l.type).filter((t) => t !== 'flatten' && t !== 'dense'))];
    reasons.push(`asDenseNet: not a dense network${other.length ? ` (has ${other.join(', ')} layers)` : ''}`);
  }
  throw new Error(`the engine cannot train model ${spec.name}: ${reasons.join('; ')}`);
}

// ---------- the check ----------

export interface EngineCheckOptions {
  /** Seed of the initial weights (Rng) and of the shuffling. Default 1. */
  seed?: number;
  /** MLP batch size. Default 32 (the project's default). */
  batchSize?: number;
  /** Samples the CNN trains on (0 skips the CNN). Default 256. */
  cnnSamples?: number;
  /** CNN batch size. Default 32. */
  cnnBatchSize?: number;
  /** Also train the MLP one epoch with SGD lr 0.1 (what bench:train compares with NumPy). Default true. */
  sgd?: boolean;
  /** Progress lines, e.g. for the page's log. */
  log?: (line: string) => void;
}

/** The seed MLP trained one epoch with SGD lr 0.1, batch 32: the throughput bench:train compares with NumPy's. */
export interface SgdResult {
  trainSamples: number;
  batchSize: number;
  lr: number;
  trainSeconds: number;
  samplesPerSecond: number;
  testAccuracy: number;
  weightsFnv: string;
}

export interface MlpResult {
  model: 'mlp';
  trainerForm: EngineBuild['form'];
  trainSamples: number;
  testSamples: number;
  epochs: 1;
  batchSize: number;
  steps: number;
  trainSeconds: number;
  samplesPerSecond: number;
  trainLoss: number;
  trainAccuracy: number;
  testLoss: number;
  testAccuracy: number;
  /** fnv1aHex of the trained weights: equal in two runtimes means bit-identical training. */
  weightsFnv: string;
}

export type CnnResult =
  | { model: 'cnn'; status: 'skipped' }
  | { model: 'cnn'; status: 'unsupported'; reason: string }
  | {
      model: 'cnn';
      status: 'trained';
      trainerForm: EngineBuild['form'];
      samples: number;
      batchSize: number;
      /** Mean training loss of each batch, in order (plain SGD steps, one after another). */
      batchLosses: number[];
      /** Mean loss over the trained samples before and after training. */
      lossBefore: number;
      lossAfter: number;
      trainSeconds: number;
      samplesPerSecond: number;
      weightsFnv: string;
    };

export interface EngineCheckResult {
  kernels: string;
  /** The MLP's training throughput and test accuracy, repeated at the top for quick reading. */
  samplesPerSecond: number;
  accuracy: number;
  mlp: MlpResult;
  /** null when options.sgd is false. */
  sgd: SgdResult | null;
  cnn: CnnResult;
}

/** SGD's learning rate in bench:train's seed-MLP configuration (mlp-sgd-b32). */
export const SGD_LR = 0.1;

function now(): number {
  return performance.now();
}

/** Trains the seed MLP for one epoch with its Adam optimizer, then the CNN for a few batches when the engine runs it. */
export async function runEngineCheck(
  kernels: Kernels,
  data: MnistSlice,
  options: EngineCheckOptions = {},
): Promise<EngineCheckResult> {
  const seed = options.seed ?? 1;
  const batchSize = options.batchSize ?? 32;
  const cnnSamples = options.cnnSamples ?? 256;
  const cnnBatchSize = options.cnnBatchSize ?? 32;
  const log = options.log ?? ((): void => {});
  const { train, test } = data;
  const shape = train.featureShape;

  // MLP: builtinModel('mlp') = Flatten, Dense(128, relu), Dense(10, softmax), Adam(0.001).
  const mlpSpec = builtinModel('mlp', shape, train.numClasses);
  const mlp = buildEngineTrainer(mlpSpec, kernels);
  const w0 = initialWeights(tensorSpecs(mlpSpec), new Rng(seed));
  log(
    `mlp: ${w0.length} parameters, training 1 epoch on ${train.n} samples (batch ${batchSize}, ${mlpSpec.optimizer.name}) with ${kernels.name} kernels`,
  );
  const t0 = now();
  const trained = await mlp.trainer.train(w0, train, {
    epochs: 1,
    batchSize,
    optimizer: mlpSpec.optimizer,
    proxMu: 0,
    seed,
  });
  const trainSeconds = (now() - t0) / 1000;
  const ev = await mlp.trainer.evaluate(trained.weights, test);
  mlp.trainer.dispose();
  const mlpResult: MlpResult = {
    model: 'mlp',
    trainerForm: mlp.form,
    trainSamples: train.n,
    testSamples: test.n,
    epochs: 1,
    batchSize,
    steps: trained.steps,
    trainSeconds,
    samplesPerSecond: train.n / trainSeconds,
    trainLoss: trained.metrics.loss,
    trainAccuracy: trained.metrics.accuracy,
    testLoss: ev.loss,
    testAccuracy: ev.accuracy,
    weightsFnv: fnv1aHex(trained.weights),
  };
  log(
    `mlp: ${trainSeconds.toFixed(2)} s, ${Math.round(mlpResult.samplesPerSecond)} samples/s, test accuracy ${ev.accuracy.toFixed(4)} on ${test.n}`,
  );

  const sgd = options.sgd === false ? null : await runSgd(kernels, data, mlpSpec, batchSize, seed, log);
  const cnn =
    cnnSamples > 0
      ? await runCnn(kernels, train, cnnSamples, cnnBatchSize, seed, log)
      : { model: 'cnn' as const, status: 'skipped' as const };
  return {
    kernels: kernels.name,
    samplesPerSecond: mlpResult.samplesPerSecond,
    accuracy: mlpResult.testAccuracy,
    mlp: mlpResult,
    sgd,
    cnn,
  };
}

async function runSgd(
  kernels: Kernels,
  data: MnistSlice,
  spec: ModelSpec,
  batchSize: number,
  seed: number,
  log: (line: string) => void,
): Promise<SgdResult> {
  const { trainer } = buildEngineTrainer(spec, kernels);
  const w0 = initialWeights(tensorSpecs(spec), new Rng(seed));
  const t0 = now();
  const trained = await trainer.train(w0, data.train, {
    epochs: 1,
    batchSize,
    optimizer: { name: 'sgd', lr: SGD_LR },
    proxMu: 0,
    seed,
  });
  const trainSeconds = (now() - t0) / 1000;
  const ev = await trainer.evaluate(trained.weights, data.test);
  trainer.dispose();
  const r: SgdResult = {
    trainSamples: data.train.n,
    batchSize,
    lr: SGD_LR,
    trainSeconds,
    samplesPerSecond: data.train.n / trainSeconds,
    testAccuracy: ev.accuracy,
    weightsFnv: fnv1aHex(trained.weights),
  };
  log(`mlp sgd: ${trainSeconds.toFixed(2)} s, ${Math.round(r.samplesPerSecond)} samples/s, accuracy ${ev.accuracy}`);
  return r;
}

async function runCnn(
  kernels: Kernels,
  train: Dataset,
  samples: number,
  batchSize: number,
  seed: number,
  log: (line: string) => void,
): Promise<CnnResult> {
  const spec = builtinModel('cnn', train.featureShape, train.numClasses);
  let build: EngineBuild;
  try {
    build = buildEngineTrainer(spec, kernels);
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    log(`cnn: not trainable on the engine (${reason})`);
    return { model: 'cnn', status: 'unsupported', reason };
  }
  const data = headRows(train, samples);
  const { trainer } = build;
  let w = initialWeights(tensorSpecs(spec), new Rng(seed));
  log(
    `cnn: ${w.length} parameters, training ${data.n} samples in batches of ${batchSize} (${spec.optimizer.name}, lr ${spec.optimizer.lr})`,
  );
  const before = await trainer.evaluate(w, data);
  // One train() call per batch, in order, to see each batch's loss (with the CNN's plain SGD, which keeps
  // no state between steps, this is exactly one pass over the batches).
  const batchLosses: number[] = [];
  const t0 = now();
  for (let s = 0; s < data.n; s += batchSize) {
    const m = Math.min(batchSize, data.n - s);
    const batch: Dataset = {
      ...data,
      n: m,
      x: data.x.subarray(s * featureSize(data), (s + m) * featureSize(data)),
      y: data.y.subarray(s, s + m),
    };
    const r = await trainer.train(w, batch, {
      epochs: 1,
      batchSize: m,
      optimizer: spec.optimizer,
      proxMu: 0,
      seed: seed + s,
    });
    w = r.weights;
    batchLosses.push(r.metrics.loss);
  }
  const trainSeconds = (now() - t0) / 1000;
  const after = await trainer.evaluate(w, data);
  trainer.dispose();
  log(
    `cnn: loss ${before.loss.toFixed(4)} -> ${after.loss.toFixed(4)}, ${trainSeconds.toFixed(2)} s, ${Math.round(data.n / trainSeconds)} samples/s`,
  );
  return {
    model: 'cnn',
    status: 'trained',
    trainerForm: build.form,
    samples: data.n,
    batchSize,
    batchLosses,
    lossBefore: before.loss,
    lossAfter: after.loss,
    trainSeconds,
    samplesPerSecond: data.n / trainSeconds,
    weightsFnv: fnv1aHex(w),
  };
}
