import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRunConfig } from './config.js';

test('every duration in a run config has an upper bound, named in the error', () => {
  const day = 24 * 3600 * 1000;
  assert.equal(parseRunConfig({ waitForNodesMs: day }).waitForNodesMs, day);
  assert.throws(() => parseRunConfig({ waitForNodesMs: day + 1 }), /waitForNodesMs/);
  assert.throws(() => parseRunConfig({ waitForNodesMs: 86_400_000_000 }), /waitForNodesMs/);
  assert.throws(() => parseRunConfig({ roundTimeoutMs: day + 1 }), /roundTimeoutMs/);
  assert.equal(parseRunConfig({ strategy: 'fedprox:0.01', workSeconds: 24 * 3600 }).workSeconds, 24 * 3600);
  assert.throws(() => parseRunConfig({ strategy: 'fedprox:0.01', workSeconds: 24 * 3600 + 1 }), /workSeconds/);
});
