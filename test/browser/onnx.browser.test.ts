// Browser suite: the ONNX files `edgefed export` writes run in onnxruntime-web (its WASM backend, one
// thread) in headless Chromium and give the engine's predictions: the MLP, the McMahan CNN and the
// MobileNet-style model trained briefly on MNIST (1,000 test images) and the GRU forecaster; and the int8
// MLP and CNN (edgefed quantize, exported in QDQ form) with the int8 network's classes. onnxruntime-web's scripts and wasm files
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
import { builtinModel, initialWeights, tensorSpecs } from '../../src/model/spec.js';
import { EngineTrainer } from '../../src/model/engine-trainer.js';
import { getKernels } from '../../src/nn/kernels-select.js';
import { exportOnnx } from '../../src/model/onnx/export.js';
import { exportInt8Onnx } from '../../src/model/onnx/int8.js';
import { trainBriefly } from '../../src/model/onnx/brief-training.js';
import { quantizeModel } from '../../src/model/quantize-model.js';
import { Int8Runner } from '../../src/core/int8-net.js';

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
  onnx: Uint8Array;
  dims: number[];
  x: Float32Array;
  /** What EdgeFed predicts: the engine's outputs, or the int8 network's (core/int8-net.ts) for int8 files. */
  ours: Float32Array;
}

const cases: Case[] = [];
let server: StaticServer | null = null;
let browser: Browser | null = null;
let page: Page;

before(async () => {
  if (skip) return;
  const d = loadMnist();
  const firstRows = (n: number) => Array.from({ length: n }, (_, i) => i);
  const [train, test] = [subset(d.train, firstRows(256)), subset(d.test, firstRows(1000))];
  const dims = [test.n, 28, 28, 1];
  for (const name of ['mlp', 'cnn', 'mobilenet'] as const) {
    const spec = builtinModel(name, [28, 28, 1], 10);
    // The mobilenet takes a few steps only (its depthwise loops are plain TypeScript): enough to move its
    // batch-norm moving statistics.
    const weights = await trainBriefly(spec, name === 'mobilenet' ? subset(train, firstRows(96)) : train);
    const ours = await new EngineTrainer(spec, getKernels()).predict(weights, test.x, test.n);
    cases.push({ name, onnx: exportOnnx(spec, weights), dims, x: test.x, ours });
    if (name === 'mobilenet') continue;
    const { net } = quantizeModel(spec, weights, train, 256);
    const int8 = new Int8Runner(net).predict(test.x, test.n);
    cases.push({ name: `${name}-int8`, onnx: exportInt8Onnx(net, name), dims, x: test.x, ours: int8 });
  }
  const gru = builtinModel('gru', [24, 4], 0);
  const rng = new Rng(7);
  const gw = initialWeights(tensorSpecs(gru), rng);
  const gx = Float32Array.from({ length: 300 * 96 }, () => rng.uniform(-2, 2));
  const gruOurs = await new EngineTrainer(gru, getKernels()).predict(gw, gx, 300);
  cases.push({ name: 'gru', onnx: exportOnnx(gru, gw), dims: [300, 24, 4], x: gx, ours: gruOurs });
  const files: Record<string, Uint8Array> = { 'index.html': new TextEncoder().encode(PAGE) };
  for (const c of cases) {
    files[`${c.name}.onnx`] = c.onnx;
    files[`${c.name}.bin`] = new Uint8Array(c.x.buffer, c.x.byteOffset, c.dims.reduce((a, b) => a * b, 1) * 4);
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

async function runInBrowser(c: Case): Promise<number[]> {
  const theirs = await page.evaluate(
    ([n, dims]) => (window as unknown as { runModel: (n: string, d: number[]) => Promise<number[]> }).runModel(n, dims),
    [c.name, c.dims] as [string, number[]],
  );
  assert.equal(theirs.length, c.ours.length);
  assert.ok(
    server!.requests.some((r) => r.startsWith('200') && r.includes('.wasm')),
    'the wasm came from the local server',
  );
  return theirs;
}

for (const name of ['mlp', 'cnn', 'mobilenet', 'gru']) {
  test(`onnxruntime-web in Chromium runs the exported ${name} with the engine's predictions (within 1e-5)`, {
    skip,
    timeout: 300_000,
  }, async (t) => {
    const c = cases.find((k) => k.name === name)!;
    const theirs = await runInBrowser(c);
    let diff = 0;
    for (let i = 0; i < theirs.length; i++) diff = Math.max(diff, Math.abs(theirs[i] - c.ours[i]));
    t.diagnostic(`${c.dims[0]} samples: max |onnxruntime-web - engine| ${diff.toExponential(2)}`);
    assert.ok(diff <= 1e-5, `predictions differ by ${diff}`);
  });
}

for (const name of ['mlp-int8', 'cnn-int8']) {
  test(`onnxruntime-web in Chromium runs the exported int8 ${name.slice(0, 3)} (QDQ) with the int8 network's classes`, {
    skip,
    timeout: 300_000,
  }, async (t) => {
    const c = cases.find((k) => k.name === name)!;
    const theirs = await runInBrowser(c);
    let agree = 0;
    let diff = 0;
    for (let r = 0; r < c.dims[0]; r++) {
      const row = (v: ArrayLike<number>) => Array.from({ length: 10 }, (_, j) => v[r * 10 + j]);
      const [a, b] = [row(theirs), row(c.ours)];
      if (a.indexOf(Math.max(...a)) === b.indexOf(Math.max(...b))) agree++;
      for (let j = 0; j < 10; j++) diff = Math.max(diff, Math.abs(a[j] - b[j]));
    }
    t.diagnostic(`classes agree ${agree}/${c.dims[0]}; max |onnxruntime-web - int8 network| ${diff.toExponential(2)}`);
    // Requantisation rounds alike except within float32 error of a .5 tie (README, ONNX export).
    assert.ok(agree >= 995, `${agree} of ${c.dims[0]} classes agree`);
    assert.ok(diff < 1e-2, `probabilities differ by ${diff}`);
  });
}
