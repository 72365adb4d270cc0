/** Helpers the browser pages share: DOM lookup, fetching bytes, choosing the training kernels. */
import { createWasmKernels, wasmSimdSupported } from '../../src/nn/kernels-wasm.js';
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
 * The wasm SIMD kernels (query parameter wasm, default kernels.wasm next to the bundle), or the TypeScript
 * kernels when this browser lacks WebAssembly SIMD or the URL says kernels=js.
 */
export async function chooseKernels(params: URLSearchParams): Promise<{ kernels: Kernels; note: string }> {
  if (params.get('kernels') === 'js') return { kernels: jsKernels, note: 'js requested by the page URL' };
  if (typeof WebAssembly !== 'object' || !wasmSimdSupported()) {
    return { kernels: jsKernels, note: 'WebAssembly SIMD is not supported by this browser: TypeScript kernels' };
  }
  const url = new URL(params.get('wasm') ?? 'kernels.wasm', location.href).href;
  const bytes = await fetchBytes(url);
  const kernels = await createWasmKernels(bytes);
  return { kernels, note: `WebAssembly SIMD kernels from ${url} (${bytes.byteLength} bytes)` };
}
