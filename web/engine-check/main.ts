/**
 * The engine-check page: proves the training engine runs in a browser. Fetches an MNIST slice and the
 * wasm kernels from the server that serves this page, trains through EngineTrainer (check.ts), and
 * publishes the result as `window.__edgefedResult` and in the DOM (#status, #result, #log).
 *
 * Query parameters (all optional): data (default data/mnist-slice.bin), wasm (default kernels.wasm,
 * next to the bundle), cnn (samples for the CNN, default 256; 0 skips it), batch (MLP batch, default 32),
 * kernels=js (force the TypeScript kernels), build=simd|relaxed and threads=N (see chooseKernels in
 * web/shared/page.ts; by default the relaxed build where supported, and every core when the page is
 * cross-origin isolated).
 *
 * Bundled by scripts/build-web.mjs; must not import anything that reaches Node or tfjs.
 */
import { chooseKernels, el, fetchBytes } from '../shared/page.js';
import { decodeSlice, runEngineCheck, type EngineCheckResult } from './check.js';

/** What the page publishes: the check's result plus how the kernels were chosen, or the error that stopped it. */
export type PageResult =
  | (EngineCheckResult & {
      ok: true;
      kernelsNote: string;
      userAgent: string;
      dataSeconds: number;
      /** Whether the page got COOP/COEP (SharedArrayBuffer, wasm threads) and how many cores it reports. */
      crossOriginIsolated: boolean;
      hardwareConcurrency: number;
    })
  | { ok: false; error: string; userAgent: string };

declare global {
  interface Window {
    __edgefedResult?: PageResult;
  }
}

const params = new URLSearchParams(location.search);

function log(line: string): void {
  const stamp = (performance.now() / 1000).toFixed(2).padStart(7);
  el('log').textContent += `${stamp}s  ${line}\n`;
  console.log(line);
}

function intParam(name: string, fallback: number): number {
  const v = params.get(name);
  if (v === null || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`query parameter ${name} must be a whole number >= 0, got '${v}'`);
  return n;
}

function show(result: PageResult): void {
  window.__edgefedResult = result;
  const status = el('status');
  status.dataset.state = result.ok ? 'done' : 'error';
  if (!result.ok) {
    status.textContent = `Failed: ${result.error}`;
    return;
  }
  const { mlp, cnn } = result;
  status.textContent = `Done: ${result.kernels} kernels, ${Math.round(result.samplesPerSecond)} samples/s, accuracy ${(100 * result.accuracy).toFixed(2)}%`;
  const rows: [string, string][] = [
    ['kernels', `${result.kernels} (${result.kernelsNote})`],
    [
      'MLP training',
      `1 epoch, ${mlp.trainSamples} samples, batch ${mlp.batchSize}, ${mlp.steps} Adam steps in ${mlp.trainSeconds.toFixed(2)} s`,
    ],
    ['MLP samples/s', Math.round(mlp.samplesPerSecond).toString()],
    ['MLP train loss / accuracy', `${mlp.trainLoss.toFixed(4)} / ${mlp.trainAccuracy.toFixed(4)}`],
    ['MLP test loss / accuracy', `${mlp.testLoss.toFixed(4)} / ${mlp.testAccuracy.toFixed(4)} on ${mlp.testSamples}`],
    ['MLP weights (FNV-1a)', mlp.weightsFnv],
    ['page', `cross-origin isolated: ${result.crossOriginIsolated}, ${result.hardwareConcurrency} cores reported`],
  ];
  if (result.sgd) {
    const g = result.sgd;
    rows.push([
      'MLP SGD samples/s',
      `${Math.round(g.samplesPerSecond)} (1 epoch, lr ${g.lr}, batch ${g.batchSize}, ${g.trainSeconds.toFixed(2)} s, accuracy ${g.testAccuracy.toFixed(4)})`,
    ]);
  }
  if (cnn.status === 'trained') {
    rows.push(
      [
        'CNN',
        `${cnn.samples} samples, batch ${cnn.batchSize}, ${cnn.trainSeconds.toFixed(2)} s, ${Math.round(cnn.samplesPerSecond)} samples/s`,
      ],
      [
        'CNN loss',
        `${cnn.lossBefore.toFixed(4)} -> ${cnn.lossAfter.toFixed(4)} (batches: ${cnn.batchLosses.map((l) => l.toFixed(3)).join(', ')})`,
      ],
    );
  } else {
    rows.push(['CNN', cnn.status === 'unsupported' ? `not trainable on the engine: ${cnn.reason}` : 'skipped']);
  }
  const table = el('result');
  table.replaceChildren(
    ...rows.map(([k, v]) => {
      const tr = document.createElement('tr');
      const th = document.createElement('th');
      const td = document.createElement('td');
      th.textContent = k;
      td.textContent = v;
      tr.append(th, td);
      return tr;
    }),
  );
}

async function main(): Promise<void> {
  const userAgent = navigator.userAgent;
  try {
    const cnnSamples = intParam('cnn', 256);
    const batchSize = intParam('batch', 32);
    const { kernels, note } = await chooseKernels(params);
    log(`kernels: ${kernels.name} (${note})`);
    const dataUrl = new URL(params.get('data') ?? 'data/mnist-slice.bin', location.href).href;
    const t0 = performance.now();
    const data = decodeSlice(await fetchBytes(dataUrl), dataUrl);
    const dataSeconds = (performance.now() - t0) / 1000;
    log(`data: ${data.train.n} train + ${data.test.n} test rows in ${dataSeconds.toFixed(2)} s`);
    el('status').textContent = 'Training...';
    // Let the browser paint the status before the (synchronous) training loops take the main thread.
    await new Promise((r) => setTimeout(r, 0));
    const result = await runEngineCheck(kernels, data, { seed: 1, batchSize, cnnSamples, log });
    show({
      ...result,
      ok: true,
      kernelsNote: note,
      userAgent,
      dataSeconds,
      crossOriginIsolated: globalThis.crossOriginIsolated === true,
      hardwareConcurrency: navigator.hardwareConcurrency,
    });
  } catch (e) {
    const error = e instanceof Error ? `${e.message}${e.stack ? `\n${e.stack}` : ''}` : String(e);
    log(`error: ${error}`);
    show({ ok: false, error, userAgent });
  }
}

void main();
