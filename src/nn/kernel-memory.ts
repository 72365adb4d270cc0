/**
 * Buffers for the engine that live where the kernels work best: plain Float32Arrays, or, with the
 * WebAssembly kernels (which have `alloc`), arrays inside wasm memory so every kernel call is zero-copy.
 * A wasm view is detached when the memory grows, so each buffer is a `Buf` whose `a` is re-taken by
 * `refresh()`; call it after any allocation (yours or another user's of the same kernels) and before
 * reading `a`. Buffers are never returned to the wasm bump allocator (it frees only all at once), so
 * owners allocate for their largest size once and reuse.
 *
 * BROWSER-SAFE: imports nothing from Node.
 */
import type { Kernels } from './kernels.js';
import type { WasmKernels } from './kernels-wasm.js';

/** The kernels as WasmKernels when they are the WebAssembly ones (they can allocate inside their memory). */
export function wasmOf(k: Kernels): WasmKernels | null {
  const c = k as Partial<WasmKernels>;
  return typeof c.alloc === 'function' &&
    typeof c.allocInt === 'function' &&
    typeof WebAssembly !== 'undefined' &&
    c.memory instanceof WebAssembly.Memory
    ? (k as WasmKernels)
    : null;
}

/** A buffer its owner keeps; `a` is re-taken when wasm memory grows. */
export interface Buf<T extends Float32Array | Int32Array> {
  a: T;
  off: number;
  len: number;
}

function track<T extends Float32Array | Int32Array>(list: Buf<T>[], a: T): Buf<T> {
  const b = { a, off: a.byteOffset, len: a.length };
  list.push(b);
  return b;
}

/** Plain arrays, or (wasm kernels) arrays inside wasm memory whose views follow memory growth. */
export class KernelMemory {
  private gen: number;
  private f: Buf<Float32Array>[] = [];
  private i: Buf<Int32Array>[] = [];
  readonly wasm: WasmKernels | null;

  constructor(kernels: Kernels) {
    this.wasm = wasmOf(kernels);
    this.gen = this.wasm ? this.wasm.generation : 0;
  }

  f32(len: number): Buf<Float32Array> {
    if (!this.wasm) return { a: new Float32Array(len), off: 0, len };
    return track(this.f, this.wasm.alloc(len));
  }

  i32(len: number): Buf<Int32Array> {
    if (!this.wasm) return { a: new Int32Array(len), off: 0, len };
    return track(this.i, this.wasm.allocInt(len));
  }

  /** Stops tracking buffers being replaced (their wasm memory stays allocated). */
  drop(bufs: (Buf<Float32Array> | Buf<Int32Array> | null)[]): void {
    if (!this.wasm) return;
    const gone = new Set<unknown>(bufs);
    this.f = this.f.filter((b) => !gone.has(b));
    this.i = this.i.filter((b) => !gone.has(b));
  }

  /** Re-takes every view after wasm memory grew (which detaches them). */
  refresh(): void {
    if (!this.wasm) return;
    const g = this.wasm.generation;
    if (g === this.gen) return;
    const buffer = this.wasm.memory.buffer;
    for (const b of this.f) b.a = new Float32Array(buffer, b.off, b.len);
    for (const b of this.i) b.a = new Int32Array(buffer, b.off, b.len);
    this.gen = g;
  }

  inside(x: Float32Array | Int32Array): boolean {
    return this.wasm !== null && x.buffer === this.wasm.memory.buffer;
  }
}
