/**
 * The page the vision browser test bundles (esbuild, in the test): loads kernels.wasm from its own server,
 * runs vision-train-check.ts on the WebAssembly kernels and publishes the result as window.__edgefedVision.
 */
import { createWasmKernels } from '../../src/nn/kernels-wasm.js';
import { runVisionTrainCheck, type VisionTrainCheck } from './vision-train-check.js';

declare global {
  interface Window {
    __edgefedVision?: { ok: true; result: VisionTrainCheck } | { ok: false; error: string };
  }
}

try {
  const bytes = await (await fetch(new URL('kernels.wasm', location.href))).arrayBuffer();
  const result = await runVisionTrainCheck(await createWasmKernels(bytes));
  window.__edgefedVision = { ok: true, result };
} catch (e) {
  window.__edgefedVision = { ok: false, error: e instanceof Error ? `${e.message}\n${e.stack}` : String(e) };
}
