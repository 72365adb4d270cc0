// A node's way in, against a real coordinator process: the hello is signed over a fresh challenge and what
// it declares, unauthenticated peers cannot make the coordinator buffer big messages, and join tokens stay
// off command lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { newIdentity, toHex } from '../src/core/identity.js';
import { makeHello, type HelloMessage } from '../src/net/node-protocol.js';
import { spawnNode } from '../src/cli/up-gateways.js';
import {
  freePort,
  joinToken,
  killAll,
  startCoordinator,
  startNode,
  waitFor,
  waitHealthy,
  waitOnline,
  type Proc,
} from './deploy-harness.js';
import { CLI } from './helpers.js';
import { helloOnChallenge } from './support/node-socket.js';
import { rawWebSocket, rssMb, streamHugeMessage } from './support/raw-ws.js';

async function coordinator(
  env: NodeJS.ProcessEnv = {},
  db = join(mkdtempSync(join(tmpdir(), 'edgefed-hello-')), 'state.db'),
  port?: number,
) {
  port ??= await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = startCoordinator(port, db, undefined, [], env);
  await waitHealthy(url).catch((e: Error) => {
    killAll([proc]);
    throw new Error(`${e.message}\n${proc.output().slice(-1000)}`);
  });
  return { url, port, db, proc };
}

async function enrol(url: string, name: string, publicKey: Uint8Array): Promise<void> {
  const r = await fetch(`${url}/v1/enroll`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, publicKey: toHex(publicKey), token: await joinToken(url) }),
  });
  assert.equal(r.status, 201);
}

/** Connects, answers the challenge with `answer(challenge)`, and reports 'welcome' or the close code. */
function helloAttempt(url: string, answer: (challenge: string) => object): Promise<'welcome' | number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace('http', 'ws') + '/v1/ws');
    ws.on('message', (data, binary) => {
      if (binary) return;
      const msg = JSON.parse(String(data)) as { type: string; challenge?: string };
      if (msg.type === 'challenge') ws.send(JSON.stringify(answer(String(msg.challenge))));
      if (msg.type === 'welcome') {
        resolve('welcome');
        ws.close();
      }
    });
    ws.on('close', (code) => resolve(code));
    ws.on('error', reject);
  });
}

test('a captured hello is refused on a new connection and after a coordinator restart; a hello changed after signing is refused', async () => {
  const c = await coordinator();
  let restarted: Proc | undefined;
  try {
    const id = newIdentity();
    const declared = { name: 'n1', resources: { cores: 2, memoryMb: 512 }, tags: { site: 'a' } };
    await enrol(c.url, declared.name, id.publicKey);
    let captured: HelloMessage | undefined;
    assert.equal(await helloAttempt(c.url, (ch) => (captured = makeHello(ch, declared, id.secretKey))), 'welcome');
    assert.equal(await helloAttempt(c.url, () => captured!), 4003, 'replayed on a new connection');

    c.proc.child.kill('SIGTERM');
    await waitFor('coordinator exit', async () => (c.proc.child.exitCode !== null ? true : undefined));
    restarted = startCoordinator(c.port, c.db);
    await waitHealthy(c.url);
    assert.equal(await helloAttempt(c.url, () => captured!), 4003, 'replayed after a restart');
    const tampered = [
      (h: HelloMessage) => ({ ...h, tags: { site: 'b' } }),
      (h: HelloMessage) => ({ ...h, tags: { ...h.tags, gpu: 'yes' } }),
      (h: HelloMessage) => ({ ...h, resources: { ...h.resources, cores: 64 } }),
      (h: HelloMessage) => ({ ...h, name: 'n2' }),
    ];
    for (const change of tampered)
      assert.equal(await helloAttempt(c.url, (ch) => change(makeHello(ch, declared, id.secretKey))), 4003);
    assert.equal(
      await helloAttempt(c.url, (ch) => makeHello(ch, declared, id.secretKey)),
      'welcome',
      'the honest node still gets in',
    );
  } finally {
    killAll([c.proc, ...(restarted ? [restarted] : [])]);
  }
});

test('200 MB messages before hello are cut off unbuffered; after hello EDGEFED_MAX_FRAME_BYTES bounds unchunked messages too', async () => {
  const c = await coordinator({ EDGEFED_MAX_FRAME_BYTES: '200000' });
  try {
    const pid = c.proc.child.pid!;
    const before = await rssMb(pid);
    const message = 200 * 1024 * 1024;
    const sockets = await Promise.all([0, 1, 2, 3].map(() => rawWebSocket(c.url.replace('http', 'ws') + '/v1/ws')));
    const written = await Promise.all(sockets.map((s) => streamHugeMessage(s, message)));
    for (const w of written)
      assert.ok(w < message, `the coordinator cut the connection (it read ${w} of ${message} bytes)`);
    const growth = (await rssMb(pid)) - before;
    assert.ok(growth < 100, `coordinator RSS grew ${growth.toFixed(1)} MB under 4 x 200 MB pre-hello messages`);

    // After hello: one unchunked message above the frame limit closes the connection (1009: message too big).
    const id = newIdentity();
    await enrol(c.url, 'big', id.publicKey);
    const ws = new WebSocket(c.url.replace('http', 'ws') + '/v1/ws');
    helloOnChallenge(ws, { name: 'big', resources: {}, tags: {} }, id.secretKey);
    await new Promise<void>((resolve) =>
      ws.on('message', (d, binary) => !binary && String(d).includes('welcome') && resolve()),
    );
    ws.send(new Uint8Array(1024 * 1024), { binary: true });
    assert.equal(await new Promise((r) => ws.once('close', (code) => r(code))), 1009);
  } finally {
    killAll([c.proc]);
  }
});

test('join tokens reach nodes by environment or file, never on a command line ps shows', async () => {
  const c = await coordinator();
  const procs: Proc[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-token-'));
  const child = spawnNode(
    CLI,
    { keys: join(dir, 'keys'), logs: join(dir, 'logs') },
    c.url,
    0,
    12,
    await joinToken(c.url),
  );
  try {
    const token = await joinToken(c.url);
    const file = join(dir, 'token');
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    procs.push(startNode(c.url, 'mnist-partition:1/12', 'from-file', ['--join-token-file', file]));
    await waitOnline(c.url, 'node0'); // edgefed up's way: the token in the child's environment
    await waitOnline(c.url, 'from-file');
    const argv = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0');
    assert.ok(argv.includes('node') && !argv.some((a) => /join-token|[0-9a-f]{48}/.test(a)), argv.join(' '));
  } finally {
    child.kill('SIGKILL');
    killAll([c.proc, ...procs]);
  }
});
