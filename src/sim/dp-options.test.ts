import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveOptions } from './options.ts';
import { parseRunConfig } from '../coordinator/config.ts';

const dp = 'dpfedavg:clip=1,noise=1';

test('simulations default to seeded DP noise (repeatable) and may ask for the CSPRNG', () => {
  assert.equal(resolveOptions({ strategy: dp }).dpNoise, 'seeded');
  assert.equal(resolveOptions({ strategy: dp, dpNoise: 'csprng' }).dpNoise, 'csprng');
  assert.throws(() => resolveOptions({ strategy: dp, dpNoise: 'urandom' as 'csprng' }), /--dp-noise/);
});

test('dpfedavg with over-selection is refused in simulation options and in deployed run configs', () => {
  assert.throws(
    () => resolveOptions({ strategy: dp, overSelect: 0.2, profile: 'uniform' }),
    /--over-select: dpfedavg samples nodes by Poisson sampling/,
  );
  assert.throws(() => parseRunConfig({ model: 'mlp', strategy: dp, overSelect: 0.2 }), /overSelect.*Poisson sampling/);
  assert.doesNotThrow(() => parseRunConfig({ model: 'mlp', strategy: dp }));
});

test('--local-dp: bad specs and gradient strategies are refused; a simulation applies it on the nodes, repeatably', async () => {
  assert.throws(() => resolveOptions({ localDp: 'clip=1' }), /local DP 'clip=1': noise must be a number > 0/);
  assert.throws(
    () => resolveOptions({ localDp: 'clip=1,noise=1', strategy: 'fedsgd' }),
    /--local-dp: local DP noises model updates/,
  );
  const { runSimulation } = await import('./simulate.ts');
  const base = { nodes: 2, rounds: 1, limitTrain: 400, limitTest: 200, workers: 1, trainer: 'engine' as const };
  const plain = await runSimulation(base);
  const noised = await runSimulation({ ...base, localDp: 'clip=0.5,noise=1' });
  const again = await runSimulation({ ...base, localDp: 'clip=0.5,noise=1' });
  assert.notEqual(noised.modelSha256, plain.modelSha256, 'the nodes noised their updates');
  assert.equal(again.modelSha256, noised.modelSha256, 'seeded local noise repeats');
});
