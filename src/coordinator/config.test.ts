import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRunConfig } from './config.js';

test('run config refuses the feature combinations that do not compose, naming the field', () => {
  const cases: [object, RegExp][] = [
    [{ secagg: {}, overSelect: 0.3 }, /secagg: does not combine with over-selection/],
    [{ secagg: {}, compression: 'int8' }, /compression: secure aggregation sends fixed-point masked updates/],
    [{ secagg: {}, mode: 'async' }, /secagg: works with synchronous rounds only/],
    [{ secagg: {}, strategy: 'fedmedian' }, /strategy: secure aggregation: strategy 'fedmedian'/],
    [{ mode: 'async', compression: 'fp16' }, /compression: compressed updates work with synchronous rounds/],
  ];
  for (const [input, re] of cases) assert.throws(() => parseRunConfig(input), re, JSON.stringify(input));
  // each feature alone is accepted
  assert.equal(parseRunConfig({ secagg: {} }).secagg?.clip !== undefined, true);
  assert.equal(parseRunConfig({ overSelect: 0.3 }).overSelect, 0.3);
  assert.equal(parseRunConfig({ compression: 'int8' }).compression, 'int8');
});
