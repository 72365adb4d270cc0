// The four builds of the wasm kernels: the relaxed-SIMD build is chosen only where the engine compiles it
// (Node 20 does not: the plain SIMD build is the fallback), and passes the kernel oracle suites where it
// runs (a child Node with relaxed SIMD enabled by its V8 flag); the shared-memory build with workers
// splits gemm without changing a bit of the result, for any thread count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createWasmKernels, splitGemm, wasmRelaxedSimdSupported, type WasmKernels } from './kernels-wasm.js';
import {
  loadWasmKernelsNode,
  spawnNodeKernelThread,
  wasmBuildPath,
  wasmKernelsNodeError,
  WASM_KERNELS_PATH,
  WASM_RELAXED_KERNELS_PATH,
  WASM_RELAXED_SHARED_KERNELS_PATH,
  WASM_SHARED_KERNELS_PATH,
} from './kernels-wasm-node.js';
import { createThreadedWasmKernels, type KernelThread } from './kernels-wasm-threads.js';
import { prng } from '../../test/support/kernels.js';

const BUILDS = [
  WASM_KERNELS_PATH,
  WASM_RELAXED_KERNELS_PATH,
  WASM_SHARED_KERNELS_PATH,
  WASM_RELAXED_SHARED_KERNELS_PATH,
];
const missing = BUILDS.filter((p) => !existsSync(p));
const skip = missing.length ? `not built (${missing.join(', ')}); run \`node scripts/build-wasm.mjs\`` : false;
const RELAXED_FLAG = '--experimental-wasm-relaxed-simd';
const relaxedHere = wasmRelaxedSimdSupported();

test('feature detection agrees with the engine, and the loader falls back to the SIMD build', { skip }, async () => {
  const relaxedBytes = readFileSync(WASM_RELAXED_KERNELS_PATH);
  assert.equal(relaxedHere, WebAssembly.validate(relaxedBytes), 'detection disagrees with compiling the build');
  assert.equal(WebAssembly.validate(readFileSync(WASM_KERNELS_PATH)), true);
  const k = await loadWasmKernelsNode();
  assert.ok(k, `not loaded: ${wasmKernelsNodeError()}`);
  assert.equal(k.name, relaxedHere ? 'wasm-simd-relaxed' : 'wasm-simd');
  assert.equal(k.relaxed, relaxedHere);
  assert.equal(k.threads, 1);
  assert.equal(wasmBuildPath('auto'), relaxedHere ? WASM_RELAXED_KERNELS_PATH : WASM_KERNELS_PATH);
  if (!relaxedHere) {
    // Node 20: the relaxed build, asked for by name, does not compile, and says so.
    assert.equal(await loadWasmKernelsNode({ build: 'relaxed' }), null);
    assert.match(wasmKernelsNodeError() ?? '', /kernels-relaxed\.wasm does not compile/);
    await assert.rejects(createWasmKernels(relaxedBytes), {
      message: /cannot instantiate the kernels module \(this engine does not support relaxed SIMD/,
    });
  }
});

test('the relaxed build passes the kernel oracle suites where relaxed SIMD runs (Node with its V8 flag)', {
  skip,
  timeout: 600_000,
}, () => {
  const file = fileURLToPath(new URL('./kernels-wasm.test.ts', import.meta.url));
  const r = spawnSync(process.execPath, [RELAXED_FLAG, '--import', 'tsx', file], {
    encoding: 'utf8',
    env: { ...process.env, EDGEFED_TEST_WASM_BUILD: 'relaxed', NODE_TEST_CONTEXT: undefined },
  });
  const out = `${r.stdout}${r.stderr}`;
  assert.equal(r.status, 0, `the suites failed on the relaxed build:\n${out.slice(-4000)}`);
  assert.match(out, /ok \d+ - is named wasm-simd-relaxed; the engine supports SIMD/);
  assert.match(out, /^# fail 0$/m);
  const passed = Number(/^# pass (\d+)$/m.exec(out)?.[1] ?? 0);
  assert.ok(passed >= 60, `only ${passed} tests passed on the relaxed build`);
  // And in that engine the loader picks the relaxed build by itself.
  const pick = spawnSync(
    process.execPath,
    [
      RELAXED_FLAG,
      '--import',
      'tsx',
      '-e',
      `import('${new URL('./kernels-wasm-node.ts', import.meta.url).href}')` +
        '.then(async (m) => console.log((await m.loadWasmKernelsNode()).name))',
    ],
    { encoding: 'utf8' },
  );
  assert.equal(pick.stdout.trim(), 'wasm-simd-relaxed', pick.stderr);
});

test('splitGemm cuts the longer side into whole tiles that cover C exactly once', () => {
  for (const [m, n, parts] of [
    [32, 128, 2],
    [784, 128, 2],
    [784, 128, 3],
    [5, 7, 4],
    [1, 1000, 8],
    [33, 33, 2],
  ]) {
    const slices = splitGemm(m, n, parts);
    assert.ok(slices.length >= 1 && slices.length <= parts, `${m}x${n}/${parts}: ${slices.length} slices`);
    const covered = new Uint8Array(m * n);
    for (const [i0, mc, j0, nc] of slices) {
      if (mc < m) assert.equal(i0 % 4, 0);
      if (nc < n) assert.equal(j0 % 8, 0);
      for (let i = i0; i < i0 + mc; i++) for (let j = j0; j < j0 + nc; j++) covered[i * n + j]++;
    }
    assert.ok(
      covered.every((c) => c === 1),
      `${m}x${n}/${parts}: some element not covered exactly once`,
    );
  }
});

function fill(k: WasmKernels, n: number, seed: number): Float32Array {
  const r = prng(seed);
  const a = k.alloc(n);
  for (let i = 0; i < n; i++) a[i] = r() * 2 - 1;
  return a;
}

test('threads split gemm without changing a bit: 2 and 3 threads vs one, every transpose and epilogue', {
  skip,
  timeout: 300_000,
}, async () => {
  const one = await createWasmKernels(readFileSync(WASM_KERNELS_PATH));
  const shared = readFileSync(WASM_SHARED_KERNELS_PATH);
  for (const threads of [2, 3]) {
    const k = await createThreadedWasmKernels(shared, threads, spawnNodeKernelThread, { splitPolicy: 'always' });
    try {
      assert.equal(k.name, `wasm-simd-mt${threads}`);
      assert.equal(k.threads, threads);
      assert.ok(k.memory.buffer instanceof SharedArrayBuffer);
      let seed = 1;
      for (const [m, n, kk] of [
        [32, 128, 784], // forward of the seed MLP's first layer (split by columns)
        [784, 128, 32], // its weight gradient (split by rows)
        [61, 70, 97], // ragged edges
      ]) {
        for (const ta of [false, true]) {
          for (const tb of [false, true]) {
            for (const [alpha, beta] of [
              [1, 0],
              [1, 1],
              [0.7, 0.3],
            ]) {
              k.reset();
              one.reset();
              const a = fill(k, m * kk, seed),
                b = fill(k, kk * n, seed + 1),
                c = fill(k, m * n, seed + 2);
              const a1 = fill(one, m * kk, seed),
                b1 = fill(one, kk * n, seed + 1),
                c1 = fill(one, m * n, seed + 2);
              seed += 3;
              k.gemm(ta, tb, m, n, kk, alpha, a, b, beta, c);
              one.gemm(ta, tb, m, n, kk, alpha, a1, b1, beta, c1);
              const same = c.every((x, i) => Object.is(x, c1[i]));
              assert.ok(same, `${threads} threads, gemm(${ta}, ${tb}) ${m}x${n}x${kk} alpha ${alpha} beta ${beta}`);
            }
          }
        }
      }
      // Arrays outside wasm memory go through the scratch, and still split.
      const a = new Float32Array(64 * 300).map((_, i) => Math.sin(i)),
        b = new Float32Array(300 * 96).map((_, i) => Math.cos(i));
      const c = new Float32Array(64 * 96),
        c1 = new Float32Array(64 * 96);
      k.gemm(false, false, 64, 96, 300, 1, a, b, 0, c);
      one.gemm(false, false, 64, 96, 300, 1, a, b, 0, c1);
      assert.deepEqual(c, c1);
    } finally {
      k.dispose();
    }
  }
});

test('adaptive splitting (the default) times both ways and never changes the result', { skip }, async () => {
  const one = await createWasmKernels(readFileSync(WASM_KERNELS_PATH));
  const k = await createThreadedWasmKernels(readFileSync(WASM_SHARED_KERNELS_PATH), 2, spawnNodeKernelThread);
  try {
    const a = fill(k, 32 * 784, 7),
      b = fill(k, 784 * 128, 8),
      c = k.alloc(32 * 128);
    const a1 = fill(one, 32 * 784, 7),
      b1 = fill(one, 784 * 128, 8),
      c1 = one.alloc(32 * 128);
    one.gemm(false, false, 32, 128, 784, 1, a1, b1, 0, c1);
    for (let call = 0; call < 40; call++) {
      c.fill(Number.NaN);
      k.gemm(false, false, 32, 128, 784, 1, a, b, 0, c);
      assert.ok(
        c.every((x, i) => Object.is(x, c1[i])),
        `call ${call}`,
      );
    }
  } finally {
    k.dispose();
  }
});

test('threaded kernels refuse what cannot work, with the reason', { skip }, async () => {
  const shared = readFileSync(WASM_SHARED_KERNELS_PATH);
  await assert.rejects(createThreadedWasmKernels(shared, 0, spawnNodeKernelThread), {
    name: 'RangeError',
    message: /threads must be an integer in \[1, 65\], got 0/,
  });
  // The own-memory build cannot share its memory with workers.
  await assert.rejects(createThreadedWasmKernels(readFileSync(WASM_KERNELS_PATH), 2, spawnNodeKernelThread), {
    message: /a gemm pool needs a shared-memory build/,
  });
  // A worker that cannot start: the error names it, and no worker is left running.
  let terminated = 0;
  const broken = (): KernelThread => {
    let listener: ((d: unknown) => void) | null = null;
    return {
      postMessage: () => setTimeout(() => listener?.({ error: 'no WebAssembly here' }), 1),
      onMessage: (f) => {
        listener = f;
      },
      onError: () => {},
      terminate: () => {
        terminated++;
      },
    };
  };
  await assert.rejects(createThreadedWasmKernels(shared, 3, broken), {
    message: /kernel worker \d: no WebAssembly here/,
  });
  assert.equal(terminated, 2);
  await assert.rejects(
    createThreadedWasmKernels(shared, 2, spawnNodeKernelThread, { splitPolicy: 'never' as 'always' }),
    {
      name: 'RangeError',
      message: /splitPolicy must be 'adaptive' or 'always', got never/,
    },
  );
  // One thread: the shared build on this thread alone.
  const solo = await createThreadedWasmKernels(shared, 1, spawnNodeKernelThread);
  assert.equal(solo.name, 'wasm-simd');
  assert.equal(solo.threads, 1);
  solo.dispose();
});
