// Browser suite: the GRU and the MobileNet-style model (depthwise / separable convolutions, BatchNormalization,
// global average pooling) train in headless Chromium on the WebAssembly kernels. The page (vision-page.ts,
// bundled here with esbuild) runs a few full-batch steps of each (vision-train-check.ts); the loss must fall,
// and match the same steps in Node on the same wasm module. Needs /usr/bin/chromium; skipped without it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium, type Browser } from 'playwright-core';
import { createWasmKernels } from '../../src/nn/kernels-wasm.js';
import { CHROMIUM, CHROMIUM_ARGS, chromiumMissing, serveStatic, type StaticServer } from './serve.js';
import { CHECK_STEPS, runVisionTrainCheck, type VisionTrainCheck } from './vision-train-check.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WASM = join(ROOT, 'wasm', 'build', 'kernels.wasm');
const INDEX =
  '<!doctype html><meta charset="utf-8"><title>vision check</title><script type="module" src="main.js"></script>';

test('the GRU and the MobileNet-style model train in headless Chromium on the wasm kernels, as in Node', {
  skip: chromiumMissing,
  timeout: 600_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-vision-page-'));
  let server: StaticServer | null = null;
  let browser: Browser | null = null;
  const consoleLines: string[] = [];
  let page: Window['__edgefedVision'];
  try {
    await build({
      entryPoints: [join(ROOT, 'test', 'browser', 'vision-page.ts')],
      outfile: join(dir, 'main.js'),
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      logLevel: 'silent',
    });
    server = await serveStatic(dir, {
      'index.html': new TextEncoder().encode(INDEX),
      'kernels.wasm': readFileSync(WASM),
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    const tab = await browser.newPage();
    tab.on('console', (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
    tab.on('pageerror', (e) => consoleLines.push(`[pageerror] ${e.message}`));
    await tab.goto(`${server.url}index.html`);
    const handle = await tab.waitForFunction(() => window.__edgefedVision, undefined, {
      timeout: 300_000,
      polling: 250,
    });
    page = (await handle.jsonValue()) as Window['__edgefedVision'];
  } catch (e) {
    const diag = `\nbrowser console:\n${consoleLines.join('\n')}\nrequests:\n${server?.requests.join('\n') ?? ''}`;
    throw new Error(`${e instanceof Error ? e.message : String(e)}${diag}`, { cause: e });
  } finally {
    await browser?.close();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  }
  assert.ok(page, 'the page published no result');
  assert.ok(page.ok, `the page failed: ${page.ok ? '' : page.error}\n${consoleLines.join('\n')}`);
  const b: VisionTrainCheck = page.result;
  const n = await runVisionTrainCheck(await createWasmKernels(readFileSync(WASM)));
  const fmt = (l: number[]) => l.map((v) => v.toFixed(4)).join(' ');
  console.log(`browser (${b.kernels}) gru loss per step:       ${fmt(b.gru)}`);
  console.log(`node    (${n.kernels}) gru loss per step:       ${fmt(n.gru)}`);
  console.log(`browser (${b.kernels}) mobilenet loss per step: ${fmt(b.mobilenet)}`);
  console.log(`node    (${n.kernels}) mobilenet loss per step: ${fmt(n.mobilenet)}`);
  assert.equal(b.kernels, n.kernels, 'the browser ran other kernels than Node');
  assert.match(b.kernels, /^wasm/);
  for (const model of ['gru', 'mobilenet'] as const) {
    const [bl, nl] = [b[model], n[model]];
    assert.equal(bl.length, CHECK_STEPS);
    assert.ok(bl.every(Number.isFinite), `${model}: a browser loss is not finite`);
    assert.ok(bl[CHECK_STEPS - 1] < bl[0], `${model}: the browser loss did not fall (${fmt(bl)})`);
    // same wasm module, code, seed and data: only Math.exp/tanh may differ between V8 builds
    for (let i = 0; i < CHECK_STEPS; i++)
      assert.ok(Math.abs(bl[i] - nl[i]) <= 1e-4 * Math.max(1, nl[i]), `${model} step ${i}: ${bl[i]} vs ${nl[i]}`);
  }
});
