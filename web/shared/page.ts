/** Helpers the browser pages share: DOM lookup, fetching bytes, choosing the training kernels. */
import {
  createWasmKernels,
  wasmRelaxedSimdSupported,
  wasmSimdSupported,
  wasmThreadsSupported,
} from '../../src/nn/kernels-wasm.js';
import { createThreadedWasmKernels, spawnWebWorker } from '../../src/nn/kernels-wasm-threads.js';
import { jsKernels } from '../../src/nn/kernels-js.js';
import type { Kernels } from '../../src/nn/kernels.js';

export function el<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`the page has no #${id}`);
  return e as T;
}

export async function fetchBytes(url: string, headers: Record<string, string> = {}): Promise<ArrayBuffer> {
  const res = await fetch(url, { headers });
  if (!res.ok) {
    const body = await res.text().catch(() => '');
    throw new Error(`GET ${url}: HTTP ${res.status} ${res.statusText}${body ? `: ${body.slice(0, 300)}` : ''}`);
  }
  return res.arrayBuffer();
}

/**
 * The training kernels for this page. By feature detection: the relaxed-SIMD build (kernels-relaxed.wasm)
 * where the engine compiles relaxed SIMD, else the SIMD build (kernels.wasm); on a cross-origin isolated
 * page (COOP/COEP headers) the shared-memory build of the same, with every core (navigator.hardwareConcurrency)
 * splitting the large gemms between Web Workers; the TypeScript kernels when the browser lacks WebAssembly
 * SIMD. Query parameters: kernels=js (TypeScript kernels), build=simd|relaxed (force one), threads=N (N >= 1,
 * at most what the page can use), wasm=URL (exactly this single-thread module).
 */
export async function chooseKernels(params: URLSearchParams): Promise<{ kernels: Kernels; note: string }> {
  if (params.get('kernels') === 'js') return { kernels: jsKernels, note: 'js requested by the page URL' };
  if (typeof WebAssembly !== 'object' || !wasmSimdSupported()) {
    return { kernels: jsKernels, note: 'WebAssembly SIMD is not supported by this browser: TypeScript kernels' };
  }
  const explicit = params.get('wasm');
  if (explicit !== null) {
    const url = new URL(explicit, location.href).href;
    const bytes = await fetchBytes(url);
    return {
      kernels: await createWasmKernels(bytes),
      note: `${url} as the page URL asked (${bytes.byteLength} bytes)`,
    };
  }
  const build = params.get('build');
  if (build !== null && build !== 'simd' && build !== 'relaxed')
    throw new Error(`query parameter build must be simd or relaxed, got '${build}'`);
  const relaxedHere = wasmRelaxedSimdSupported();
  if (build === 'relaxed' && !relaxedHere) throw new Error('build=relaxed: this browser does not support relaxed SIMD');
  const relaxed = build === null ? relaxedHere : build === 'relaxed';
  const why = [
    build !== null
      ? `${build} build requested by the page URL`
      : relaxed
        ? 'relaxed SIMD supported'
        : 'relaxed SIMD not supported: plain SIMD build',
  ];
  const cores = Math.max(1, navigator.hardwareConcurrency || 1);
  const threadsParam = params.get('threads');
  let threads = wasmThreadsSupported() ? cores : 1;
  if (threadsParam !== null) {
    const t = Number(threadsParam);
    if (!Number.isInteger(t) || t < 1)
      throw new Error(`query parameter threads must be a whole number >= 1, got '${threadsParam}'`);
    if (t > 1 && !wasmThreadsSupported())
      throw new Error(`threads=${t}: this page cannot share wasm memory (it is not cross-origin isolated)`);
    threads = t;
    why.push(`${t} thread(s) requested by the page URL`);
  } else {
    why.push(
      wasmThreadsSupported()
        ? `cross-origin isolated: ${threads} thread(s), one per core`
        : 'not cross-origin isolated (no COOP/COEP headers): one thread',
    );
  }
  const file = `kernels${relaxed ? '-relaxed' : ''}${threads > 1 ? '-shared' : ''}.wasm`;
  const url = new URL(file, location.href).href;
  const bytes = await fetchBytes(url);
  const kernels =
    threads > 1 ? await createThreadedWasmKernels(bytes, threads, spawnWebWorker) : await createWasmKernels(bytes);
  return { kernels, note: `${file} (${bytes.byteLength} bytes): ${why.join('; ')}` };
}
