import { test } from 'node:test';
import assert from 'node:assert/strict';
import { trainerLabel } from './trainer-label.js';
import { EngineTrainer } from './engine-trainer.js';
import { builtinModel } from './spec.js';
import { jsKernels } from '../nn/kernels-js.js';
import { loadNativeKernels, nativeKernelsInfo } from '../nn/kernels-native.js';
import { nodePlatformLabel } from '../node/platform-node.js';

const spec = builtinModel('mlp', [28, 28, 1], 10);

test('a trainer is labelled with its kernels and, on native kernels, the OpenBLAS core', () => {
  assert.equal(trainerLabel(new EngineTrainer(spec, jsKernels)), 'engine/js');
  assert.equal(trainerLabel({ kind: 'tfjs' } as never), 'tfjs');
  const native = loadNativeKernels();
  if (native) {
    const core = nativeKernelsInfo()!.selection.core!;
    assert.equal(trainerLabel(new EngineTrainer(spec, native)), `engine/native-openblas/${core}`);
  }
});

test("a Node agent reports its kernels and core in resources.platform, within the hello schema's 64 characters", () => {
  const label = nodePlatformLabel();
  assert.ok(label.length <= 64, label);
  assert.ok(label.startsWith(`node-${process.version}`), label);
  if (loadNativeKernels())
    assert.equal(label, `node-${process.version} native-openblas/${nativeKernelsInfo()!.selection.core}`);
});
