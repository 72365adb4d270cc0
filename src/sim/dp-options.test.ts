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
  assert.throws(() => resolveOptions({ strategy: dp, overSelect: 0.2, profile: 'uniform' }), /--over-select: dpfedavg samples nodes by Poisson sampling/);
  assert.throws(() => parseRunConfig({ model: 'mlp', strategy: dp, overSelect: 0.2 }), /overSelect.*Poisson sampling/);
  assert.doesNotThrow(() => parseRunConfig({ model: 'mlp', strategy: dp }));
});
