import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  bestCoreFor,
  candidateCores,
  coreTier,
  gemmError,
  describeCore,
  TEST_DETECTED_ENV,
  TEST_WRONG_ENV,
} from './openblas-core.js';
import { parseCpuInfo } from './cpu-features.js';
import { NATIVE_ADDON_PATH, type NativeKernelsInfo } from './kernels-native.js';
import { jsKernels } from './kernels-js.js';

describe('openblas core policy', () => {
  it('reads the vector level from /proc/cpuinfo flags', () => {
    const avx512 = 'model name\t: Xeon\nflags\t\t: fpu sse avx avx2 fma avx512f avx512cd avx512bw avx512dq avx512vl\n';
    assert.equal(parseCpuInfo(avx512, 'x').vector, 'avx512');
    assert.equal(parseCpuInfo(avx512, 'x').model, 'Xeon');
    assert.equal(parseCpuInfo('flags : sse avx avx2 fma avx512f\n', 'x').vector, 'avx2', 'avx512f alone is not enough');
    assert.equal(parseCpuInfo('flags : sse avx\n', 'x').vector, 'avx');
    assert.equal(parseCpuInfo('flags : sse sse2\n', 'x').vector, 'sse');
    assert.equal(parseCpuInfo('', 'Apple M2').vector, 'unknown');
    assert.equal(parseCpuInfo('', 'Apple M2').model, 'Apple M2');
  });

  it('ranks generic cores below the vector families', () => {
    for (const generic of ['Prescott', 'Katmai', 'Core2', 'Nehalem', 'Penryn'])
      assert.equal(coreTier(generic), 0, generic);
    assert.ok(coreTier('Sandybridge') < coreTier('Haswell'));
    assert.ok(coreTier('Haswell') < coreTier('SkylakeX'));
    assert.equal(coreTier('Zen'), coreTier('Haswell'));
    assert.equal(coreTier('COOPERLAKE'), coreTier('SkylakeX'));
    assert.equal(bestCoreFor({ vector: 'avx512' }), 'SkylakeX');
    assert.equal(bestCoreFor({ vector: 'avx2' }), 'Haswell');
    assert.equal(bestCoreFor({ vector: 'unknown' }), null);
  });

  it('tries the faster cores first only when upgrading, then the detected one, then slower fallbacks', () => {
    assert.deepEqual(candidateCores('Prescott', 'SkylakeX', true), ['SkylakeX', 'Haswell', 'Sandybridge', 'Prescott']);
    assert.deepEqual(candidateCores('Prescott', 'SkylakeX', false), ['Prescott']);
    assert.deepEqual(candidateCores('Haswell', 'SkylakeX', true), ['SkylakeX', 'Haswell', 'Sandybridge', 'Prescott']);
    assert.deepEqual(candidateCores('Haswell', 'SkylakeX', false), ['Haswell', 'Sandybridge', 'Prescott']);
    assert.deepEqual(candidateCores('Nehalem', 'Haswell', true), ['Haswell', 'Sandybridge', 'Nehalem']);
    assert.deepEqual(candidateCores('Cooperlake', 'SkylakeX', true), [
      'Cooperlake',
      'Haswell',
      'Sandybridge',
      'Prescott',
    ]);
    // A CPU whose flags are unknown never gets a core above the detected one.
    assert.deepEqual(candidateCores('Haswell', null, true), ['Haswell', 'Sandybridge', 'Prescott']);
  });

  it('the gemm check passes the TypeScript gemm itself and catches one wrong element', () => {
    assert.equal(gemmError(jsKernels.gemm), null);
    assert.match(gemmError(jsKernels.gemm, true) ?? '', /differs from the TypeScript gemm by 1\.00e\+0/);
  });

  it('describes the selection in one line', () => {
    const base = { detected: 'Prescott', cpuBest: 'SkylakeX', environment: null, rejected: [] };
    assert.equal(
      describeCore({ ...base, core: 'SkylakeX', chosenBy: 'edgefed' }),
      'SkylakeX (OpenBLAS detected Prescott)',
    );
    assert.equal(describeCore({ ...base, core: 'Haswell', chosenBy: 'environment' }), 'Haswell (OPENBLAS_CORETYPE)');
    assert.match(describeCore({ ...base, core: null, chosenBy: 'openblas' }), /every core failed/);
  });
});

/** Each case needs a fresh process: the core is chosen once per process. */
interface ChildSelection {
  kernels: string | null;
  info: NativeKernelsInfo | null;
  /** The core a worker thread started after the choice sees. */
  workerCore: string | null;
  stderr: string;
}

const NATIVE_TS = JSON.stringify(fileURLToPath(new URL('./kernels-native.ts', import.meta.url)));

function selectionIn(env: Record<string, string | undefined>): ChildSelection {
  // The worker loads the addon again: it must wait for and reuse the main thread's choice, not choose again.
  const worker = `const { register } = await import('tsx/esm/api'); register();
    const { loadNativeKernels, nativeKernelsInfo } = await import(${NATIVE_TS});
    loadNativeKernels();
    (await import('node:worker_threads')).parentPort.postMessage(nativeKernelsInfo()?.selection.core ?? null);`;
  const script = `import { loadNativeKernels, nativeKernelsInfo } from ${NATIVE_TS};
    import { Worker } from 'node:worker_threads';
    import { once } from 'node:events';
    const k = loadNativeKernels();
    const c = new Float32Array(4);
    k?.gemm(false, false, 2, 2, 2, 1, new Float32Array([1, 2, 3, 4]), new Float32Array([5, 6, 7, 8]), 0, c);
    const w = new Worker(${JSON.stringify(worker)}, { eval: true, type: 'module' });
    const [workerCore] = await once(w, 'message');
    await w.terminate();
    console.log(JSON.stringify({ kernels: k?.name ?? null, info: nativeKernelsInfo(), c: Array.from(c), workerCore }));`;
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete childEnv[key];
    else childEnv[key] = value;
  }
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    env: childEnv,
    encoding: 'utf8',
  });
  assert.equal(child.status, 0, child.stderr);
  const parsed = JSON.parse(child.stdout.trim().split('\n').pop()!);
  if (parsed.kernels) assert.deepEqual(parsed.c, [19, 22, 43, 50], 'gemm after the core switch');
  assert.equal(parsed.workerCore, parsed.info?.selection.core ?? null, 'a worker thread sees the same core');
  return { ...parsed, stderr: child.stderr };
}

const built = existsSync(NATIVE_ADDON_PATH);
const avx512 =
  parseCpuInfo(existsSync('/proc/cpuinfo') ? execFileSync('cat', ['/proc/cpuinfo'], { encoding: 'utf8' }) : '', 'x')
    .vector === 'avx512';

describe('openblas core selection in a real process', {
  skip: !built ? 'native addon not built' : !avx512 ? 'needs an AVX-512 CPU' : false,
}, () => {
  it('a generic core detected on an AVX-512 CPU is replaced by SkylakeX, and gemm still gives the right answer', () => {
    const r = selectionIn({ OPENBLAS_CORETYPE: undefined, [TEST_DETECTED_ENV]: 'Prescott' });
    assert.equal(r.kernels, 'native-openblas');
    assert.equal(r.info?.corename, 'SkylakeX');
    assert.match(r.info?.config, /SkylakeX/, 'openblas_get_config agrees: the switch took effect inside OpenBLAS');
    assert.equal(r.info?.selection.detected, 'Prescott');
    assert.equal(r.info?.selection.chosenBy, 'edgefed');
    assert.equal(r.info?.core, 'SkylakeX (OpenBLAS detected Prescott)');
  });

  it('a core whose gemm is wrong falls back to the next one down', () => {
    const r = selectionIn({
      OPENBLAS_CORETYPE: undefined,
      [TEST_DETECTED_ENV]: 'Prescott',
      [TEST_WRONG_ENV]: 'SkylakeX',
    });
    assert.equal(r.info?.corename, 'Haswell');
    assert.deepEqual(
      r.info?.selection.rejected.map((x) => x.core),
      ['SkylakeX'],
    );
    assert.equal(r.stderr.match(/OpenBLAS core check failed/g)?.length, 1, `one warning: ${r.stderr}`);
    assert.match(r.stderr, /SkylakeX: gemm\(.*differs from the TypeScript gemm.*using Haswell/);
  });

  it("an OPENBLAS_CORETYPE set by the user is kept, even below the CPU's best", () => {
    const r = selectionIn({ OPENBLAS_CORETYPE: 'Sandybridge', [TEST_DETECTED_ENV]: undefined });
    assert.equal(r.info?.corename, 'Sandybridge');
    assert.equal(r.info?.selection.chosenBy, 'environment');
    assert.equal(r.info?.selection.cpuBest, 'SkylakeX');
  });

  it('when every core is wrong the native kernels are refused', () => {
    const r = selectionIn({ OPENBLAS_CORETYPE: 'Prescott', [TEST_WRONG_ENV]: 'Prescott' });
    assert.equal(r.kernels, null);
    assert.equal(r.info, null);
    assert.match(r.stderr, /native kernels disabled/);
  });
});
