// Both Kernels implementations through the suite every implementation runs (test/support/kernel-suite.ts:
// float64 references and bad input), and against each other. The native block runs only when the addon is
// built (node scripts/build-native.mjs).
import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Kernels } from './kernels.js';
import { jsKernels } from './kernels-js.js';
import { loadNativeKernels, nativeKernelsInfo } from './kernels-native.js';
import { getKernels } from './kernels-select.js';
import { prng, rand, native as loadedNative, nativeSkip } from '../../test/support/kernels.js';
import {
  assertClose,
  browserSafeImports,
  gemmTol,
  kernelSuite,
  plainArrays,
  refGemm,
} from '../../test/support/kernel-suite.js';

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
  });

  describe('kernels: native and js agree', () => {
    const both = <T>(run: (k: Kernels) => T): [T, T] => [run(native), run(jsKernels)];

    it('gemm at training size (32 x 128 x 784), all transposes', () => {
      const m = 32,
        n = 128,
        kk = 784;
      const r = prng(11);
      const a = rand(m * kk, r),
        b = rand(kk * n, r),
        c0 = rand(m * n, r);
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          const [x, y] = both((k) => {
            const c = c0.slice();
            k.gemm(ta, tb, m, n, kk, 0.7, a, b, 0.3, c);
            return c;
          });
          const ref = refGemm(ta, tb, m, n, kk, 0.7, a, b, 0.3, c0);
          assertClose(x, y, gemmTol(ref.mag), `native vs js gemm(${ta}, ${tb})`);
        }
      }
    });

    it('elementwise kernels give identical bits', () => {
      const r = prng(12);
      const m = 50,
        n = 37;
      const c0 = rand(m * n, r, -2, 2),
        bias = rand(n, r);
      for (const relu of [false, true]) {
        const [x, y] = both((k) => {
          const c = c0.slice();
          k.biasAct(c, bias, m, n, relu);
          return c;
        });
        assert.deepEqual(x, y);
      }
      const act = c0.map((v) => v - 0.5);
      const [d1, d2] = both((k) => {
        const d = c0.slice();
        k.reluBackward(d, act);
        return d;
      });
      assert.deepEqual(d1, d2);
      const [s1, s2] = both((k) => {
        const o = new Float32Array(n);
        k.colSum(c0, m, n, o);
        return o;
      });
      assert.deepEqual(s1, s2);
      const g = rand(m * n, r);
      const [w1, w2] = both((k) => {
        const w = c0.slice(),
          vel = new Float32Array(m * n);
        for (let s = 0; s < 3; s++) {
          k.sgd(w, g, 0.05, 0.9, vel);
          k.sgd(w, g, 0.05, 0, null);
        }
        return [w, vel];
      });
      assert.deepEqual(w1, w2);
    });

    it('softmaxXent and adam agree to rounding', () => {
      const r = prng(13);
      const m = 64,
        n = 10;
      const logits = rand(m * n, r, -8, 8),
        labels = Int32Array.from({ length: m }, () => Math.floor(r() * n));
      const [x, y] = both((k) => {
        const d = new Float32Array(m * n);
        return { ...k.softmaxXent(logits, labels, m, n, 1 / m, d), d };
      });
      assert.equal(x.correct, y.correct);
      assert.ok(Math.abs(x.loss - y.loss) <= 1e-12 * Math.abs(y.loss), `loss ${x.loss} vs ${y.loss}`);
      assertClose(x.d, y.d, () => 1e-9, 'softmax delta');
      const w0 = rand(1000, r),
        g = rand(1000, r);
      const [a1, a2] = both((k) => {
        const w = w0.slice(),
          mm = new Float32Array(1000),
          v = new Float32Array(1000);
        for (let s = 1; s <= 5; s++) k.adam(w, g, mm, v, 0.001, 0.9, 0.999, 1e-7, s);
        return w;
      });
      assertClose(a1, a2, (i) => 1e-7 * Math.abs(a2[i]), 'adam w');
    });
  });
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
