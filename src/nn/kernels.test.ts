// Both Kernels implementations through the suite every implementation runs (test/support/kernel-suite.ts:
// float64 references and bad input), and against each other. The native block runs only when the addon is
// built (node scripts/build-native.mjs).
import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { jsKernels } from './kernels-js.js';
import { loadNativeKernels, nativeKernelsInfo } from './kernels-native.js';
import { getKernels } from './kernels-select.js';
import { native as loadedNative, nativeSkip } from '../../test/support/kernels.js';
import { agreementSuite, browserSafeImports, kernelSuite, plainArrays } from '../../test/support/kernel-suite.js';

// A local const, so TypeScript keeps its narrowing inside the suites' closures.
const native = loadedNative;

// ---------- registration ----------

describe('kernels: js (TypeScript)', () => {
  it('is named js', () => assert.equal(jsKernels.name, 'js'));
  kernelSuite(plainArrays(jsKernels));
});

if (native) {
  describe('kernels: native (OpenBLAS)', () => {
    it('is named native-openblas and runs OpenBLAS on one thread', () => {
      assert.equal(native.name, 'native-openblas');
      assert.equal(nativeKernelsInfo()?.threads, 1);
    });
    kernelSuite(plainArrays(native));

    it('gatherRows copies the picked rows exactly, in order, for any count and row width', () => {
      const gather = native.gatherRows!;
      for (const [rows, features, m] of [
        [50, 784, 32],
        [40, 5, 13],
        [9, 17, 9],
        [3, 1, 2],
        [20, 33, 0],
      ]) {
        const x = Float32Array.from({ length: rows * features }, (_, i) => Math.sin(i) * 1e3);
        const order = Int32Array.from({ length: m + 3 }, (_, i) => (i * 7 + 3) % rows);
        const out = new Float32Array(m * features + 4).fill(-1);
        gather(x, features, order, 3, m, out);
        const want = new Float32Array(m * features + 4).fill(-1);
        for (let i = 0; i < m; i++)
          want.set(x.subarray(order[3 + i] * features, (order[3 + i] + 1) * features), i * features);
        assert.deepEqual(out, want, `${m} of ${rows} rows of ${features}`);
      }
    });

    it('gatherRows rejects an index outside x, a short order or out, and out inside x, before writing', () => {
      const gather = native.gatherRows!;
      const x = new Float32Array(4 * 3).fill(1);
      const out = new Float32Array(6);
      const cases: [Int32Array, number, number, Float32Array, RegExp][] = [
        [Int32Array.of(0, 4), 0, 2, out, /order\[1\] = 4 is not a row of x \(which has 4\)/],
        [Int32Array.of(-1, 0), 0, 2, out, /order\[0\] = -1 is not a row of x/],
        [Int32Array.of(0, 1), 1, 2, out, /order has 2 elements, needs at least 3/],
        [Int32Array.of(0, 1), 0, 2, new Float32Array(5), /out has 5 elements, needs at least 6/],
        [Int32Array.of(0, 1), 0, 2, x.subarray(6), /out must not overlap x/],
      ];
      for (const [order, start, m, to, message] of cases) {
        assert.throws(() => gather(x, 3, order, start, m, to), message);
      }
      assert.deepEqual(out, new Float32Array(6), 'nothing was written');
      assert.deepEqual(x, new Float32Array(12).fill(1));
    });
  });

  describe('kernels: native and js agree', () => agreementSuite(plainArrays(native), 'rounding'));
} else {
  test('kernels: native (OpenBLAS)', { skip: nativeSkip }, () => {});
}

describe('getKernels', () => {
  function withEnv<T>(value: string | undefined, run: () => T): T {
    const saved = process.env.EDGEFED_KERNELS;
    if (value === undefined) delete process.env.EDGEFED_KERNELS;
    else process.env.EDGEFED_KERNELS = value;
    try {
      return run();
    } finally {
      if (saved === undefined) delete process.env.EDGEFED_KERNELS;
      else process.env.EDGEFED_KERNELS = saved;
    }
  }

  it("'js' gives the TypeScript kernels; 'auto' gives native when built, else js", () => {
    withEnv(undefined, () => {
      assert.equal(getKernels('js'), jsKernels);
      const nativeAvailable = loadNativeKernels() !== null;
      assert.equal(getKernels().name, nativeAvailable ? 'native-openblas' : 'js');
      assert.equal(getKernels('auto').name, nativeAvailable ? 'native-openblas' : 'js');
    });
  });

  it("'native' gives the addon, or a clear error when it is not built", () => {
    withEnv(undefined, () => {
      if (loadNativeKernels()) assert.equal(getKernels('native').name, 'native-openblas');
      else
        assert.throws(
          () => getKernels('native'),
          /native kernels requested \(getKernels\('native'\)\) but unavailable: .*build-native/,
        );
    });
  });

  it('EDGEFED_KERNELS overrides the preference and is validated', () => {
    withEnv('js', () => {
      assert.equal(getKernels('native'), jsKernels);
      assert.equal(loadNativeKernels(), null);
    });
    withEnv('native', () => {
      if (loadNativeKernels()) assert.equal(getKernels('js').name, 'native-openblas');
      else assert.throws(() => getKernels('js'), /native kernels requested \(EDGEFED_KERNELS=native\) but unavailable/);
    });
    withEnv('gpu', () =>
      assert.throws(() => getKernels(), /EDGEFED_KERNELS must be one of native, wasm, js, auto; got 'gpu'/),
    );
  });

  it('kernels-js.ts stays browser-safe (imports only the interface and the shared checks)', () => {
    assert.deepEqual(browserSafeImports(new URL('./kernels-js.ts', import.meta.url)), [
      "import type { Kernels } from './kernels.js';",
      "import { checkAdam, checkBiasAct, checkColSum, checkGemm, checkReluBackward, checkSgd, checkSoftmaxXent, gemmWithoutProducts } from './kernel-checks.js';",
    ]);
    const checks = readFileSync(new URL('./kernel-checks.ts', import.meta.url), 'utf8');
    assert.deepEqual(checks.match(/^\s*import\b.*$/gm) ?? [], [], 'kernel-checks.ts imports nothing');
    assert.ok(!/\brequire\(|\bprocess\.|from 'node:/.test(checks));
  });
});

describe('selectKernels', () => {
  it('reaches the wasm kernels by preference or EDGEFED_KERNELS=wasm, and getKernels points there', async () => {
    const { selectKernels } = await import('./kernels-select.js');
    const { loadWasmKernelsNode } = await import('./kernels-wasm-node.js');
    if (!(await loadWasmKernelsNode())) return; // not built: covered by kernels-wasm.test.ts skipping
    assert.equal((await selectKernels('wasm')).name, 'wasm-simd');
    const saved = process.env.EDGEFED_KERNELS;
    process.env.EDGEFED_KERNELS = 'wasm';
    try {
      assert.equal((await selectKernels()).name, 'wasm-simd');
      assert.throws(() => getKernels(), /use selectKernels/);
    } finally {
      if (saved === undefined) delete process.env.EDGEFED_KERNELS;
      else process.env.EDGEFED_KERNELS = saved;
    }
  });
});
