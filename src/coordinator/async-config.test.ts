import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRunConfig } from './config.js';
import { asyncSettings } from './async-config.js';

test('run config mode "async": defaults from minNodes, and bad settings refused with the field', () => {
  const c = parseRunConfig({ mode: 'async', minNodes: 4 });
  assert.deepEqual(asyncSettings(c), { concurrency: 4, bufferSize: 4, serverLr: 1 });
  assert.deepEqual(asyncSettings(parseRunConfig({ mode: 'async', concurrency: 30, bufferSize: 5, serverLr: 0.5 })), {
    concurrency: 30,
    bufferSize: 5,
    serverLr: 0.5,
  });
  assert.equal(parseRunConfig({}).mode, 'sync');
  const cases: [object, RegExp][] = [
    [
      { mode: 'async', bufferSize: 3, concurrency: 2 },
      /run config: concurrency: must be >= the buffer size K = 3 \(nodes training at once\), got 2/,
    ],
    [{ mode: 'async', bufferSize: 0 }, /run config: bufferSize/],
    [{ mode: 'async', serverLr: 0 }, /run config: serverLr/],
    [{ mode: 'async', strategy: 'fedadam' }, /run config: strategy: mode "async" fuses with FedBuff/],
    [{ mode: 'async', overSelect: 0.5 }, /run config: overSelect: applies to mode "sync" only/],
    [{ mode: 'async', evalFraction: 0.2 }, /run config: evalFraction: applies to mode "sync" only/],
    [{ bufferSize: 2 }, /run config: bufferSize: applies to mode "async" only/],
    [{ mode: 'fast' }, /run config: mode/],
  ];
  for (const [input, re] of cases) assert.throws(() => parseRunConfig(input), re, JSON.stringify(input));
});
