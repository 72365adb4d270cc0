// A node that cannot join says what to do and exits 2, instead of retrying forever: not enrolled (no join token
// on a coordinator with auth on), a join token the coordinator refuses, another protocol version. A coordinator
// that is away is transient: the node says so once and retries. Real processes on loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, killAll, start, startCoordinator, waitFor, waitHealthy } from './deploy-harness.js';

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

test('a node whose coordinator is away says so once and keeps retrying with backoff (each retry only at debug)', {
  timeout: 120_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-node-away-'));
  const url = `http://127.0.0.1:${await freePort()}`; // nothing listens there
  const args = ['node', '--coordinator', url, '--data', 'mnist-partition:0/50', '--name', 'lone'];
  const node = start([...args, '--key', join(dir, 'lone.key'), '--log-format', 'json'], { EDGEFED_LOG: 'debug' });
  try {
    const lines = () =>
      node
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { level: number; msg: string });
    await waitFor(
      'three retries',
      async () => (lines().filter((l) => l.msg === 'still no coordinator; retrying').length >= 3 ? true : undefined),
      90_000,
    );
    const above = lines().filter((l) => l.level >= 40);
    assert.deepEqual(
      above.map((l) => l.msg),
      ['connection error', 'lost the coordinator; retrying with backoff until it is back'],
      node.output(),
    );
    assert.equal(node.child.exitCode, null, 'still running: an away coordinator is not a reason to stop');
  } finally {
    killAll([node]);
  }
});

test('a node refused for its protocol version exits 2 saying which side to upgrade', { timeout: 120_000 }, async () => {
  // A coordinator of another protocol version, as far as a node can tell: its challenge names protocol 99 and it
  // refuses this node's hello the way node-session.ts refuses one that does not parse (an error, then close 4002).
  const { WebSocketServer } = await import('ws');
  const port = await freePort();
  const server = new WebSocketServer({ host: '127.0.0.1', port });
  server.on('connection', (ws) => {
    ws.send(JSON.stringify({ type: 'challenge', protocol: 99, challenge: 'ab'.repeat(16) }));
    ws.on('message', () => {
      ws.send(
        JSON.stringify({ type: 'error', code: 'bad_hello', message: 'protocol: Invalid literal value, expected 99' }),
      );
      ws.close(4002, 'bad hello');
    });
  });
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-node-proto-'));
  const node = start([
    'node',
    '--coordinator',
    `http://127.0.0.1:${port}`,
    '--data',
    'mnist-partition:0/50',
    '--name',
    'old',
    '--key',
    join(dir, 'old.key'),
  ]);
  try {
    assert.equal(await exitOf(node), 2, node.output());
    const lines = node
      .output()
      .split('\n')
      .filter((l) => l.startsWith('edgefed:'));
    assert.equal(lines.length, 1, node.output());
    assert.match(
      lines[0],
      /refused this node's hello \(protocol: .*expected 99\); this node speaks protocol \d+: upgrade the older side/,
    );
  } finally {
    killAll([node]);
    server.close();
  }
});
