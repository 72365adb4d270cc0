// A node that cannot join says what to do and exits 2, instead of retrying forever: not enrolled (no join token
// on a coordinator with auth on), and a join token the coordinator refuses. Real processes on loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, killAll, start, startCoordinator, waitHealthy } from './deploy-harness.js';

async function exitOf(p: ReturnType<typeof start>): Promise<number | null> {
  return new Promise((resolve) => p.child.on('exit', (code) => resolve(code)));
}

test('a node that is not enrolled, or whose join token is refused, prints one line saying what to do and exits 2', {
  timeout: 180_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-node-err-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const coordinator = startCoordinator(port, join(dir, 'c.db'));
  try {
    await waitHealthy(url);
    const unenrolled = start([
      'node',
      '--coordinator',
      url,
      '--data',
      'mnist-partition:0/50',
      '--name',
      'stranger',
      '--key',
      join(dir, 'stranger.key'),
    ]);
    assert.equal(await exitOf(unenrolled), 2, unenrolled.output());
    const lines = unenrolled
      .output()
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('edgefed:'));
    assert.equal(lines.length, 1, unenrolled.output());
    assert.match(
      lines[0],
      /node stranger refused by http:\/\/127\.0\.0\.1:\d+: this node is not enrolled there .*--join-token-file/,
    );

    const badToken = start(
      [
        'node',
        '--coordinator',
        url,
        '--data',
        'mnist-partition:0/50',
        '--name',
        'stranger2',
        '--key',
        join(dir, 's2.key'),
      ],
      { EDGEFED_JOIN_TOKEN: 'not-a-token-0123456789abcdef' },
    );
    assert.equal(await exitOf(badToken), 2, badToken.output());
    assert.match(
      badToken.output(),
      /edgefed: enrolment refused \(401\).*ask the coordinator's admin for a fresh join token/,
    );
  } finally {
    killAll([coordinator]);
  }
});
