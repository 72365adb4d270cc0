/**
 * The `Kernels` in WebAssembly with SIMD (wasm/kernels.ts, AssemblyScript, built by
 * scripts/build-wasm.mjs into wasm/build/kernels.wasm): the portable fast path for browsers and for
 * Node without the native addon. BROWSER-SAFE: this file imports nothing from Node; Node code loads
 * the module with `loadWasmKernelsNode()` from kernels-wasm-node.ts.
 *
 * Semantics, validation and error messages are those of kernels-js.ts (the validation helpers are
 * duplicated below because kernels-js.ts does not export them): elementwise kernels give the same
 * bits as the JS kernels, gemm and softmaxXent agree to rounding (gemm accumulates in float32 SIMD
 * lanes, like BLAS; the alpha/beta epilogue is float64 like the JS kernel).
 *
 * Memory. Every kernel accepts any Float32Array / Int32Array:
 * - arrays that are views of the module's memory (`arr.buffer === kernels.memory.buffer`, e.g. from
 *   `alloc`) are used in place: zero copy, the fast path;
 * - other arrays are copied into a scratch region of wasm memory, and the outputs copied back: correct
 *   but slower. Large arrays go through the scratch in blocks, so this does not grow memory unless a
 *   single row (or, for gemm, one column block of B) is larger than the scratch (`scratchBytes`).
 * `alloc`/`allocInt` are a bump allocator over the memory, freed all at once by `reset()`. When the
 * memory grows (alloc past its end, rarely a copying call as above) every existing view of it is
 * DETACHED (length 0 and byteOffset 0; kernels then reject it as too short) and `generation`
 * increments. Callers that keep views must record each view's byteOffset and length when they get it,
 * check `generation` after alloc (or such a call), and re-take their views with
 * `new Float32Array(kernels.memory.buffer, byteOffset, length)`: the data is still there.
 * Growth is in large steps (at least +50% or +16 MiB), so it is rare; allocating everything up front
 * avoids it entirely.
 *
 * Aliasing: softmaxXent may write delta over logits (delta === logits), and identical arrays behave as
 * in the JS kernels; other partial overlaps between arguments are not supported (gemm rejects them).
 */
import type { Kernels } from './kernels.js';
import {
  describe,
  checkAdam,
  checkBiasAct,
  checkColSum,
  checkGemm,
  checkReluBackward,
  checkSgd,
  checkSoftmaxXent,
  gemmWithoutProducts,
} from './kernel-checks.js';

/**
 * The build that runs, and how many threads share its gemm: 'wasm-simd' (plain SIMD),
 * 'wasm-simd-relaxed' (relaxed SIMD: the gemm's multiply-add may be fused, so results can differ in the
 * last bits from the plain build and between CPUs), with '-mtN' when N threads split each large gemm
 * (bit-identical to one thread: see kernels-wasm-threads.ts).
 */
export type WasmKernelsName = `wasm-simd${'' | '-relaxed'}${'' | `-mt${number}`}`;

export interface WasmKernels extends Kernels {
  readonly name: WasmKernelsName;
  /** Whether this is the relaxed-SIMD build (fused multiply-add where the CPU has it). */
  readonly relaxed: boolean;
  /** Threads that split a large gemm (1: this thread only). */
  readonly threads: number;
  /** The module's linear memory; `alloc` views point into memory.buffer. */
  readonly memory: WebAssembly.Memory;
  /** Increments each time the memory grows (which detaches every view of the old buffer). */
  readonly generation: number;
  /** A zero-filled Float32Array of `length` elements inside wasm memory (kernels use it without copying). */
  alloc(length: number): Float32Array;
  /** A zero-filled Int32Array of `length` elements inside wasm memory (for softmaxXent labels). */
  allocInt(length: number): Int32Array;
  /** Frees everything alloc/allocInt returned; those views must not be used afterwards. */
  reset(): void;
}

export interface WasmKernelsOptions {
  /** Bytes of wasm memory reserved for copying arrays that live outside it (default 4 MiB, min 64 KiB). */
  scratchBytes?: number;
  /**
   * The memory of a shared-memory build (kernels-shared.wasm, kernels-relaxed-shared.wasm), which imports
   * its memory; default a new shared memory. Ignored by the builds that own their memory.
   */
  memory?: WebAssembly.Memory;
  /** Workers that take slices of large gemms (kernels-wasm-threads.ts); needs a shared-memory build. */
  gemmPool?: GemmPool;
  /**
   * With a gemm pool: 'adaptive' (default) times split and unsplit gemms now and then and keeps the faster
   * (on a busy machine a worker may wait longer for a core than its slice takes); 'always' splits every large
   * gemm. Either way C is the same bits (see splitGemm), so this changes speed only.
   */
  splitPolicy?: 'adaptive' | 'always';
}

/**
 * Threads that run slices of a gemm on the same (shared) memory: `createWasmKernels` gives each a region
 * for gemm packing and one control slot of GEMM_SLOT_BYTES, then calls `start` for every slice but its own
 * and `join` after running its own. Implemented by kernels-wasm-threads.ts.
 */
export interface GemmPool {
  /** Threads besides the caller. */
  readonly workers: number;
  /**
   * Called once, before any gemm: each worker instantiates `module` on `memory`; worker i packs at works[i]
   * and is driven through the control slot at byte address slots[i].
   */
  attach(
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    works: readonly number[],
    slots: readonly number[],
  ): Promise<void>;
  /** Makes worker i run gemm with these arguments (those of the export, without `work`). */
  start(i: number, args: readonly number[]): void;
  /** Returns when every started slice is done (throws if a worker died). */
  join(): void;
  /** Stops the workers. */
  terminate(): void;
}

/** Bytes of the control slot of one gemm worker (state word and the gemm's arguments as float64). */
export const GEMM_SLOT_BYTES = 128;

/** The exports of wasm/build/kernels.wasm (pointers are byte addresses, sizes element counts). */
interface KernelExports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  gemmWorkBytes(): number;
  gemm(
    transA: number,
    transB: number,
    m: number,
    n: number,
    k: number,
    alpha: number,
    a: number,
    lda: number,
    b: number,
    ldb: number,
    beta: number,
    c: number,
    ldc: number,
    work: number,
  ): void;
  biasAct(c: number, bias: number, m: number, n: number, relu: number): void;
  reluBackward(delta: number, act: number, len: number): void;
  colSum(a: number, m: number, n: number, out: number, init: number): void;
  softmaxXent(
    logits: number,
    labels: number,
    m: number,
    n: number,
    scale: number,
    delta: number,
    lossIn: number,
    correctIn: number,
  ): number;
  softmaxCorrect(): number;
  adam(
    w: number,
    g: number,
    m: number,
    v: number,
    len: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    bc1: number,
    bc2: number,
  ): void;
  sgd(w: number, g: number, len: number, lr: number, mu: number, vel: number): void;
  /** Absent in modules built before the relaxed-SIMD build existed. */
  relaxedSimd?(): number;
}

const EXPORTED_FUNCTIONS = [
  'heapBase',
  'gemmWorkBytes',
  'gemm',
  'biasAct',
  'reluBackward',
  'colSum',
  'softmaxXent',
  'softmaxCorrect',
  'adam',
  'sgd',
] as const;

const PAGE = 65536;
const MAX_PAGES = 65536; // wasm32: 4 GiB
const MIN_GROW_PAGES = 256; // 16 MiB
const DEFAULT_SCRATCH = 4 << 20;

// Validation: the same checks and messages as kernels-js.ts (kernel-checks.ts).

// ---------- staging of arrays that live outside wasm memory ----------

type Arr = Float32Array | Int32Array;
const IN = 1,
  OUT = 2,
  INOUT = 3;

/**
 * One argument of a wasm call: `rows` x `cols` elements of `arr` from element `start`, rows `ld`
 * apart (rows = 1 for a plain range). After staging, `ptr` is its byte address in wasm memory and
 * `pld` its leading dimension there (ld in place, cols when copied).
 */
interface Part {
  arr: Arr;
  start: number;
  rows: number;
  cols: number;
  ld: number;
  mode: number;
  ptr: number;
  pld: number;
}

function part(arr: Arr, start: number, rows: number, cols: number, ld: number, mode: number): Part {
  return { arr, start, rows, cols, ld, mode, ptr: 0, pld: ld };
}

/** A copy in wasm memory of [b0, b1) bytes of `buffer` (contiguous), or of a strided block (`block`). */
interface Slot {
  buffer: ArrayBufferLike;
  b0: number;
  b1: number;
  mode: number;
  block: Part | null;
  parts: Part[];
  at: number;
}

const align = (x: number, a: number) => Math.ceil(x / a) * a;

function slotBytes(s: Slot): number {
  return s.block ? s.block.rows * s.block.cols * 4 : s.b1 - s.b0;
}

function isPositiveInt(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v > 0;
}

/**
 * Instantiates the kernels module (bytes of wasm/build/kernels.wasm, or an already compiled Module).
 * Rejects when the engine lacks WebAssembly SIMD or the bytes are not the kernels module.
 */
export async function createWasmKernels(
  wasmBytes: BufferSource | WebAssembly.Module,
  options: WasmKernelsOptions = {},
): Promise<WasmKernels> {
  const scratchBytes = options.scratchBytes ?? DEFAULT_SCRATCH;
  if (!(isPositiveInt(scratchBytes) && scratchBytes >= 65536 && scratchBytes <= 1 << 30)) {
    throw new RangeError(
      `createWasmKernels: scratchBytes must be an integer in [65536, 2^30], got ${String(scratchBytes)}`,
    );
  }
  // The module imports nothing; env.abort is only there so that a debug build (with assertions) links.
  const imports = {
    env: {
      abort: (_msg: number, _file: number, line: number, col: number) => {
        throw new Error(`wasm kernels aborted at ${line}:${col}`);
      },
    },
  };
  let instance: WebAssembly.Instance;
  let module: WebAssembly.Module;
  try {
    module = wasmBytes instanceof WebAssembly.Module ? wasmBytes : await WebAssembly.compile(wasmBytes);
    const importsMemory = WebAssembly.Module.imports(module).some((i) => i.kind === 'memory');
    if (importsMemory) Object.assign(imports.env, { memory: options.memory ?? newSharedMemory() });
    else if (options.gemmPool) throw new Error('a gemm pool needs a shared-memory build (kernels-shared.wasm)');
    instance = await WebAssembly.instantiate(module, imports);
  } catch (e) {
    const simd = !wasmSimdSupported()
      ? ' (this engine does not support WebAssembly SIMD)'
      : !wasmRelaxedSimdSupported()
        ? ' (this engine does not support relaxed SIMD, which the relaxed builds need)'
        : '';
    throw new Error(
      `createWasmKernels: cannot instantiate the kernels module${simd}: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  const ex = instance.exports as unknown as KernelExports;
  for (const f of EXPORTED_FUNCTIONS) {
    if (typeof ex[f] !== 'function')
      throw new Error(`createWasmKernels: not the EdgeFed kernels module (no export '${f}')`);
  }
  if (!(ex.memory instanceof WebAssembly.Memory))
    throw new Error("createWasmKernels: not the EdgeFed kernels module (no exported 'memory')");
  const pool = options.gemmPool ?? null;
  const policy = options.splitPolicy ?? 'adaptive';
  if (policy !== 'adaptive' && policy !== 'always')
    throw new RangeError(`createWasmKernels: splitPolicy must be 'adaptive' or 'always', got ${String(policy)}`);
  const kernels = build(ex, scratchBytes, pool, policy === 'adaptive' ? new SplitChooser() : null);
  if (pool) {
    try {
      await pool.attach(
        module,
        ex.memory,
        kernels.workerRegions.map((r) => r.work),
        kernels.workerRegions.map((r) => r.slot),
      );
    } catch (e) {
      pool.terminate();
      throw e;
    }
  }
  return kernels.api;
}

/** A shared memory for the shared-memory builds (they declare a maximum of 65536 pages). */
function newSharedMemory(): WebAssembly.Memory {
  return new WebAssembly.Memory({ initial: 256, maximum: MAX_PAGES, shared: true });
}

/** The gemm export's arguments but `work`: transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc. */
type GemmArgs = Parameters<KernelExports['gemm']> extends [...infer A, number] ? A : never;

/** Below this many multiply-adds a gemm runs on the calling thread (waking workers costs more). */
const PARALLEL_MIN_MACS = 1 << 18;

/**
 * Splits an m x n product into `parts` slices along the longer side, in whole micro-kernel tiles (4 rows,
 * 8 columns): [row0, rows, col0, cols] each. Every element of C is computed by the same instructions in
 * the same order whatever the split (the depth blocking depends on k only), so the result is the same
 * bits as one thread's.
 */
export function splitGemm(m: number, n: number, parts: number): number[][] {
  const byRows = m >= n;
  const len = byRows ? m : n;
  const unit = byRows ? 4 : 8;
  const chunk = Math.ceil(Math.ceil(len / parts) / unit) * unit;
  const out: number[][] = [];
  for (let s = 0; s < len; s += chunk) {
    const e = Math.min(len, s + chunk);
    out.push(byRows ? [s, e - s, 0, n] : [0, m, s, e - s]);
  }
  return out;
}

/**
 * Whether to split the next large gemm: per cycle of CYCLE eligible calls, the first PROBES alternate split
 * and unsplit and are timed (per multiply-add, so the mix of shapes cancels out); the rest of the cycle
 * uses the faster. Safe to vary at any time because splitting never changes the result.
 */
class SplitChooser {
  static readonly CYCLE = 512;
  static readonly PROBES = 16;
  private calls = 0;
  private readonly time = [0, 0]; // [unsplit, split] milliseconds in this cycle's probes
  private readonly macs = [0, 0];
  private split = true;

  /** Whether the call of `macs` multiply-adds should split, and a `done` to call after it. */
  next(macs: number): { split: boolean; done: () => void } {
    const i = this.calls++ % SplitChooser.CYCLE;
    if (i >= SplitChooser.PROBES) return { split: this.split, done: () => {} };
    if (i === 0) {
      this.time.fill(0);
      this.macs.fill(0);
    }
    const split = i % 2 === 0;
    const t0 = performance.now();
    return {
      split,
      done: () => {
        this.time[+split] += performance.now() - t0;
        this.macs[+split] += macs;
        if (i === SplitChooser.PROBES - 1) this.split = this.time[1] / this.macs[1] < this.time[0] / this.macs[0];
      },
    };
  }
}

interface Built {
  api: WasmKernels;
  workerRegions: { work: number; slot: number }[];
}

function build(ex: KernelExports, scratchBytes: number, pool: GemmPool | null, chooser: SplitChooser | null): Built {
  const memory = ex.memory;
  const workers = pool ? pool.workers : 0;
  // Layout: [static data][gemm packing work][workers' work and control slots][scratch for copied arrays]
  // [alloc heap ->]
  const work = align(ex.heapBase(), 64);
  const workerRegions: { work: number; slot: number }[] = [];
  let end = align(work + ex.gemmWorkBytes(), 64);
  for (let i = 0; i < workers; i++) {
    workerRegions.push({ work: end, slot: align(end + ex.gemmWorkBytes(), 64) });
    end = align(end + ex.gemmWorkBytes(), 64) + GEMM_SLOT_BYTES;
  }
  const scratch = align(end, 64);
  const heapStart = align(scratch + scratchBytes, 64);
  const scratchFloats = Math.floor(scratchBytes / 4) - 64; // room for the 16-byte alignment of a few slots

  let buf: ArrayBuffer = memory.buffer;
  let heapI32 = new Int32Array(buf);
  let generation = 0;
  let top = heapStart;

  /** Picks up a grown memory (ours or anyone's): new views, generation + 1. */
  function refresh(): void {
    if (memory.buffer !== buf) {
      buf = memory.buffer;
      heapI32 = new Int32Array(buf);
      generation++;
    }
  }

  /** Makes memory at least `end` bytes, growing by at least +50% or 16 MiB when it must grow. */
  function ensure(end: number, fn: string): void {
    refresh();
    const have = buf.byteLength;
    if (end <= have) return;
    const curPages = have / PAGE;
    const needPages = Math.ceil((end - have) / PAGE);
    if (curPages + needPages > MAX_PAGES) {
      throw new RangeError(`${fn}: wasm memory cannot grow to ${end} bytes (the limit is 4 GiB)`);
    }
    const stepPages = Math.min(Math.max(needPages, curPages >> 1, MIN_GROW_PAGES), MAX_PAGES - curPages);
    try {
      memory.grow(stepPages);
    } catch {
      try {
        memory.grow(needPages);
      } catch (e) {
        throw new RangeError(
          `${fn}: wasm memory cannot grow to ${end} bytes: ${e instanceof Error ? e.message : String(e)}`,
        );
      }
    }
    refresh();
  }
  ensure(heapStart, 'createWasmKernels');
  generation = 0; // growth during set-up does not count: no view existed yet

  function allocBytes(fn: string, length: unknown): number {
    if (typeof length !== 'number') throw new TypeError(`${fn}: length must be a number, got ${describe(length)}`);
    if (!(Number.isInteger(length) && length >= 0 && length <= (MAX_PAGES * PAGE) / 4)) {
      throw new RangeError(`${fn}: length must be a non-negative integer, got ${length}`);
    }
    const ptr = top;
    const end = align(ptr + length * 4, 64);
    ensure(end, fn);
    top = end;
    new Int32Array(buf, ptr, length).fill(0); // memory reused after reset() is not zero
    return ptr;
  }

  /**
   * Runs `call` with every part at a wasm address: parts in wasm memory in place, the others copied
   * (overlapping contiguous parts of one buffer share a copy, so aliasing behaves as in place) into the
   * scratch, or into temporary space past the heap top (growing memory) when they do not fit.
   */
  function staged(parts: Part[], fn: string, call: () => void): void {
    refresh();
    const slots: Slot[] = [];
    const byBuffer = new Map<ArrayBufferLike, Slot[]>();
    for (const p of parts) {
      const n = p.rows * p.cols;
      if (n === 0) {
        p.ptr = 0;
        p.pld = Math.max(p.cols, 1);
        continue;
      }
      if (p.arr.buffer === buf) {
        p.ptr = p.arr.byteOffset + p.start * 4;
        p.pld = p.ld;
        continue;
      }
      p.pld = p.cols;
      const b0 = p.arr.byteOffset + p.start * 4;
      if (p.rows === 1 || p.cols === p.ld) {
        const s: Slot = { buffer: p.arr.buffer, b0, b1: b0 + n * 4, mode: p.mode, block: null, parts: [p], at: 0 };
        const list = byBuffer.get(s.buffer);
        if (list) list.push(s);
        else byBuffer.set(s.buffer, [s]);
      } else {
        slots.push({ buffer: p.arr.buffer, b0, b1: b0, mode: p.mode, block: p, parts: [p], at: 0 });
      }
    }
    for (const list of byBuffer.values()) {
      list.sort((x, y) => x.b0 - y.b0);
      let cur = list[0];
      slots.push(cur);
      for (let i = 1; i < list.length; i++) {
        const s = list[i];
        if (s.b0 < cur.b1) {
          cur.b1 = Math.max(cur.b1, s.b1);
          cur.mode |= s.mode;
          cur.parts.push(...s.parts);
        } else {
          cur = s;
          slots.push(cur);
        }
      }
    }
    let total = 0;
    for (const s of slots) total = align(total + slotBytes(s), 16);
    let base = scratch;
    if (total > scratchBytes) {
      // Only when one row / block is larger than the scratch: past the heap top, growing if needed.
      base = align(top, 64);
      ensure(base + total, fn);
    }
    let at = base;
    for (const s of slots) {
      s.at = at;
      at = align(at + slotBytes(s), 16);
      for (const p of s.parts) p.ptr = s.block ? s.at : s.at + (p.arr.byteOffset + p.start * 4 - s.b0);
      if (s.mode & IN) copy(s, true);
    }
    call();
    refresh();
    for (const s of slots) if (s.mode & OUT) copy(s, false);
  }

  function copy(s: Slot, into: boolean): void {
    if (!s.block) {
      const src = new Int32Array(s.buffer, s.b0, (s.b1 - s.b0) / 4);
      if (into) heapI32.set(src, s.at / 4);
      else src.set(heapI32.subarray(s.at / 4, s.at / 4 + src.length));
      return;
    }
    const p = s.block;
    const outer = new Int32Array(p.arr.buffer, p.arr.byteOffset + p.start * 4, (p.rows - 1) * p.ld + p.cols);
    for (let r = 0; r < p.rows; r++) {
      const row = outer.subarray(r * p.ld, r * p.ld + p.cols);
      const h = s.at / 4 + r * p.cols;
      if (into) heapI32.set(row, h);
      else row.set(heapI32.subarray(h, h + p.cols));
    }
  }

  /** Rows of an m x n problem per block so that `perRow` floats per row plus `fixed` fit the scratch (0: none). */
  function rowsPerBlock(perRow: number, fixed: number): number {
    if (perRow === 0) return Infinity;
    return Math.floor((scratchFloats - fixed) / perRow);
  }

  const outside = (x: Arr) => x.buffer !== buf;

  /** The gemm export on wasm addresses; large products are split between this thread and the pool's. */
  function runGemm(...g: GemmArgs): void {
    const [ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc] = g;
    if (!pool || m * n * k < PARALLEL_MIN_MACS) {
      ex.gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, work);
      return;
    }
    const choice = chooser?.next(m * n * k);
    if (choice && !choice.split) {
      ex.gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, work);
      choice.done();
      return;
    }
    const slices = splitGemm(m, n, workers + 1);
    const args = (s: number[]): number[] => {
      const [i0, mc, j0, nc] = s;
      // op(A) rows i0.. start at row i0 of A, or column i0 of a transposed A; op(B) columns likewise.
      const aAt = a + 4 * (ta ? i0 : i0 * lda);
      const bAt = b + 4 * (tb ? j0 * ldb : j0);
      return [ta, tb, mc, nc, k, alpha, aAt, lda, bAt, ldb, beta, c + 4 * (i0 * ldc + j0), ldc];
    };
    for (let i = 1; i < slices.length; i++) pool.start(i - 1, args(slices[i]));
    const [ta0, tb0, m0, n0, k0, al0, a0, lda0, b0, ldb0, be0, c0, ldc0] = args(slices[0]);
    try {
      ex.gemm(ta0, tb0, m0, n0, k0, al0, a0, lda0, b0, ldb0, be0, c0, ldc0, work);
    } finally {
      pool.join();
    }
    choice?.done();
  }

  // ---------- the kernels ----------

  function gemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    alpha: number,
    a: Float32Array,
    b: Float32Array,
    beta: number,
    c: Float32Array,
  ): void {
    const fn = 'gemm';
    checkGemm(transA, transB, m, n, k, alpha, a, b, beta, c);
    if (gemmWithoutProducts(m, n, k, alpha, beta, c)) return;
    const ta = transA ? 1 : 0,
      tb = transB ? 1 : 0;
    refresh();
    if (a.buffer === buf && b.buffer === buf && c.buffer === buf) {
      runGemm(
        ta,
        tb,
        m,
        n,
        k,
        alpha,
        a.byteOffset,
        transA ? m : k,
        b.byteOffset,
        transB ? k : n,
        beta,
        c.byteOffset,
        n,
      );
      return;
    }
    const cMode = beta === 0 ? OUT : INOUT;
    const aOut = outside(a),
      bOut = outside(b),
      cOut = outside(c);
    // Blocks of C (mb x nb), each needing op(A) rows (mb x k), op(B) columns (k x nb) and the C block,
    // sized so that the copied ones fit the scratch together; B whole when it takes at most half.
    let nb = n;
    if (bOut && k * n > scratchFloats / 2) nb = Math.floor(scratchFloats / 2 / k);
    if (nb > 8 && nb < n) nb -= nb % 8;
    let mb = rowsPerBlock((aOut ? k : 0) + (cOut ? nb : 0), bOut ? k * nb : 0);
    if (mb > 4 && mb < m) mb -= mb % 4;
    if (nb < 1 || mb < 1) {
      nb = n;
      mb = m;
    } // a row does not fit: one block, past the heap top
    mb = Math.min(mb, m);
    for (let j0 = 0; j0 < n; j0 += nb) {
      const nc = Math.min(nb, n - j0);
      // op(B)[:, j0..j0+nc]: columns of a k x n B, or rows of an n x k B.
      const bp = transB ? part(b, j0 * k, nc, k, k, IN) : part(b, j0, k, nc, n, IN);
      for (let i0 = 0; i0 < m; i0 += mb) {
        const mc = Math.min(mb, m - i0);
        // op(A)[i0..i0+mc, :]: rows of an m x k A, or columns of a k x m A.
        const ap = transA ? part(a, i0, k, mc, m, IN) : part(a, i0 * k, mc, k, k, IN);
        const cp = part(c, i0 * n + j0, mc, nc, n, cMode);
        staged([ap, bp, cp], fn, () => {
          runGemm(ta, tb, mc, nc, k, alpha, ap.ptr, ap.pld, bp.ptr, bp.pld, beta, cp.ptr, cp.pld);
        });
      }
    }
  }

  function biasAct(c: Float32Array, bias: Float32Array, m: number, n: number, relu: boolean): void {
    const fn = 'biasAct';
    checkBiasAct(c, bias, m, n, relu);
    if (m === 0 || n === 0) return;
    refresh();
    const r = relu ? 1 : 0;
    if (c.buffer === buf && bias.buffer === buf) {
      ex.biasAct(c.byteOffset, bias.byteOffset, m, n, r);
      return;
    }
    let rb = rowsPerBlock(outside(c) ? n : 0, outside(bias) ? n : 0);
    if (rb < 1) rb = m;
    for (let i0 = 0; i0 < m; i0 += rb) {
      const rows = Math.min(rb, m - i0);
      const cp = part(c, i0 * n, 1, rows * n, rows * n, INOUT);
      const bp = part(bias, 0, 1, n, n, IN);
      staged([cp, bp], fn, () => ex.biasAct(cp.ptr, bp.ptr, rows, n, r));
    }
  }

  /** Runs a flat elementwise kernel over [0, len) in blocks that fit the scratch. */
  function flat(
    fn: string,
    arrays: Arr[],
    modes: number[],
    len: number,
    call: (ptrs: number[], n: number) => void,
  ): void {
    refresh();
    let nOut = 0;
    for (const x of arrays) if (x.buffer !== buf) nOut++;
    if (nOut === 0) {
      call(
        arrays.map((x) => x.byteOffset),
        len,
      );
      return;
    }
    let blk = Math.floor(scratchFloats / nOut);
    blk -= blk % 4;
    for (let s = 0; s < len; s += blk) {
      const cnt = Math.min(blk, len - s);
      const parts = arrays.map((x, i) => part(x, s, 1, cnt, cnt, modes[i]));
      staged(parts, fn, () =>
        call(
          parts.map((p) => p.ptr),
          cnt,
        ),
      );
    }
  }

  function reluBackward(delta: Float32Array, act: Float32Array): void {
    const fn = 'reluBackward';
    checkReluBackward(delta, act);
    const len = delta.length;
    if (len === 0) return;
    flat(fn, [delta, act], [INOUT, IN], len, (p, n) => ex.reluBackward(p[0], p[1], n));
  }

  function colSum(a: Float32Array, m: number, n: number, out: Float32Array): void {
    const fn = 'colSum';
    checkColSum(a, m, n, out);
    if (n === 0) return;
    refresh();
    if (a.buffer === buf && out.buffer === buf) {
      ex.colSum(a.byteOffset, m, n, out.byteOffset, 1);
      return;
    }
    let rb = rowsPerBlock(outside(a) ? n : 0, outside(out) ? n : 0);
    if (rb < 1) rb = Math.max(m, 1);
    let i0 = 0;
    do {
      const rows = Math.min(rb, m - i0);
      const init = i0 === 0 ? 1 : 0; // later blocks add to the running sums, in the same row order
      const ap = part(a, i0 * n, 1, rows * n, rows * n, IN);
      const op = part(out, 0, 1, n, n, init ? OUT : INOUT);
      staged([ap, op], fn, () => ex.colSum(ap.ptr, rows, n, op.ptr, init));
      i0 += rows;
    } while (i0 < m);
  }

  function softmaxXent(
    logits: Float32Array,
    labels: Int32Array,
    m: number,
    n: number,
    scale: number,
    delta: Float32Array,
  ): { loss: number; correct: number } {
    const fn = 'softmaxXent';
    checkSoftmaxXent(logits, labels, m, n, scale, delta);
    if (m === 0) return { loss: 0, correct: 0 };
    refresh();
    if (logits.buffer === buf && labels.buffer === buf && delta.buffer === buf) {
      const loss = ex.softmaxXent(logits.byteOffset, labels.byteOffset, m, n, scale, delta.byteOffset, 0, 0);
      return { loss, correct: ex.softmaxCorrect() };
    }
    let rb = rowsPerBlock((outside(logits) ? n : 0) + (outside(labels) ? 1 : 0) + (outside(delta) ? n : 0), 0);
    if (rb < 1) rb = m;
    let loss = 0;
    let correct = 0;
    for (let i0 = 0; i0 < m; i0 += rb) {
      const rows = Math.min(rb, m - i0);
      const lp = part(logits, i0 * n, 1, rows * n, rows * n, IN);
      const yp = part(labels, i0, 1, rows, rows, IN);
      const dp = part(delta, i0 * n, 1, rows * n, rows * n, OUT);
      staged([lp, yp, dp], fn, () => {
        loss = ex.softmaxXent(lp.ptr, yp.ptr, rows, n, scale, dp.ptr, loss, correct);
        correct = ex.softmaxCorrect();
      });
    }
    return { loss, correct };
  }

  function adam(
    w: Float32Array,
    g: Float32Array,
    m: Float32Array,
    v: Float32Array,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    step: number,
  ): void {
    const fn = 'adam';
    checkAdam(w, g, m, v, lr, beta1, beta2, eps, step);
    const len = w.length;
    if (len === 0) return;
    // Bias corrections with this engine's Math.pow, as the JS kernel computes them.
    const bc1 = 1 - Math.pow(beta1, step);
    const bc2 = 1 - Math.pow(beta2, step);
    flat(fn, [w, g, m, v], [INOUT, IN, INOUT, INOUT], len, (p, n) =>
      ex.adam(p[0], p[1], p[2], p[3], n, lr, beta1, beta2, eps, bc1, bc2),
    );
  }

  function sgd(w: Float32Array, g: Float32Array, lr: number, momentum: number, vel: Float32Array | null): void {
    const fn = 'sgd';
    checkSgd(w, g, lr, momentum, vel);
    const len = w.length;
    if (momentum > 0) {
      if (len === 0) return;
      flat(fn, [w, g, vel!], [INOUT, IN, INOUT], len, (p, n) => ex.sgd(p[0], p[1], n, lr, momentum, p[2]));
    } else {
      if (len === 0) return;
      flat(fn, [w, g], [INOUT, IN], len, (p, n) => ex.sgd(p[0], p[1], n, lr, 0, 0));
    }
  }

  const relaxed = ex.relaxedSimd?.() === 1;
  const threads = workers + 1;
  const name = `wasm-simd${relaxed ? '-relaxed' : ''}${threads > 1 ? `-mt${threads}` : ''}` as WasmKernelsName;
  const kernels: WasmKernels = {
    name,
    relaxed,
    threads,
    memory,
    get generation() {
      refresh();
      return generation;
    },
    alloc: (length: number) => {
      const ptr = allocBytes('alloc', length);
      return new Float32Array(buf, ptr, length);
    },
    allocInt: (length: number) => {
      const ptr = allocBytes('allocInt', length);
      return new Int32Array(buf, ptr, length);
    },
    reset: () => {
      top = heapStart;
    },
    gemm,
    biasAct,
    reluBackward,
    colSum,
    softmaxXent,
    adam,
    sgd,
  };
  return { api: Object.freeze(kernels), workerRegions };
}

/** Whether this engine compiles relaxed SIMD (a module with one f32x4.relaxed_madd): recent Chromium does. */
export function wasmRelaxedSimdSupported(): boolean {
  const v128Zero = [0xfd, 0x0c, ...new Array<number>(16).fill(0)];
  const body = [0x00, ...v128Zero, ...v128Zero, ...v128Zero, 0xfd, 0x85, 0x02, 0x0b]; // relaxed_madd(0, 0, 0)
  const head = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b];
  const funcs = [0x03, 0x02, 0x01, 0x00];
  try {
    return WebAssembly.validate(new Uint8Array([...head, ...funcs, 0x0a, body.length + 2, 0x01, body.length, ...body]));
  } catch {
    return false;
  }
}

/**
 * Whether wasm threads can share memory here: SharedArrayBuffer exists (in browsers only on pages that
 * are cross-origin isolated, i.e. served with COOP same-origin and COEP require-corp) and a shared
 * WebAssembly.Memory can be made.
 */
export function wasmThreadsSupported(): boolean {
  if (typeof SharedArrayBuffer !== 'function') return false;
  const g = globalThis as { crossOriginIsolated?: boolean };
  if (g.crossOriginIsolated === false) return false;
  try {
    return new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }).buffer instanceof SharedArrayBuffer;
  } catch {
    return false;
  }
}

/** Whether this engine compiles WebAssembly SIMD (a module with one v128 function). */
export function wasmSimdSupported(): boolean {
  try {
    return WebAssembly.validate(
      new Uint8Array([
        0x00,
        0x61,
        0x73,
        0x6d,
        0x01,
        0x00,
        0x00,
        0x00, // magic, version
        0x01,
        0x05,
        0x01,
        0x60,
        0x00,
        0x01,
        0x7b, // type: () -> v128
        0x03,
        0x02,
        0x01,
        0x00, // one function of type 0
        0x0a,
        0x16,
        0x01,
        0x14,
        0x00,
        0xfd,
        0x0c,
        ...new Array<number>(16).fill(0),
        0x0b, // v128.const 0
      ]),
    );
  } catch {
    return false;
  }
}
