// The WebAssembly SIMD kernels through the suite every implementation runs (test/support/kernel-suite.ts:
// float64 references and bad input), against the JS kernels, each with arrays inside wasm memory (zero
// copy, from alloc), outside it (copied through the scratch), and outside with a tiny scratch (copied in
// blocks). Needs the module:
// node scripts/build-wasm.mjs (the tests are skipped, saying so, when it is missing).
// EDGEFED_TEST_WASM_BUILD=relaxed|shared|relaxed-shared (with EDGEFED_TEST_WASM_THREADS=N for the shared
// builds) runs the kernel and agreement suites on that build instead: kernels-wasm-builds.test.ts does, in a
// child Node that has relaxed SIMD enabled.
import { afterEach, beforeEach, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { jsKernels } from './kernels-js.js';
import { createWasmKernels, wasmSimdSupported, type WasmKernels } from './kernels-wasm.js';
import {
  loadWasmKernelsNode,
  spawnNodeKernelThread,
  wasmKernelsNodeError,
  WASM_KERNELS_PATH,
} from './kernels-wasm-node.js';
import { createThreadedWasmKernels } from './kernels-wasm-threads.js';
import { prng } from '../../test/support/kernels.js';
import {
  agreementSuite,
  assertClose,
  browserSafeImports,
  checkGemm,
  gemmTol,
  kernelSuite,
  plainArrays,
  rand,
  refGemm,
  type Place,
} from '../../test/support/kernel-suite.js';

const BUILD = process.env.EDGEFED_TEST_WASM_BUILD ?? '';
const SHARED = BUILD.endsWith('shared');
const THREADS = Number(process.env.EDGEFED_TEST_WASM_THREADS ?? '1');
const BUILD_PATH = BUILD ? WASM_KERNELS_PATH.replace(/kernels\.wasm$/, `kernels-${BUILD}.wasm`) : WASM_KERNELS_PATH;
const EXPECTED_NAME = `wasm-simd${BUILD.startsWith('relaxed') ? '-relaxed' : ''}${THREADS > 1 ? `-mt${THREADS}` : ''}`;
const wasmBytes = existsSync(BUILD_PATH) ? readFileSync(BUILD_PATH) : null;
const skip = wasmBytes
  ? false
  : `wasm kernels not built (${BUILD_PATH} is missing); run \`node scripts/build-wasm.mjs\``;

// ---------- where arrays live (the helpers and the suite are test/support/kernel-suite.ts) ----------

function inside(k: WasmKernels): Place {
  return { label: 'inside wasm memory (zero copy)', k, f32: (n) => k.alloc(n), i32: (n) => k.allocInt(n) };
}

function outside(k: WasmKernels, label = 'outside wasm memory (copied)'): Place {
  return plainArrays(k, label);
}

// ---------- registration ----------

if (!wasmBytes) {
  test('kernels: wasm-simd', { skip }, () => {});
} else {
  const make = (scratchBytes?: number): Promise<WasmKernels> => {
    const options = scratchBytes ? { scratchBytes } : {};
    if (SHARED) return createThreadedWasmKernels(wasmBytes, THREADS, spawnNodeKernelThread, options);
    return createWasmKernels(wasmBytes, options);
  };
  const zeroCopy = await make();
  const copying = await make();
  const blocked = await make(65536); // 16K floats of scratch: most outside arrays below go in blocks

  describe('kernels: wasm-simd, arrays inside wasm memory (zero copy)', () => {
    // Memory grown once up front, and freed after each test, so no view detaches during a test.
    zeroCopy.alloc(8 << 20);
    zeroCopy.reset();
    const gen = zeroCopy.generation;
    beforeEach(() => zeroCopy.reset());
    afterEach(() => assert.equal(zeroCopy.generation, gen, 'wasm memory grew during the test'));
    it(`is named ${EXPECTED_NAME}; the engine supports SIMD`, () => {
      assert.equal(zeroCopy.name, EXPECTED_NAME);
      assert.equal(wasmSimdSupported(), true);
    });
    kernelSuite(inside(zeroCopy));
    describe('agrees with the JS kernels', () => agreementSuite(inside(zeroCopy), 'bits'));
  });

  describe('kernels: wasm-simd, arrays outside wasm memory (copied)', () => {
    kernelSuite(outside(copying));
    describe('agrees with the JS kernels', () => agreementSuite(outside(copying), 'bits'));
  });

  describe('kernels: wasm-simd, outside arrays through a 64 KiB scratch (copied in blocks)', () => {
    const p = outside(blocked, 'outside, 64 KiB scratch');
    kernelSuite(p);
    describe('agrees with the JS kernels', () => agreementSuite(p, 'bits'));

    it('gemm larger than the scratch, all transposes, outside and mixed placements', () => {
      const pIn = inside(blocked);
      let seed = 500;
      for (const [m, n, kk] of [
        [67, 301, 200],
        [130, 40, 700],
        [9, 1100, 33],
      ]) {
        for (const ta of [false, true]) {
          for (const tb of [false, true]) {
            checkGemm(blocked, p, p, p, ta, tb, m, n, kk, 1.25, seed % 2 ? 0 : -0.5, seed++);
            checkGemm(blocked, pIn, p, p, ta, tb, m, n, kk, 1, 1, seed++);
            checkGemm(blocked, p, pIn, p, ta, tb, m, n, kk, 1, 0, seed++);
            checkGemm(blocked, pIn, pIn, p, ta, tb, m, n, kk, -1, 0.5, seed++);
            blocked.reset();
          }
        }
      }
    });

    it("elementwise kernels and softmaxXent over many blocks give the JS kernels' bits", () => {
      const r = prng(77);
      const len = 50_001;
      const g = rand(null, len, r),
        w0 = rand(null, len, r);
      const w1 = w0.slice(),
        w2 = w0.slice(),
        v1 = new Float32Array(len),
        v2 = new Float32Array(len);
      const m1 = new Float32Array(len),
        m2 = new Float32Array(len),
        q1 = new Float32Array(len),
        q2 = new Float32Array(len);
      blocked.sgd(w1, g, 0.1, 0.9, v1);
      jsKernels.sgd(w2, g, 0.1, 0.9, v2);
      blocked.adam(w1, g, m1, q1, 0.01, 0.9, 0.999, 1e-7, 2);
      jsKernels.adam(w2, g, m2, q2, 0.01, 0.9, 0.999, 1e-7, 2);
      blocked.reluBackward(w1, g);
      jsKernels.reluBackward(w2, g);
      for (const [x, y] of [
        [w1, w2],
        [v1, v2],
        [m1, m2],
        [q1, q2],
      ])
        assert.deepEqual(Array.from(x), Array.from(y));
      const m = 2001,
        n = 25;
      const c1 = rand(null, m * n, r),
        c2 = c1.slice(),
        bias = rand(null, n, r);
      blocked.biasAct(c1, bias, m, n, true);
      jsKernels.biasAct(c2, bias, m, n, true);
      assert.deepEqual(Array.from(c1), Array.from(c2));
      const s1 = new Float32Array(n),
        s2 = new Float32Array(n);
      blocked.colSum(c1, m, n, s1);
      jsKernels.colSum(c2, m, n, s2);
      assert.deepEqual(Array.from(s1), Array.from(s2));
      const labels = Int32Array.from({ length: m }, () => Math.floor(r() * n));
      const d1 = new Float32Array(m * n),
        d2 = new Float32Array(m * n);
      const x = blocked.softmaxXent(c1, labels, m, n, 1 / m, d1),
        y = jsKernels.softmaxXent(c2, labels, m, n, 1 / m, d2);
      assert.equal(x.correct, y.correct);
      assert.ok(Math.abs(x.loss - y.loss) <= 1e-12 * Math.abs(y.loss), `loss ${x.loss} vs ${y.loss}`);
      assertClose(d1, d2, () => 1e-9, 'softmax delta');
      // In place through the blocks too.
      const inPlace = c2.slice();
      const z = blocked.softmaxXent(inPlace, labels, m, n, 1 / m, inPlace);
      assert.deepEqual(z, x);
      assert.deepEqual(Array.from(inPlace), Array.from(d1));
    });

    it('a row larger than the scratch is copied past the heap top (growing memory, generation + 1)', () => {
      const k = blocked;
      k.reset();
      const before = k.generation;
      const n = (k.memory.buffer.byteLength >> 2) + 1; // one row needs more than the whole memory
      const logits = new Float32Array(2 * n),
        delta = new Float32Array(2 * n);
      logits[3] = 5;
      logits[n + 7] = 4;
      const got = k.softmaxXent(logits, new Int32Array([3, 0]), 2, n, 1, delta);
      assert.ok(k.generation > before);
      assert.equal(got.correct, 1);
      const ref = jsKernels.softmaxXent(logits, new Int32Array([3, 0]), 2, n, 1, new Float32Array(2 * n));
      assert.ok(Math.abs(got.loss - ref.loss) <= 1e-12 * ref.loss);
      const colOut = new Float32Array(n);
      k.colSum(logits, 2, n, colOut);
      assert.equal(colOut[3], 5);
      assert.equal(colOut[n + 7 - n], 4);
    });
  });

  describe('kernels: wasm-simd, mixed placements', () => {
    it('gemm with each of a, b, c inside or outside wasm memory', async () => {
      const k = await make();
      const pi = inside(k),
        po = outside(k);
      let seed = 900;
      for (let mask = 0; mask < 8; mask++) {
        const [pa, pb, pc] = [mask & 1 ? pi : po, mask & 2 ? pi : po, mask & 4 ? pi : po];
        for (const ta of [false, true]) {
          for (const tb of [false, true]) {
            checkGemm(k, pa, pb, pc, ta, tb, 13, 19, 29, 0.5, 0.25, seed++);
            checkGemm(k, pa, pb, pc, ta, tb, 32, 128, 78, 1, 0, seed++);
          }
        }
      }
    });

    it('elementwise kernels with some arrays inside and some outside', async () => {
      const k = await make();
      const r = prng(31);
      const len = 103;
      const g = k.alloc(len),
        w = new Float32Array(len),
        vel = k.alloc(len);
      for (let i = 0; i < len; i++) {
        g[i] = r() - 0.5;
        w[i] = r() - 0.5;
      }
      const w2 = w.slice(),
        vel2 = new Float32Array(len);
      k.sgd(w, g, 0.1, 0.9, vel);
      jsKernels.sgd(w2, g, 0.1, 0.9, vel2);
      assert.deepEqual(Array.from(w), Array.from(w2));
      assert.deepEqual(Array.from(vel), Array.from(vel2));
      const logits = k.alloc(30),
        labels = new Int32Array([1, 2, 0]),
        delta = new Float32Array(30);
      logits.set(rand(null, 30, r));
      const x = k.softmaxXent(logits, labels, 3, 10, 1, delta);
      const d2 = new Float32Array(30);
      const y = jsKernels.softmaxXent(logits, labels, 3, 10, 1, d2);
      assert.equal(x.correct, y.correct);
      assertClose(delta, d2, () => 1e-9, 'delta');
    });
  });

  // Memory and loading of the default build (a shared memory never detaches views: other rules).
  describe('kernels: wasm-simd memory', { skip: BUILD ? `build ${BUILD}: default build only` : false }, () => {
    it('alloc grows memory in large steps; generation increments; old views detach, re-taken views keep the data', async () => {
      const k = await make();
      assert.equal(k.generation, 0);
      const a = k.alloc(1000);
      const { byteOffset, length } = a;
      a.fill(1.5);
      const size = k.memory.buffer.byteLength;
      const big = k.alloc(size / 4); // more than the whole memory: must grow
      assert.equal(k.generation, 1);
      const grown = k.memory.buffer.byteLength;
      assert.ok(grown >= size * 1.5 && grown - size >= 16 << 20, `grew from ${size} to ${grown} bytes`);
      assert.equal(a.length, 0, 'the old view is detached');
      assert.throws(() => k.biasAct(a, k.alloc(100), 10, 100, false), {
        name: 'RangeError',
        message: 'biasAct: c has 0 elements, needs at least 1000 (m*n)',
      });
      const again = new Float32Array(k.memory.buffer, byteOffset, length);
      assert.ok(again.every((x) => x === 1.5));
      assert.equal(big.length, size / 4);
      assert.ok(big.buffer === k.memory.buffer && big.every((x) => x === 0));
      const bias = k.alloc(100).fill(1);
      k.biasAct(again, bias, 10, 100, false); // zero copy on the re-taken view
      assert.ok(again.every((x) => x === 2.5));
      // Allocations that fit do not grow.
      const gen = k.generation;
      k.alloc(1000);
      assert.equal(k.generation, gen);
      // reset frees everything: the first block is handed out again, zero-filled.
      k.reset();
      const z = k.alloc(1000);
      assert.equal(z.byteOffset, byteOffset);
      assert.ok(z.every((x) => x === 0));
      const zi = k.allocInt(7);
      assert.ok(zi instanceof Int32Array && zi.buffer === k.memory.buffer && zi.length === 7);
      assert.equal(zi.byteOffset % 16, 0);
    });

    it('gemm reads no byte past its operands: a and b at the very end of wasm memory, all transposes, edge panels', async () => {
      // op(B) rows and transposed op(A) depths are read in place (not packed): a read past the last full
      // panel would run off the end of memory here and trap.
      const k = await make();
      let seed = 900;
      for (const [m, n, kk] of [
        [5, 13, 7],
        [32, 128, 33],
        [33, 130, 9],
        [4, 8, 3],
        [1, 1, 1],
        [9, 7, 300],
      ]) {
        for (const ta of [false, true]) {
          for (const tb of [false, true]) {
            const r = prng(seed++);
            const end = k.memory.buffer.byteLength;
            const b = new Float32Array(k.memory.buffer, end - kk * n * 4, kk * n);
            const a = new Float32Array(k.memory.buffer, end - (kk * n + m * kk) * 4, m * kk);
            for (let i = 0; i < b.length; i++) b[i] = r() * 2 - 1;
            for (let i = 0; i < a.length; i++) a[i] = r() * 2 - 1;
            const c = k.alloc(m * n);
            const ref = refGemm(ta, tb, m, n, kk, 1, a, b, 0, c);
            k.gemm(ta, tb, m, n, kk, 1, a, b, 0, c);
            assertClose(c, ref.out, gemmTol(ref.mag), `gemm(${ta}, ${tb}, ${m}, ${n}, ${kk}) at the end of memory`);
            k.reset();
          }
        }
      }
    });

    it('generation also notices growth from outside (memory.grow)', async () => {
      const k = await make();
      const g = k.generation;
      k.memory.grow(1);
      assert.equal(k.generation, g + 1);
    });

    it('alloc validates its argument; instances are independent', async () => {
      const k = await make();
      assert.throws(() => k.alloc(-1), {
        name: 'RangeError',
        message: 'alloc: length must be a non-negative integer, got -1',
      });
      assert.throws(() => k.alloc(1.5), {
        name: 'RangeError',
        message: 'alloc: length must be a non-negative integer, got 1.5',
      });
      assert.throws(() => k.allocInt('8' as unknown as number), {
        name: 'TypeError',
        message: 'allocInt: length must be a number, got string',
      });
      assert.throws(() => k.alloc(2 ** 31), { name: 'RangeError', message: /^alloc: / });
      assert.equal(k.alloc(0).length, 0);
      const other = await make();
      assert.notEqual(other.memory, k.memory);
    });

    it('createWasmKernels rejects bad options and modules that are not the kernels', async () => {
      await assert.rejects(make(1000), { name: 'RangeError', message: /scratchBytes must be an integer/ });
      const empty = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
      await assert.rejects(createWasmKernels(empty), {
        message: /not the EdgeFed kernels module \(no export 'heapBase'\)/,
      });
      await assert.rejects(createWasmKernels(new Uint8Array([1, 2, 3])), {
        message: /^createWasmKernels: cannot instantiate/,
      });
    });
  });

  describe('kernels: wasm-simd loading', { skip: BUILD ? `build ${BUILD}: default build only` : false }, () => {
    it('loadWasmKernelsNode gives independent instances of the built module', async () => {
      const a = await loadWasmKernelsNode();
      const b = await loadWasmKernelsNode();
      assert.ok(a && b, `not loaded: ${wasmKernelsNodeError()}`);
      assert.equal(a.name, 'wasm-simd');
      assert.notEqual(a.memory, b.memory);
      const c = a.alloc(4);
      a.gemm(false, false, 2, 2, 2, 1, new Float32Array([1, 2, 3, 4]), new Float32Array([5, 6, 7, 8]), 0, c);
      assert.deepEqual(Array.from(c), [19, 22, 43, 50]);
    });

    it('kernels-wasm.ts stays browser-safe (imports only the interface and the shared checks)', () => {
      assert.deepEqual(browserSafeImports(new URL('./kernels-wasm.ts', import.meta.url)), [
        "import type { Kernels } from './kernels.js';",
        "import { describe, checkAdam, checkBiasAct, checkColSum, checkGemm, checkReluBackward, checkSgd, checkSoftmaxXent, gemmWithoutProducts } from './kernel-checks.js';",
      ]);
    });
  });
}
