import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { nodeHttpFetch } from './node-http.js';

/** A real loopback server; handler answers each request. */
async function serve(handler: (req: IncomingMessage, body: string, res: ServerResponse) => void) {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => handler(req, body, res));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { base, close: () => new Promise((r) => server.close(r)) };
}

test('GET reads the whole body as bytes, byte for byte, across many chunks', async () => {
  const payload = Buffer.alloc(3 << 20);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7919) & 0xff;
  const s = await serve((_req, _body, res) => res.end(payload));
  try {
    const r = await nodeHttpFetch(new URL('/probe', s.base));
    assert.equal(r.status, 200);
    const bytes = new Uint8Array(await r.arrayBuffer());
    assert.equal(bytes.byteLength, payload.length);
    assert.ok(Buffer.from(bytes).equals(payload));
  } finally {
    await s.close();
  }
});

test('POST sends the method, headers and a UTF-8 body with its byte length; the reply status and JSON come back', async () => {
  let seen: { method?: string; type?: string; length?: string; body: string } | undefined;
  const s = await serve((req, body, res) => {
    seen = { method: req.method, type: req.headers['content-type'], length: req.headers['content-length'], body };
    res.writeHead(403, { 'content-type': 'application/json' }).end('{"error":{"message":"no"}}');
  });
  try {
    const body = JSON.stringify({ name: 'nœud-1' });
    const r = await nodeHttpFetch(new URL('/v1/enroll', s.base), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    assert.equal(r.status, 403);
    assert.deepEqual(await r.json(), { error: { message: 'no' } });
    assert.deepEqual(seen, {
      method: 'POST',
      type: 'application/json',
      length: String(Buffer.byteLength(body)),
      body,
    });
  } finally {
    await s.close();
  }
});

test('a body that is not JSON rejects json(); arrayBuffer() still reads it', async () => {
  const s = await serve((_req, _body, res) => res.writeHead(502).end('bad gateway'));
  try {
    const r = await nodeHttpFetch(new URL('/', s.base));
    assert.equal(r.status, 502);
    await assert.rejects(r.json(), SyntaxError);
    assert.equal(Buffer.from(await r.arrayBuffer()).toString(), 'bad gateway');
  } finally {
    await s.close();
  }
});

test('a refused connection rejects with the method, the URL and the cause', async () => {
  const s = await serve((_req, _body, res) => res.end());
  const url = new URL('/v1/enroll', s.base);
  await s.close();
  await assert.rejects(nodeHttpFetch(url, { method: 'POST', body: '{}' }), (e: Error) => {
    assert.match(e.message, new RegExp(`^POST ${url.href.replace(/[/.]/g, '\\$&')}: connect ECONNREFUSED`));
    return true;
  });
});

test('a URL that is not http or https is refused before any request', async () => {
  await assert.rejects(
    nodeHttpFetch(new URL('ws://127.0.0.1:1/x')),
    /ws:\/\/127\.0\.0\.1:1\/x: expected an http: or https: URL/,
  );
});
