import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveOptions } from './options.ts';

test('--compression: parsed specs pass, bad ones and stateful error feedback over a queue are refused', () => {
  assert.equal(resolveOptions({}).compression, 'none');
  assert.equal(resolveOptions({ compression: 'int8-block:256' }).compression, 'int8-block:256');
  assert.throws(() => resolveOptions({ compression: 'zip' }), /unknown compression 'zip'/);
  assert.throws(() => resolveOptions({ compression: 'int8-block:0' }), /block size/);
  // Any queue worker may take a node, so a residual kept by one worker would be lost to the next.
  assert.throws(
    () => resolveOptions({ queue: 'redis://127.0.0.1:6379', compression: 'topk:0.01' }),
    /--compression: error feedback .* add ,ef=off/,
  );
  assert.equal(
    resolveOptions({ queue: 'redis://127.0.0.1:6379', compression: 'topk:0.01,ef=off' }).compression,
    'topk:0.01,ef=off',
  );
  assert.equal(resolveOptions({ queue: 'redis://127.0.0.1:6379', compression: 'int8' }).compression, 'int8');
  assert.throws(
    () => resolveOptions({ mode: 'async', compression: 'int8' }),
    /--compression: compressed updates work with synchronous rounds/,
  );
});
