import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readPeerKeys } from './peer-keys.js';

test('--secagg-peers: one hex key per line with comments; every bad line named at once', () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-peers-'));
  const file = join(dir, 'peers.txt');
  writeFileSync(file, `# fleet keys\n${'ab'.repeat(32)}\n\n${'0F'.repeat(32)}  # node b\n`);
  const keys = readPeerKeys(file);
  assert.equal(keys.length, 2);
  assert.equal(keys[1][0], 0x0f);
  writeFileSync(file, `${'ab'.repeat(32)}\nnot-a-key\n${'ab'.repeat(31)}\n`);
  assert.throws(() => readPeerKeys(file), /line 2: expected 64 hex digits.*\n.*line 3: expected 64 hex digits/s);
  writeFileSync(file, '# nothing\n');
  assert.throws(() => readPeerKeys(file), /lists no keys/);
  assert.throws(() => readPeerKeys(join(dir, 'missing.txt')), /cannot read it/);
});
