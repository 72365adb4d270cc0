// Browser suite: the ONNX files `edgefed export` writes run in onnxruntime-web (its WASM backend, one
// thread) in headless Chromium and give the engine's predictions: the MLP, the McMahan CNN and the
// MobileNet-style model trained briefly on MNIST (1,000 test images) and the GRU forecaster. onnxruntime-web's scripts and wasm files
// are served from node_modules on loopback (no CDN).
// Needs /usr/bin/chromium (apt-get install chromium); skipped with a message when it is absent.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, chromiumMissing, serveStatic, type StaticServer } from './serve.js';
import { loadMnist } from '../../src/data/mnist.js';
import { subset } from '../../src/data/types.js';
import { Rng } from '../../src/core/rng.js';
import { builtinModel, initialWeights, tensorSpecs, type ModelSpec } from '../../src/model/spec.js';
import { EngineTrainer } from '../../src/model/engine-trainer.js';
import { getKernels } from '../../src/nn/kernels-select.js';
import { exportOnnx } from '../../src/model/onnx/export.js';

const ORT_DIST = fileURLToPath(new URL('../../node_modules/onnxruntime-web/dist/', import.meta.url));
const skip = chromiumMissing;

const PAGE = `<!doctype html><meta charset="utf-8"><title>onnx check</title><script type="module">
import * as ort from './ort.wasm.min.mjs';
ort.env.wasm.numThreads = 1; // no cross-origin isolation here, so no SharedArrayBuffer threads
window.runModel = async (name, dims) => {
  const bytes = new Uint8Array(await (await fetch(name + '.onnx')).arrayBuffer());
  const x = new Float32Array(await (await fetch(name + '.bin')).arrayBuffer());
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
  const out = await session.run({ input: new ort.Tensor('float32', x, dims) });
  await session.release();
  return Array.from(out.output.data);
};
window.ready = true;
</script>`;

interface Case {
  name: string;
  spec: ModelSpec;
  weights: Float32Array;
  x: Float32Array;
  n: number;
  ours: Float32Array;
}

const cases: Case[] = [];
let server: StaticServer | null = null;
let browser: Browser | null = null;
let page: Page;

before(async () => {
  if (skip) return;
  const d = loadMnist();
  const train = subset(
    d.train,
    Array.from({ length: 256 }, (_, i) => i),
  );
  const test = subset(
    d.test,
    Array.from({ length: 1000 }, (_, i) => i),
  );
  for (const name of ['mlp', 'cnn', 'mobilenet'] as const) {
    const spec = builtinModel(name, [28, 28, 1], 10);
    const trainer = new EngineTrainer(spec, getKernels());
    // The mobilenet takes a few steps only (its depthwise loops are plain TypeScript): enough to move its
    // batch-norm moving statistics.
    const data =
      name === 'mobilenet'
        ? subset(
            train,
            Array.from({ length: 96 }, (_, i) => i),
          )
        : train;
    const { weights } = await trainer.train(initialWeights(tensorSpecs(spec), new Rng(2)), data, {
      epochs: 1,
      batchSize: 32,
      optimizer: spec.optimizer,
      proxMu: 0,
      seed: 1,
    });
    cases.push({ name, spec, weights, x: test.x, n: test.n, ours: await trainer.predict(weights, test.x, test.n) });
  }
  const gru = builtinModel('gru', [24, 4], 0);
  const rng = new Rng(7);
  const gw = initialWeights(tensorSpecs(gru), rng);
  const gx = Float32Array.from({ length: 300 * 96 }, () => rng.uniform(-2, 2));
  cases.push({
    name: 'gru',
    spec: gru,
    weights: gw,
    x: gx,
    n: 300,
    ours: await new EngineTrainer(gru, getKernels()).predict(gw, gx, 300),
  });
  const files: Record<string, Uint8Array> = { 'index.html': new TextEncoder().encode(PAGE) };
  for (const c of cases) {
    files[`${c.name}.onnx`] = exportOnnx(c.spec, c.weights);
    files[`${c.name}.bin`] = new Uint8Array(
      c.x.buffer,
      c.x.byteOffset,
      c.n * c.spec.inputShape.reduce((a, b) => a * b, 1) * 4,
    );
  }
  server = await serveStatic(ORT_DIST, files);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  page = await browser.newPage();
  await page.goto(server.url);
  await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true, undefined, {
    timeout: 60_000,
  });
});

after(async () => {
  await browser?.close();
  await server?.close();
});

for (const name of ['mlp', 'cnn', 'mobilenet', 'gru']) {
  test(`onnxruntime-web in Chromium runs the exported ${name} with the engine's predictions (within 1e-5)`, {
    skip,
    timeout: 300_000,
  }, async (t) => {
    const c = cases.find((k) => k.name === name)!;
    const theirs = await page.evaluate(
      ([n, dims]) =>
        (window as unknown as { runModel: (n: string, d: number[]) => Promise<number[]> }).runModel(n, dims),
      [c.name, [c.n, ...c.spec.inputShape]] as [string, number[]],
    );
    assert.equal(theirs.length, c.ours.length);
    let diff = 0;
    for (let i = 0; i < theirs.length; i++) diff = Math.max(diff, Math.abs(theirs[i] - c.ours[i]));
    t.diagnostic(`${c.n} samples: max |onnxruntime-web - engine| ${diff.toExponential(2)}`);
    assert.ok(diff <= 1e-5, `predictions differ by ${diff}`);
    assert.ok(
      server!.requests.some((r) => r.startsWith('200') && r.includes('.wasm')),
      'the wasm came from the local server',
    );
  });
}
