/**
 * Transport security modes. TLS: a coordinator serving https and wss with certificate files (a self-signed certificate made here
 * with openssl), two node processes that trust it through NODE_EXTRA_CA_CERTS, and a run that completes
 * over the encrypted connections. Plain http and clients that do not trust the certificate are refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ADMIN_TOKEN,
  freePort,
  killAll,
  runView,
  start,
  startCoordinator,
  startNode,
  waitFor,
  type Proc,
} from './deploy-harness.js';

/** A JSON request over https that trusts only `ca` (undefined: the system roots). */
function httpsJson<T>(
  url: string,
  path: string,
  ca: Buffer | undefined,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: T }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}${path}`,
      {
        method: body === undefined ? 'GET' : 'POST',
        ...(ca ? { ca } : {}),
        headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as T }));
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

test('coordinator and nodes run a round over https/wss with certificate files', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-tls-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  const ca = readFileSync(cert);
  const config = join(dir, 'run.json');
  writeFileSync(
    config,
    JSON.stringify({ model: 'linear', rounds: 2, minNodes: 2, limitTest: 1000, seed: 1, waitForNodesMs: 120000 }),
  );
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  const procs: Proc[] = [startCoordinator(port, join(dir, 'state.db'), config, ['--tls-cert', cert, '--tls-key', key])];
  try {
    await waitFor(
      'https health',
      async () => ((await httpsJson(url, '/healthz', ca)).status === 200 ? true : undefined),
      60_000,
    );
    await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`), 'plain http is not served on the TLS port');
    await assert.rejects(
      httpsJson(url, '/healthz', undefined),
      /self-signed|certificate/,
      'a client that does not trust the certificate is refused',
    );

    for (const name of ['t0', 't1']) {
      const token = await httpsJson<{ token: string }>(
        url,
        '/v1/admin/join-tokens',
        ca,
        {},
        { authorization: `Bearer ${ADMIN_TOKEN}` },
      );
      assert.equal(token.status, 201);
      procs.push(
        start(
          [
            'node',
            '--coordinator',
            url,
            '--data',
            `mnist-partition:${name === 't0' ? 0 : 1}/20`,
            '--name',
            name,
            '--key',
            join(dir, `${name}.key`),
            '--join-token',
            token.json.token,
          ],
          { NODE_EXTRA_CA_CERTS: cert },
        ),
      );
    }
    const run = await waitFor('run over TLS completed', async () => {
      const { json } = await httpsJson<{ status: string; rounds: { contributed: number[]; fused: boolean }[] }>(
        url,
        '/v1/runs/1',
        ca,
        undefined,
        { authorization: `Bearer ${ADMIN_TOKEN}` },
      );
      return json.status === 'completed' ? json : undefined;
    });
    assert.equal(run.rounds.length, 2);
    assert.ok(
      run.rounds.every((r) => r.fused && r.contributed.length === 2),
      JSON.stringify(run.rounds),
    );
  } finally {
    killAll(procs);
  }
});

test('with --auth off (development on a trusted network) unenrolled nodes take part without join tokens', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-noauth-'));
  const config = join(dir, 'run.json');
  writeFileSync(
    config,
    JSON.stringify({ model: 'linear', rounds: 1, minNodes: 2, limitTest: 1000, seed: 1, waitForNodesMs: 120000 }),
  );
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const procs: Proc[] = [startCoordinator(port, join(dir, 'state.db'), config, ['--auth', 'off'])];
  try {
    for (const name of ['o0', 'o1']) procs.push(startNode(url, `mnist-partition:${name === 'o0' ? 0 : 1}/20`, name));
    const run = await waitFor('run without auth completed', async () => {
      const r = await runView(url, 1).catch(() => undefined);
      return r?.status === 'completed' ? r : undefined;
    });
    assert.ok(run.rounds[0].fused && run.rounds[0].contributed.length === 2, JSON.stringify(run.rounds));
  } finally {
    killAll(procs);
  }
});
