// Browser suite: the training engine in a real browser. Builds the engine-check page
// (scripts/build-web.mjs), serves it and an MNIST slice on 127.0.0.1, opens it in Debian's headless
// Chromium through playwright-core, and checks that the seed MLP trains there on the WebAssembly SIMD
// kernels to the accuracy it reaches in Node with the same kernels, seed and data (the engine is
// deterministic, so the two runs should agree bit for bit). Saves test-artifacts/engine-check.png.
// Needs /usr/bin/chromium (apt-get install chromium); skipped with a message when it is absent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { loadMnist } from '../../src/data/mnist.js';
import { createWasmKernels } from '../../src/nn/kernels-wasm.js';
import {
  decodeSlice,
  encodeSlice,
  headRows,
  runEngineCheck,
  type EngineCheckResult,
} from '../../web/engine-check/check.js';
import type { PageResult } from '../../web/engine-check/main.js';
import { buildWebPage, CHROMIUM, CHROMIUM_ARGS, chromiumMissing, serveStatic, type StaticServer } from './serve.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DIST = join(ROOT, 'web', 'engine-check', 'dist');
const WASM = join(ROOT, 'wasm', 'build', 'kernels.wasm');
const ARTIFACTS = join(ROOT, 'test-artifacts');
const TRAIN_ROWS = 6000;
const TEST_ROWS = 1000;
const CNN_SAMPLES = 256;
const RESULT_TIMEOUT_MS = 180_000;
const skip = chromiumMissing;

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

test('the engine trains the seed MLP in headless Chromium on wasm SIMD kernels, as it does in Node', {
  skip,
  timeout: 600_000,
}, async () => {
  console.log(buildWebPage('engine-check'));

  const mnist = loadMnist();
  const slice = encodeSlice({ train: headRows(mnist.train, TRAIN_ROWS), test: headRows(mnist.test, TEST_ROWS) });

  let server: StaticServer | null = null;
  let browser: Browser | null = null;
  let page: PageResult | undefined;
  const consoleLines: string[] = [];
  let wallSeconds = 0;
  try {
    server = await serveStatic(DIST, { 'data/mnist-slice.bin': slice });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    const tab = await browser.newPage({ viewport: { width: 1100, height: 800 } });
    tab.on('console', (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
    tab.on('pageerror', (e) => consoleLines.push(`[pageerror] ${e.message}`));
    const started = Date.now();
    await tab.goto(`${server.url}index.html?cnn=${CNN_SAMPLES}`);
    const handle = await tab.waitForFunction(() => window.__edgefedResult, undefined, {
      timeout: RESULT_TIMEOUT_MS,
      polling: 250,
    });
    page = (await handle.jsonValue()) as PageResult;
    wallSeconds = (Date.now() - started) / 1000;
    mkdirSync(ARTIFACTS, { recursive: true });
    await tab.screenshot({ path: join(ARTIFACTS, 'engine-check.png'), fullPage: true });
  } catch (e) {
    const diag = `\nbrowser console:\n${consoleLines.join('\n')}\nrequests:\n${server?.requests.join('\n') ?? ''}`;
    throw new Error(`${e instanceof Error ? e.message : String(e)}${diag}`, { cause: e });
  } finally {
    await browser?.close();
    await server?.close();
  }

  assert.ok(page, 'the page published no result');
  assert.ok(page.ok, `the page failed: ${page.ok ? '' : page.error}\nbrowser console:\n${consoleLines.join('\n')}`);
  const b: EngineCheckResult = page;
  console.log(
    `browser (${page.userAgent}): ${page.kernelsNote}; page done in ${wallSeconds.toFixed(1)} s (slice fetched in ${page.dataSeconds.toFixed(2)} s)`,
  );
  console.log(
    `browser mlp: ${fmt(b.mlp.samplesPerSecond)} samples/s (${b.mlp.trainSeconds.toFixed(2)} s for ${b.mlp.trainSamples}), ` +
      `test accuracy ${b.mlp.testAccuracy}, loss ${b.mlp.testLoss.toFixed(5)}, weights ${b.mlp.weightsFnv}`,
  );

  // The same training in Node: same wasm module, same code (check.ts), same seed, same bytes of data.
  const kernels = await createWasmKernels(readFileSync(WASM));
  const n = await runEngineCheck(kernels, decodeSlice(slice.buffer.slice(0), 'node-slice'), {
    seed: 1,
    batchSize: b.mlp.batchSize,
    cnnSamples: CNN_SAMPLES,
  });
  console.log(
    `node mlp:    ${fmt(n.mlp.samplesPerSecond)} samples/s (${n.mlp.trainSeconds.toFixed(2)} s), ` +
      `test accuracy ${n.mlp.testAccuracy}, loss ${n.mlp.testLoss.toFixed(5)}, weights ${n.mlp.weightsFnv}`,
  );
  for (const [who, r] of [
    ['browser', b],
    ['node', n],
  ] as const) {
    if (r.cnn.status === 'trained') {
      console.log(
        `${who} cnn: ${fmt(r.cnn.samplesPerSecond)} samples/s, loss ${r.cnn.lossBefore.toFixed(4)} -> ${r.cnn.lossAfter.toFixed(4)}, ` +
          `batches ${r.cnn.batchLosses.map((l) => l.toFixed(3)).join(' ')}, weights ${r.cnn.weightsFnv}`,
      );
    } else {
      console.log(`${who} cnn: ${r.cnn.status}${r.cnn.status === 'unsupported' ? ` (${r.cnn.reason})` : ''}`);
    }
  }

  assert.equal(b.kernels, 'wasm-simd', `the browser ran the ${b.kernels} kernels: ${page.kernelsNote}`);
  assert.equal(b.mlp.trainSamples, TRAIN_ROWS);
  assert.equal(b.mlp.testSamples, TEST_ROWS);
  assert.ok(
    b.accuracy >= 0.85,
    `browser test accuracy ${b.accuracy} after 1 epoch on ${TRAIN_ROWS} samples, expected >= 0.85`,
  );
  if (b.mlp.testAccuracy === n.mlp.testAccuracy && b.mlp.weightsFnv === n.mlp.weightsFnv) {
    console.log('browser and node trained bit-identical weights');
  } else {
    console.log(
      `browser and node differ: accuracy ${b.mlp.testAccuracy} vs ${n.mlp.testAccuracy}, weights ${b.mlp.weightsFnv} vs ${n.mlp.weightsFnv}`,
    );
  }
  assert.ok(
    Math.abs(b.mlp.testAccuracy - n.mlp.testAccuracy) <= 0.002,
    `browser accuracy ${b.mlp.testAccuracy} vs node ${n.mlp.testAccuracy} (same kernels, seed and data)`,
  );

  assert.equal(b.cnn.status, n.cnn.status, 'the CNN ran on the engine in one runtime but not the other');
  if (b.cnn.status === 'trained' && n.cnn.status === 'trained') {
    assert.equal(b.cnn.samples, CNN_SAMPLES);
    assert.ok(
      b.cnn.lossAfter < b.cnn.lossBefore,
      `browser CNN loss did not decrease: ${b.cnn.lossBefore} -> ${b.cnn.lossAfter}`,
    );
    assert.ok(
      Math.abs(b.cnn.lossAfter - n.cnn.lossAfter) <= 1e-3 * Math.max(1, Math.abs(n.cnn.lossAfter)),
      `browser CNN loss ${b.cnn.lossAfter} vs node ${n.cnn.lossAfter}`,
    );
  }
});
