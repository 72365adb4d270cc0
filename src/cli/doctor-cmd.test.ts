import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { runCli } from '../../test/helpers.js';
import { missingForFullSpeed, type DoctorReport } from './doctor-cmd.js';
import { NATIVE_ADDON_PATH } from '../nn/kernels-native.js';
import { cpuFeatures } from '../nn/cpu-features.js';

function report(over: {
  native?: Partial<DoctorReport['kernels']['native']>;
  wasm?: boolean;
  forcedBy?: string;
  selected?: string;
}): DoctorReport {
  return {
    versions: { edgefed: '0', node: 'v20', v8: '11', tfjs: null, openblas: null },
    cpu: { model: 'Xeon', cores: 2, vector: 'avx512', flags: [], loadAverage: [0, 0, 0] },
    kernels: {
      selected: over.selected ?? 'native-openblas',
      forcedBy: over.forcedBy ?? null,
      native: { available: true, error: null, core: 'SkylakeX', threads: 1, selection: null, ...over.native },
      wasm: { available: over.wasm ?? true, error: over.wasm === false ? 'not built' : null },
    },
    missing: [],
  };
}

const selection = (core: string, chosenBy: 'openblas' | 'environment' | 'edgefed') => ({
  detected: core,
  core,
  cpuBest: 'SkylakeX',
  chosenBy,
  environment: chosenBy === 'environment' ? core : null,
  rejected: [],
});

describe('edgefed doctor: what is missing for full speed', () => {
  it("nothing when the native kernels run the CPU's best core and wasm is built", () => {
    assert.deepEqual(missingForFullSpeed(report({ native: { selection: selection('SkylakeX', 'edgefed') } })), []);
  });

  it('names the fix for each gap', () => {
    const env = missingForFullSpeed(report({ native: { selection: selection('Haswell', 'environment') } }));
    assert.match(env.join('\n'), /OPENBLAS_CORETYPE=Haswell keeps OpenBLAS on Haswell.*unset OPENBLAS_CORETYPE/);
    const old = missingForFullSpeed(report({ native: { selection: selection('Prescott', 'openblas') } }));
    assert.match(old.join('\n'), /runs Prescott although this CPU \(avx512\) supports SkylakeX/);
    const none = missingForFullSpeed(report({ native: { available: false, error: 'addon not built' }, wasm: false }));
    assert.match(none[0], /addon not built.*libopenblas-dev.*build-native\.mjs/);
    assert.match(none[1], /build-wasm\.mjs/);
    const forced = missingForFullSpeed(report({ forcedBy: 'EDGEFED_KERNELS=js', selected: 'js' }));
    assert.match(forced.join('\n'), /EDGEFED_KERNELS=js makes training use js/);
  });
});

const avx512 = cpuFeatures().vector === 'avx512';
describe('edgefed doctor (CLI)', {
  skip: existsSync(NATIVE_ADDON_PATH) && avx512 ? false : 'needs the native addon and AVX-512',
}, () => {
  it('--json reports the core it chose and the OPENBLAS_CORETYPE that holds it back', async () => {
    const held = await runCli(['doctor', '--json'], { OPENBLAS_CORETYPE: 'Sandybridge' });
    assert.equal(held.code, 0, held.stderr);
    const r = JSON.parse(held.stdout) as DoctorReport;
    assert.equal(r.kernels.native.selection?.core, 'Sandybridge');
    assert.match(r.versions.openblas ?? '', /Sandybridge/);
    assert.match(r.missing.join('\n'), /OPENBLAS_CORETYPE=Sandybridge/);
    assert.ok(r.cpu.flags.includes('avx512f'));
  });

  it('with EDGEFED_KERNELS=js it says the native kernels load but are not used', async () => {
    const forced = await runCli(['doctor', '--json'], { EDGEFED_KERNELS: 'js' });
    assert.equal(forced.code, 0, forced.stderr);
    const r = JSON.parse(forced.stdout) as DoctorReport;
    assert.equal(r.kernels.selected, 'js');
    assert.equal(r.kernels.native.available, true);
    assert.match(r.missing.join('\n'), /EDGEFED_KERNELS=js makes training use js although the native kernels load/);
  });

  it('prints the upgraded core in text form', async () => {
    const up = await runCli(['doctor'], { OPENBLAS_CORETYPE: '', EDGEFED_TEST_OPENBLAS_DETECTED: 'Prescott' });
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stdout, /native {5}OpenBLAS core SkylakeX \(OpenBLAS detected Prescott\), 1 BLAS thread/);
    assert.doesNotMatch(up.stdout, /OPENBLAS_CORETYPE=/);
  });
});
