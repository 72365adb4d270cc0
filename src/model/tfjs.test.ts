// The tfjs interop: a model we save loads in STOCK tfjs over HTTP and predicts what the engine predicts;
// model.json files (ours and a user's) come back as specs with the same tensors and weights; topologies
// the engine cannot run go to tfjs; malformed files fail with errors naming the file.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { AddressInfo } from 'node:net';
import * as stockTf from '@tensorflow/tfjs';
import { loadMnist } from '../data/mnist.js';
import { subset, type Dataset } from '../data/types.js';
import { firstRows } from '../../test/support/first-rows.js';
import { Rng } from '../core/rng.js';
import { getKernels } from '../nn/kernels-select.js';
import { denseUnsupportedReason } from '../nn/dense.js';
import { asDenseNet, builtinModel, initialWeights, tensorSpecs, type ModelSpec } from './spec.js';
import {
  buildTfjsModel,
  ensureTfjs,
  getModelWeights,
  saveTfjsModel,
  setModelWeights,
  specFromModelJson,
  tf,
} from './tfjs.js';
import { EngineTrainer } from './engine-trainer.js';
import { makeTrainer } from './make-trainer.js';

const mlp = builtinModel('mlp', [28, 28, 1], 10);
const root = mkdtempSync(join(tmpdir(), 'edgefed-tfjs-test-'));
let dirCount = 0;
const newDir = (): string => mkdtempSync(join(root, `m${dirCount++}-`));

let train: Dataset;
let test: Dataset;
let trained: Float32Array;
let savedDir: string;

before(async () => {
  await ensureTfjs();
  const d = loadMnist();
  train = firstRows(d.train, 256, 'mnist:train[0:256]');
  test = firstRows(d.test, 500, 'mnist:test[0:500]');
  const eng = new EngineTrainer(asDenseNet(mlp)!, getKernels());
  const w0 = initialWeights(tensorSpecs(mlp), new Rng(3));
  trained = (
    await eng.train(w0, train, { epochs: 1, batchSize: 32, optimizer: { name: 'adam', lr: 0.001 }, proxMu: 0, seed: 5 })
  ).weights;
  savedDir = newDir();
  await saveTfjsModel(mlp, trained, savedDir);
});

after(() => rmSync(root, { recursive: true, force: true }));

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

function argmaxAccuracy(probs: ArrayLike<number>, labels: ArrayLike<number>, classes: number): number {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let j = 1; j < classes; j++) if (probs[i * classes + j] > probs[i * classes + best]) best = j;
    if (best === labels[i]) correct++;
  }
  return correct / labels.length;
}

/** Serves the files of dir (by base name) on 127.0.0.1, an ephemeral port; records the paths asked for. */
async function serve(dir: string): Promise<{ url: string; requests: string[]; close: () => Promise<void> }> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push(path);
    const file = join(dir, basename(path));
    if (!existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': path.endsWith('.json') ? 'application/json' : 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve, reject) => server.close((e) => (e ? reject(e) : resolve()))),
  };
}

/** Saves a tfjs model as a tfjs model.json plus one weights file, with the stock save handler's artifacts. */
async function saveUserModel(
  model: tf.LayersModel,
  dir: string,
  modelJsonFields: Record<string, unknown> = {},
): Promise<string> {
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      writeFileSync(join(dir, 'group1-shard1of1.bin'), Buffer.from(a.weightData as ArrayBuffer));
      writeFileSync(
        join(dir, 'model.json'),
        JSON.stringify({
          modelTopology: a.modelTopology,
          format: 'layers-model',
          generatedBy: 'test',
          weightsManifest: [{ paths: ['./group1-shard1of1.bin'], weights: a.weightSpecs }],
          ...modelJsonFields,
        }),
      );
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return join(dir, 'model.json');
}

describe('saveTfjsModel', () => {
  it('stock tf.loadLayersModel over HTTP predicts what the engine predicts on 500 MNIST test images', async (t) => {
    const server = await serve(savedDir);
    let model: stockTf.LayersModel | null = null;
    try {
      model = await stockTf.loadLayersModel(`${server.url}/model.json`);
      assert.deepEqual(server.requests, ['/model.json', '/weights.bin']);
      const theirs = stockTf.tidy(() =>
        (model!.predict(stockTf.tensor(test.x, [test.n, 28, 28, 1])) as stockTf.Tensor).dataSync(),
      );
      const eng = new EngineTrainer(asDenseNet(mlp)!, getKernels());
      const ours = await eng.predict(trained, test.x, test.n);
      const diff = maxAbsDiff(theirs, ours);
      const ev = await eng.evaluate(trained, test);
      const theirAccuracy = argmaxAccuracy(theirs, test.y, 10);
      t.diagnostic(
        `max |tfjs - engine| probability ${diff.toExponential(2)}; accuracy ${theirAccuracy} (tfjs) vs ${ev.accuracy} (engine)`,
      );
      assert.ok(diff <= 1e-5, `predictions differ by ${diff}`);
      assert.equal(theirAccuracy, ev.accuracy);
      assert.equal(argmaxAccuracy(ours, test.y, 10), ev.accuracy);
      assert.ok(ev.accuracy > 0.3, `the model learned something (accuracy ${ev.accuracy})`);
      // It came back compiled with our training config.
      assert.equal(model.optimizer.getClassName(), 'Adam');
      assert.equal(model.optimizer.getConfig().learningRate, 0.001);
      // Its weights are ours, in our order.
      const loaded = model
        .getWeights()
        .map((w) => Array.from(w.dataSync()))
        .flat();
      assert.equal(maxAbsDiff(loaded, trained), 0);
    } finally {
      model?.dispose();
      await server.close();
    }
  });

  it('writes model.json whose manifest lists tensorSpecs(spec) in order, and weights.bin of matching size', () => {
    const json = JSON.parse(readFileSync(join(savedDir, 'model.json'), 'utf8'));
    assert.equal(json.format, 'layers-model');
    assert.ok(json.modelTopology, 'has a topology');
    assert.equal(json.weightsManifest.length, 1);
    assert.deepEqual(json.weightsManifest[0].paths, ['./weights.bin']);
    const manifest = json.weightsManifest[0].weights as { name: string; shape: number[]; dtype: string }[];
    assert.deepEqual(
      manifest.map((w) => ({ name: w.name, shape: w.shape })),
      tensorSpecs(mlp),
    );
    assert.ok(manifest.every((w) => w.dtype === 'float32'));
    assert.equal(readFileSync(join(savedDir, 'weights.bin')).length, trained.length * 4);
    assert.equal(json.trainingConfig.loss, 'sparse_categorical_crossentropy');
  });

  it('specFromModelJson reads it back: same tensors, bit-identical weights, same dense form, engine trainer', async () => {
    const { spec, weights } = await specFromModelJson(join(savedDir, 'model.json'));
    assert.deepEqual(tensorSpecs(spec), tensorSpecs(mlp));
    assert.ok(weights);
    assert.deepEqual(weights, trained);
    assert.deepEqual(spec.inputShape, [28, 28, 1]);
    assert.equal(spec.loss, 'sparse_categorical_crossentropy');
    assert.deepEqual(asDenseNet(spec), asDenseNet(mlp));
    const tr = await makeTrainer(spec);
    try {
      assert.equal(tr.kind, 'engine');
      assert.deepEqual(
        await tr.evaluate(weights, test),
        await new EngineTrainer(asDenseNet(mlp)!, getKernels()).evaluate(trained, test),
      );
    } finally {
      tr.dispose();
    }
  });

  it('the re-read spec saves again to the same files (round trip through a topology spec)', async () => {
    const { spec, weights } = await specFromModelJson(join(savedDir, 'model.json'));
    const again = newDir();
    await saveTfjsModel(spec, weights!, again);
    assert.deepEqual(readFileSync(join(again, 'weights.bin')), readFileSync(join(savedDir, 'weights.bin')));
    const back = await specFromModelJson(join(again, 'model.json'));
    assert.deepEqual(back.weights, trained);
    assert.deepEqual(tensorSpecs(back.spec), tensorSpecs(mlp));
  });

  it('stock tfjs compiles the saved training config for sgd, momentum and adam; tabular models load too', async () => {
    for (const optimizer of [
      { name: 'sgd', lr: 0.1 },
      { name: 'momentum', lr: 0.02, momentum: 0.8 },
      { name: 'adam', lr: 0.003, beta1: 0.8 },
    ] as const) {
      const spec: ModelSpec = { ...builtinModel('linear', [6], 3), optimizer };
      const dir = newDir();
      await saveTfjsModel(spec, initialWeights(tensorSpecs(spec), new Rng(2)), dir);
      const server = await serve(dir);
      try {
        const model = await stockTf.loadLayersModel(`${server.url}/model.json`);
        const c = model.optimizer.getConfig();
        assert.equal(
          model.optimizer.getClassName(),
          { sgd: 'SGD', momentum: 'Momentum', adam: 'Adam' }[optimizer.name],
        );
        assert.equal(c.learningRate, optimizer.lr);
        if (optimizer.name === 'momentum') assert.equal(c.momentum, 0.8);
        if (optimizer.name === 'adam') assert.deepEqual([c.beta1, c.beta2, c.epsilon], [0.8, 0.999, 1e-7]);
        assert.deepEqual(model.inputs[0].shape, [null, 6]);
        model.dispose();
      } finally {
        await server.close();
      }
    }
  });

  it('a regression model keeps its mse loss and one linear output', async () => {
    const reg = builtinModel('2nn', [6], 0);
    const w = initialWeights(tensorSpecs(reg), new Rng(4));
    const dir = newDir();
    await saveTfjsModel(reg, w, dir);
    const { spec, weights } = await specFromModelJson(join(dir, 'model.json'));
    assert.equal(spec.loss, 'mse');
    assert.deepEqual(asDenseNet(spec), asDenseNet(reg));
    assert.deepEqual(weights, w);
  });
});

describe("a user's model.json", () => {
  it('a stock tfjs Sequential (dense 16 relu, dense 10 softmax) becomes an engine-trainable spec with its weights', async () => {
    const user = stockTf.sequential();
    user.add(stockTf.layers.dense({ name: 'hidden', units: 16, activation: 'relu', inputShape: [784] }));
    user.add(stockTf.layers.dense({ name: 'probs', units: 10, activation: 'softmax' }));
    const path = await saveUserModel(user, newDir());
    const theirWeights = Float32Array.from(user.getWeights().flatMap((w) => Array.from(w.dataSync())));
    try {
      const { spec, weights } = await specFromModelJson(path);
      assert.deepEqual(spec.inputShape, [784]);
      assert.deepEqual(spec.tensors, [
        { name: 'hidden/kernel', shape: [784, 16] },
        { name: 'hidden/bias', shape: [16] },
        { name: 'probs/kernel', shape: [16, 10] },
        { name: 'probs/bias', shape: [10] },
      ]);
      assert.equal(
        spec.loss,
        'sparse_categorical_crossentropy',
        'softmax output without a training config: sparse cross-entropy',
      );
      const dense = asDenseNet(spec);
      assert.ok(dense, 'the engine can run it');
      assert.deepEqual(dense, {
        inputSize: 784,
        loss: 'sparse_categorical_crossentropy',
        layers: [
          { name: 'hidden', units: 16, activation: 'relu' },
          { name: 'probs', units: 10, activation: 'softmax' },
        ],
      });
      assert.deepEqual(weights, theirWeights);
      // The engine with these weights predicts what the user's tfjs model predicts.
      const tr = await makeTrainer(spec);
      try {
        assert.equal(tr.kind, 'engine');
        const x = test.x.subarray(0, 100 * 784);
        const ours = await tr.predict(weights!, x, 100);
        const theirs = stockTf.tidy(() => (user.predict(stockTf.tensor2d(x, [100, 784])) as stockTf.Tensor).dataSync());
        assert.ok(maxAbsDiff(ours, theirs) <= 1e-5);
        // and trains on data of that shape
        const flat: Dataset = { ...train, featureShape: [784] };
        const r = await tr.train(weights!, flat, {
          epochs: 1,
          batchSize: 64,
          optimizer: spec.optimizer,
          proxMu: 0,
          seed: 1,
        });
        assert.equal(r.steps, 4);
        assert.ok(Number.isFinite(r.metrics.loss));
      } finally {
        tr.dispose();
      }
    } finally {
      user.dispose();
    }
  });

  it('a training config loss in model.json wins over the output activation', async () => {
    const user = stockTf.sequential();
    user.add(stockTf.layers.dense({ name: 'out', units: 1, activation: 'linear', inputShape: [3] }));
    const path = await saveUserModel(user, newDir(), { trainingConfig: { loss: 'meanSquaredError' } });
    user.dispose();
    assert.equal((await specFromModelJson(path)).spec.loss, 'mse');
  });

  const tfjsOnly: [string, () => tf.Sequential][] = [
    [
      'a frozen batch normalization (trainable: false)',
      () => {
        const m = stockTf.sequential();
        m.add(stockTf.layers.dense({ name: 'hidden', units: 16, activation: 'relu', inputShape: [784] }));
        m.add(stockTf.layers.batchNormalization({ name: 'bn', trainable: false }));
        m.add(stockTf.layers.dense({ name: 'probs', units: 10, activation: 'softmax' }));
        return m;
      },
    ],
    [
      'a strided convolution',
      () => {
        const m = stockTf.sequential();
        m.add(
          stockTf.layers.conv2d({
            name: 'conv',
            filters: 2,
            kernelSize: 3,
            strides: 2,
            activation: 'relu',
            inputShape: [28, 28, 1],
          }),
        );
        m.add(stockTf.layers.flatten({ name: 'flat' }));
        m.add(stockTf.layers.dense({ name: 'probs', units: 10, activation: 'softmax' }));
        return m;
      },
    ],
    [
      'an activation the engine does not compute (elu)',
      () => {
        const m = stockTf.sequential();
        m.add(stockTf.layers.dense({ name: 'hidden', units: 16, activation: 'elu', inputShape: [784] }));
        m.add(stockTf.layers.dense({ name: 'probs', units: 10, activation: 'softmax' }));
        return m;
      },
    ],
    [
      'a dense layer without a bias',
      () => {
        const m = stockTf.sequential();
        m.add(
          stockTf.layers.dense({ name: 'hidden', units: 16, activation: 'relu', inputShape: [784], useBias: false }),
        );
        m.add(stockTf.layers.dense({ name: 'probs', units: 10, activation: 'softmax' }));
        return m;
      },
    ],
  ];
  for (const [what, build] of tfjsOnly) {
    it(`a topology with ${what} goes to the tfjs trainer, which trains it from the file's weights`, async () => {
      const user = build();
      const path = await saveUserModel(user, newDir());
      // every weight, in model.weights order: trainable, then non-trainable (moving statistics)
      const trainable = Float32Array.from(user.weights.flatMap((w) => Array.from(w.read().dataSync())));
      user.dispose();
      const { spec, weights } = await specFromModelJson(path);
      const dense = asDenseNet(spec);
      assert.ok(dense === null || denseUnsupportedReason(dense) !== null, 'the engine must not take it');
      assert.deepEqual(weights, trainable);
      await assert.rejects(makeTrainer(spec, 'engine'), /dense engine cannot train model/);
      const tr = await makeTrainer(spec);
      try {
        assert.equal(tr.kind, 'tfjs');
        const data: Dataset = spec.inputShape.length === 1 ? { ...train, featureShape: [784] } : train;
        const few = subset(
          data,
          Array.from({ length: 32 }, (_, i) => i),
        );
        const r = await tr.train(weights!, few, {
          epochs: 1,
          batchSize: 16,
          optimizer: { name: 'sgd', lr: 0.05 },
          proxMu: 0,
          seed: 1,
        });
        assert.equal(r.steps, 2);
        assert.equal(r.weights.length, weights!.length);
        assert.ok(Number.isFinite(r.metrics.loss), `loss ${r.metrics.loss}`);
        assert.ok(maxAbsDiff(r.weights, weights!) > 0);
      } finally {
        tr.dispose();
      }
    });
  }

  it('setModelWeights writes every weight, trainable then non-trainable (as the engine lays them out)', async () => {
    const m = stockTf.sequential();
    m.add(stockTf.layers.dense({ name: 'd', units: 3, inputShape: [2] }));
    m.add(stockTf.layers.batchNormalization({ name: 'bn' }));
    try {
      const n = m.weights.reduce((a, w) => a + (w.shape as number[]).reduce((x, y) => x * y, 1), 0);
      assert.equal(n, 21);
      const values = Float32Array.from({ length: n }, (_, i) => i / 10);
      const before = tf.memory().numTensors;
      setModelWeights(m, values);
      assert.equal(tf.memory().numTensors, before);
      assert.deepEqual(getModelWeights(m), values);
      const movingMean = m.weights.findIndex((w) => w.originalName === 'bn/moving_mean');
      assert.deepEqual(movingMean, 4, 'after the four trainable tensors');
      assert.deepEqual(Array.from(m.weights[4].read().dataSync()), Array.from(values.subarray(15, 18)));
      assert.throws(() => setModelWeights(m, values.subarray(1)), /weights have 20 values but the model needs 21/);
    } finally {
      m.dispose();
    }
  });
});

describe('malformed model.json', () => {
  async function expectError(path: string, message: RegExp): Promise<void> {
    await assert.rejects(specFromModelJson(path), (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.ok(e.message.includes(path), `'${e.message}' names the file`);
      assert.match(e.message, message);
      return true;
    });
  }

  const good = (): Record<string, unknown> => JSON.parse(readFileSync(join(savedDir, 'model.json'), 'utf8'));
  function write(json: unknown, bin?: Buffer): string {
    const dir = newDir();
    writeFileSync(join(dir, 'model.json'), typeof json === 'string' ? json : JSON.stringify(json));
    if (bin) writeFileSync(join(dir, 'weights.bin'), bin);
    return join(dir, 'model.json');
  }
  const bin = (): Buffer => readFileSync(join(savedDir, 'weights.bin'));

  it('not JSON', () => expectError(write('{"modelTopology": '), /not a readable tfjs model\.json/));
  it('a file that does not exist', () =>
    expectError(join(root, 'nowhere', 'model.json'), /not a readable tfjs model\.json/));
  it('no modelTopology', () =>
    expectError(write({ weightsManifest: good().weightsManifest }, bin()), /no modelTopology/));
  it('a topology tfjs cannot build', () =>
    expectError(
      write({ modelTopology: { class_name: 'NoSuchModel', config: {} } }),
      /tfjs cannot build this topology/,
    ));
  it('a missing weights file', () => expectError(write(good()), /weights file \.\/weights\.bin is missing/));
  it('a weights file shorter than its manifest', () =>
    expectError(write(good(), bin().subarray(0, 4000)), /weights file is shorter than its manifest says/));
  it('a manifest shape that does not match the topology', () => {
    const json = good() as { weightsManifest: { weights: { name: string; shape: number[] }[] }[] };
    json.weightsManifest[0].weights[1].shape = [64]; // dense1/bias has 128 units
    return expectError(write(json, bin()), /weight dense1\/bias has 64 values, expected 128/);
  });
  it('a manifest without one of the weights', () => {
    const json = good() as { weightsManifest: { weights: { name: string }[] }[] };
    json.weightsManifest[0].weights[3].name = 'output/other';
    return expectError(write(json, bin()), /no weight named output\/bias/);
  });
  it('a weight of another dtype', () => {
    const json = good() as { weightsManifest: { weights: { dtype: string }[] }[] };
    json.weightsManifest[0].weights[0].dtype = 'int32';
    return expectError(write(json, bin()), /dtype int32/);
  });
});

describe('the faster conv filter gradient (Conv2DBackpropFilter on the cpu backend)', () => {
  /** dW by the definition, in float64. */
  function reference(
    x: Float32Array,
    xs: number[],
    dy: Float32Array,
    ys: number[],
    f: number[],
    stride: number,
    top: number,
    left: number,
  ): Float64Array {
    const [b, h, w, ci] = xs;
    const [, oh, ow, co] = ys;
    const out = new Float64Array(f[0] * f[1] * ci * co);
    for (let r = 0; r < f[0]; r++)
      for (let c = 0; c < f[1]; c++)
        for (let i = 0; i < ci; i++)
          for (let o = 0; o < co; o++) {
            let s = 0;
            for (let n = 0; n < b; n++)
              for (let yr = 0; yr < oh; yr++)
                for (let yc = 0; yc < ow; yc++) {
                  const xr = yr * stride + r - top,
                    xc = yc * stride + c - left;
                  if (xr >= 0 && xr < h && xc >= 0 && xc < w)
                    s += x[((n * h + xr) * w + xc) * ci + i] * dy[((n * oh + yr) * ow + yc) * co + o];
                }
            out[((r * f[1] + c) * ci + i) * co + o] = s;
          }
    return out;
  }

  for (const [stride, pad] of [
    [1, 'same'],
    [1, 'valid'],
    [2, 'same'],
    [2, 'valid'],
  ] as const) {
    it(`matches the definition: stride ${stride}, padding ${pad}, odd and even filter sizes`, () => {
      const r = new Rng(stride * 10 + (pad === 'same' ? 1 : 0));
      for (const f of [
        [3, 3, 2, 4],
        [2, 5, 3, 1],
      ]) {
        const xs = [2, 7, 8, f[2]];
        const x = Float32Array.from({ length: xs.reduce((a, b) => a * b) }, () => r.uniform(-1, 1));
        const xt = tf.tensor4d(x, xs as [number, number, number, number]);
        const filter = tf.variable(tf.zeros(f));
        const y = tf.conv2d(xt, filter as tf.Variable<tf.Rank.R4>, stride, pad);
        const dy = Float32Array.from({ length: y.size }, () => r.uniform(-1, 1));
        const dyt = tf.tensor(dy, y.shape);
        // d sum(conv(x, W) * dy) / dW is the filter gradient for upstream gradient dy.
        const g = tf.grad((w: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(xt, w as tf.Tensor4D, stride, pad), dyt)))(filter);
        const info = tf.backend_util.computeConv2DInfo(
          xs as [number, number, number, number],
          f as [number, number, number, number],
          stride,
          1,
          pad,
        );
        const want = reference(x, xs, dy, y.shape, f, stride, info.padInfo.top, info.padInfo.left);
        assert.deepEqual(g.shape, f);
        const got = g.dataSync();
        for (let i = 0; i < want.length; i++)
          assert.ok(Math.abs(got[i] - want[i]) <= 1e-6 * (1 + Math.abs(want[i])), `dW[${i}] ${got[i]} vs ${want[i]}`);
        tf.dispose([xt, filter, y, dyt, g]);
      }
    });
  }

  it('a tiny conv net built from a spec: conv kernel gradients match finite differences of its loss', async () => {
    const spec: ModelSpec = {
      name: 'tinyconv',
      inputShape: [6, 6, 1],
      loss: 'sparse_categorical_crossentropy',
      optimizer: { name: 'sgd', lr: 0.1 },
      layers: [
        { type: 'conv2d', name: 'c', filters: 2, kernelSize: 3, activation: 'linear', padding: 'valid' },
        { type: 'flatten', name: 'f' },
        { type: 'dense', name: 'o', units: 3, activation: 'softmax' },
      ],
    };
    const model = await buildTfjsModel(spec);
    try {
      const r = new Rng(9);
      const w = initialWeights(tensorSpecs(spec), r);
      setModelWeights(model, w);
      const x = Float32Array.from({ length: 4 * 36 }, () => r.uniform(0, 1));
      const labels = Int32Array.from([0, 1, 2, 1]);
      const grads = tf.tidy(() => {
        const xt = tf.tensor4d(x, [4, 6, 6, 1]);
        const { grads: g } = tf.variableGrads(
          () => {
            const p = model.apply(xt) as tf.Tensor;
            return tf.neg(
              tf.mean(tf.sum(tf.mul(tf.oneHot(tf.tensor1d(labels, 'int32'), 3), tf.log(p)), -1)),
            ) as tf.Scalar;
          },
          model.trainableWeights.map((v) => v.read() as tf.Variable),
        );
        return Object.values(g).map((t) => t.dataSync().slice());
      });
      // Finite differences of the same loss for the first conv kernel entries.
      const lossAt = (wv: Float32Array): number => {
        setModelWeights(model, wv);
        return tf.tidy(() => {
          const p = model.predict(tf.tensor4d(x, [4, 6, 6, 1])) as tf.Tensor;
          return tf
            .neg(tf.mean(tf.sum(tf.mul(tf.oneHot(tf.tensor1d(labels, 'int32'), 3), tf.log(p)), -1)))
            .dataSync()[0];
        });
      };
      const eps = 1e-2;
      for (let i = 0; i < 18; i++) {
        const up = new Float32Array(w);
        up[i] += eps;
        const down = new Float32Array(w);
        down[i] -= eps;
        const fd = (lossAt(up) - lossAt(down)) / (2 * eps);
        assert.ok(
          Math.abs(fd - grads[0][i]) <= 5e-4 + 1e-2 * Math.abs(grads[0][i]),
          `conv kernel[${i}]: ${grads[0][i]} vs fd ${fd}`,
        );
      }
    } finally {
      model.dispose();
    }
  });
});
