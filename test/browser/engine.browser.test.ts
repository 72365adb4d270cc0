// Browser suite: the training engine in a real browser. Builds the engine-check page
// (scripts/build-web.mjs), serves it and an MNIST slice on 127.0.0.1, opens it in Debian's headless
// Chromium through playwright-core, and checks that the seed MLP trains there on the WebAssembly SIMD
// kernels to the accuracy it reaches in Node with the same kernels, seed and data (the engine is
// deterministic, so the two runs should agree bit for bit). Saves test-artifacts/engine-check.png.
// Needs /usr/bin/chromium (apt-get install chromium); skipped with a message when it is absent.
// The page is served cross-origin isolated (COOP/COEP), so it must pick the relaxed-SIMD build with one
// thread per core; a second load with threads=1 measures what the threads bring. The MLP's SGD throughput
// (wall clock, every core the page uses) is compared with NumPy's one-core samples/s measured by this test
// (../shared/bench/np_mlp_ref.py, as bench:train runs it) and written to bench/results/browser-engine.{md,json}.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { spawnSync } from 'node:child_process';
import { loadMnist, mnistDir } from '../../src/data/mnist.js';
import { sharedBenchFile } from '../../bench/shared-reference.js';
import { machine, environmentLines, writeAtomic } from '../../bench/support/results-io.js';
import { createWasmKernels } from '../../src/nn/kernels-wasm.js';
import {
  decodeSlice,
  encodeSlice,
  headRows,
  runEngineCheck,
  SGD_LR,
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

/** NumPy's one-core samples/s for the seed MLP with SGD (bench:train's mlp-sgd-b32 settings), or why not. */
function numpySgd(batch: number): { samplesPerSecond: number; testAccuracy: number } | { error: string } {
  const ref = sharedBenchFile('np_mlp_ref.py');
  if (!existsSync(ref)) return { error: `${ref} is missing` };
  const args = [ref, mnistDir(), '--hidden', '128', '--batch', String(batch), '--optimizer', 'sgd'];
  const r = spawnSync('python3', [...args, '--lr', String(SGD_LR), '--seed', '1'], {
    encoding: 'utf8',
    env: { ...process.env, OPENBLAS_NUM_THREADS: '1' },
    timeout: 300_000,
  });
  const line = r.stdout?.split('\n').find((l) => l.includes('samples_per_s'));
  if (!line) return { error: `python3: ${(r.error?.message ?? r.stderr ?? '').trim().split('\n').slice(-1)[0]}` };
  const j = JSON.parse(line) as { samples_per_s: number; test_accuracy: number };
  return { samplesPerSecond: j.samples_per_s, testAccuracy: j.test_accuracy };
}

/** Opens the page at `query` and returns what it published (throws with the console on failure). */
async function openPage(browser: Browser, server: StaticServer, query: string, screenshot: string | null) {
  const consoleLines: string[] = [];
  const tab = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  tab.on('console', (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
  tab.on('pageerror', (e) => consoleLines.push(`[pageerror] ${e.message}`));
  const started = Date.now();
  try {
    await tab.goto(`${server.url}index.html?${query}`);
    const handle = await tab.waitForFunction(() => window.__edgefedResult, undefined, {
      timeout: RESULT_TIMEOUT_MS,
      polling: 250,
    });
    const page = (await handle.jsonValue()) as PageResult;
    if (screenshot) {
      mkdirSync(ARTIFACTS, { recursive: true });
      await tab.screenshot({ path: join(ARTIFACTS, screenshot), fullPage: true });
    }
    return { page, consoleLines, wallSeconds: (Date.now() - started) / 1000 };
  } catch (e) {
    const diag = `\nbrowser console:\n${consoleLines.join('\n')}\nrequests:\n${server.requests.join('\n')}`;
    throw new Error(`${e instanceof Error ? e.message : String(e)}${diag}`, { cause: e });
  } finally {
    await tab.close();
  }
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
  let run: Awaited<ReturnType<typeof openPage>>;
  let oneThread: Awaited<ReturnType<typeof openPage>>;
  try {
    server = await serveStatic(DIST, { 'data/mnist-slice.bin': slice }, { crossOriginIsolated: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    run = await openPage(browser, server, `cnn=${CNN_SAMPLES}`, 'engine-check.png');
    oneThread = await openPage(browser, server, 'cnn=0&threads=1', null);
  } finally {
    await browser?.close();
    await server?.close();
  }
  const { page, consoleLines, wallSeconds } = run;
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

  // Which build ran: relaxed SIMD (Chromium has it since 114), one thread per core on an isolated page.
  assert.equal(page.crossOriginIsolated, true, 'the page served with COOP/COEP is not cross-origin isolated');
  const cores = page.hardwareConcurrency;
  const expected = `wasm-simd-relaxed${cores > 1 ? `-mt${cores}` : ''}`;
  assert.equal(b.kernels, expected, `the browser ran the ${b.kernels} kernels: ${page.kernelsNote}`);
  const solo = oneThread.page;
  assert.ok(solo.ok, `the threads=1 page failed: ${solo.ok ? '' : solo.error}`);
  assert.equal(solo.kernels, 'wasm-simd-relaxed', `threads=1 ran ${solo.kernels}`);
  // Threads split gemm without changing a bit; the relaxed build may differ from Node's plain build.
  assert.ok(b.sgd && solo.sgd && n.sgd, 'the SGD measurement is missing');
  assert.equal(b.sgd.weightsFnv, solo.sgd.weightsFnv, `${cores} threads and 1 thread trained different weights`);
  assert.ok(
    Math.abs(b.sgd.testAccuracy - n.sgd.testAccuracy) <= 0.005,
    `browser SGD accuracy ${b.sgd.testAccuracy} vs node ${n.sgd.testAccuracy}`,
  );
  writeBrowserResults(page, solo, n, numpySgd(b.mlp.batchSize));
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

/** bench/results/browser-engine.{json,md}: the browser's SGD throughput against NumPy's, measured in this run. */
function writeBrowserResults(
  page: Extract<PageResult, { ok: true }>,
  solo: Extract<PageResult, { ok: true }>,
  node: EngineCheckResult,
  numpy: ReturnType<typeof numpySgd>,
): void {
  const m = machine();
  const np = 'error' in numpy ? null : numpy;
  const ratio = (x: number) => (np ? Math.round((x / np.samplesPerSecond) * 100) / 100 : null);
  const rows = [
    { engine: `Chromium, ${page.kernels}`, threads: page.hardwareConcurrency, sgd: page.sgd! },
    { engine: `Chromium, ${solo.kernels}`, threads: 1, sgd: solo.sgd! },
    { engine: `Node, ${node.kernels}`, threads: 1, sgd: node.sgd! },
  ].map((r) => ({
    engine: r.engine,
    samples_per_s: Math.round(r.sgd.samplesPerSecond),
    vs_numpy: ratio(r.sgd.samplesPerSecond),
    test_accuracy: r.sgd.testAccuracy,
    weights_fnv: r.sgd.weightsFnv,
  }));
  const json = {
    bench: 'browser-engine',
    what: `seed MLP 784-128-10, SGD lr ${SGD_LR}, B=${page.sgd!.batchSize}, 1 epoch on ${page.sgd!.trainSamples} MNIST rows, wall clock`,
    user_agent: page.userAgent,
    cross_origin_isolated: page.crossOriginIsolated,
    hardware_concurrency: page.hardwareConcurrency,
    kernels_note: page.kernelsNote,
    numpy: np
      ? { samples_per_s: Math.round(np.samplesPerSecond), test_accuracy: np.testAccuracy, threads: 1, samples: 60000 }
      : numpy,
    rows,
    machine: m,
    finished_at: new Date().toISOString(),
  };
  const dir = join(ROOT, 'bench', 'results');
  writeAtomic(join(dir, 'browser-engine.json'), `${JSON.stringify(json, null, 2)}\n`);
  const md = [
    '# WASM engine in Chromium vs NumPy (one core), same session',
    '',
    `${json.what}; NumPy: ../shared/bench/np_mlp_ref.py, one OpenBLAS thread, 60,000 rows, same settings.`,
    'Written by test/browser/engine.browser.test.ts (`node --import tsx --test test/browser/engine.browser.test.ts`).',
    '',
    '| engine | threads | samples/s | vs NumPy | test accuracy |',
    '| --- | --- | --- | --- | --- |',
    ...rows.map(
      (r, i) =>
        `| ${r.engine} | ${i === 0 ? page.hardwareConcurrency : 1} | ${fmt(r.samples_per_s)} | ${r.vs_numpy ?? '-'}x | ${r.test_accuracy} |`,
    ),
    `| NumPy (OpenBLAS, 1 thread) | 1 | ${np ? fmt(np.samplesPerSecond) : `not run: ${'error' in numpy ? numpy.error : ''}`} | 1x | ${np?.testAccuracy ?? '-'} |`,
    '',
    `Browser: ${page.userAgent}; cross-origin isolated ${page.crossOriginIsolated}; kernels: ${page.kernelsNote}.`,
    ...environmentLines(m).map((l) => `- ${l}`),
    '',
  ].join('\n');
  writeAtomic(join(dir, 'browser-engine.md'), md);
  console.log(md);
}
