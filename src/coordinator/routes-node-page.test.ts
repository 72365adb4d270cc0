import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { registerNodePage } from './routes-node-page.js';
import { registerStaticDir } from './static-files.js';
import { decodeSlice } from '../data/slice.js';
import { loadNodeData } from '../node/data.js';
import { holdOutValidation } from '../node/local-data.js';

async function withApp(distDir: string, fn: (app: ReturnType<typeof Fastify>) => Promise<void>): Promise<void> {
  const app = Fastify();
  registerNodePage(app, distDir);
  await app.ready();
  try {
    await fn(app);
  } finally {
    await app.close();
  }
}

test('/node/ serves the built page and nothing outside its directory', async () => {
  const root = mkdtempSync(join(tmpdir(), 'edgefed-nodepage-'));
  const dist = join(root, 'dist');
  mkdirSync(dist);
  writeFileSync(join(dist, 'index.html'), '<!doctype html><title>node</title>');
  writeFileSync(join(dist, 'main.js'), 'export {};');
  writeFileSync(join(root, 'secret.txt'), 'outside the build');
  try {
    await withApp(dist, async (app) => {
      const index = await app.inject('/node/');
      assert.equal(index.statusCode, 200);
      assert.match(index.headers['content-type'] as string, /^text\/html/);
      assert.match(index.body, /<title>node<\/title>/);
      const js = await app.inject('/node/main.js');
      assert.equal(js.statusCode, 200);
      assert.match(js.headers['content-type'] as string, /^text\/javascript/);
      const bare = await app.inject('/node');
      assert.equal(bare.statusCode, 301);
      assert.equal(bare.headers.location, '/node/');
      for (const path of [
        '/node/../secret.txt',
        '/node/%2e%2e/secret.txt',
        '/node/..%2fsecret.txt',
        '/node/%2e%2e%2fsecret.txt',
        '/node/x%00.html',
        '/node/missing.js',
      ]) {
        const r = await app.inject(path);
        assert.ok(r.statusCode === 404 || r.statusCode === 400, `${path}: HTTP ${r.statusCode}`);
        assert.doesNotMatch(r.body, /outside the build/, path);
      }
    });
    await withApp(join(root, 'not-built'), async (app) => {
      const r = await app.inject('/node/');
      assert.equal(r.statusCode, 503);
      assert.match(r.json().error.message, /npm run build:web/);
    });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('/node/ is served cross-origin isolated (COOP same-origin, COEP require-corp); other static directories are not', async () => {
  const root = mkdtempSync(join(tmpdir(), 'edgefed-nodepage-'));
  writeFileSync(join(root, 'index.html'), '<!doctype html><title>node</title>');
  writeFileSync(join(root, 'kernels-shared.wasm'), new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
  try {
    await withApp(root, async (app) => {
      for (const path of ['/node/', '/node/index.html', '/node/kernels-shared.wasm']) {
        const r = await app.inject(path);
        assert.equal(r.statusCode, 200, path);
        assert.equal(r.headers['cross-origin-opener-policy'], 'same-origin', path);
        assert.equal(r.headers['cross-origin-embedder-policy'], 'require-corp', path);
      }
    });
    // Other static directories keep their headers (the option is per directory).
    const app = Fastify();
    registerStaticDir(app, { prefix: '/other', dir: root, notBuilt: 'x' });
    await app.ready();
    try {
      const r = await app.inject('/other/');
      assert.equal(r.statusCode, 200);
      assert.equal(r.headers['cross-origin-opener-policy'], undefined);
      assert.equal(r.headers['cross-origin-embedder-policy'], undefined);
    } finally {
      await app.close();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('/v1/node-data/mnist-shard refuses bad shard specs with a reason', async () => {
  await withApp(tmpdir(), async (app) => {
    const cases: [string, RegExp][] = [
      ['', /shard=I\/N\[:PARTITION\] is required/],
      ['?shard=', /expected I\/N/],
      ['?shard=abc', /expected I\/N/],
      ['?shard=5/5', /need 0 <= I < N/],
      ['?shard=0/0', /need 0 <= I < N/],
      ['?shard=-1/4', /expected I\/N/],
      ['?shard=0/70000', /more shards than MNIST has/],
      ['?shard=0/4:bogus', /bogus/],
      ['?shard=0/4&shard=1/4', /required/],
    ];
    for (const [query, message] of cases) {
      const r = await app.inject(`/v1/node-data/mnist-shard${query}`);
      assert.equal(r.statusCode, 400, `${query}: HTTP ${r.statusCode}`);
      assert.equal(r.json().error.code, 'bad_request');
      assert.match(r.json().error.message, message, query);
    }
  });
});

test('/v1/node-data/mnist-shard serves the rows `edgefed node --data mnist-partition:I/N` trains on', async () => {
  await withApp(tmpdir(), async (app) => {
    const r = await app.inject('/v1/node-data/mnist-shard?shard=3/20');
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['content-type'], 'application/octet-stream');
    const bytes = r.rawPayload;
    const slice = decodeSlice(
      bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
      'shard',
    );
    assert.equal(slice.test.n, 0);
    assert.deepEqual(slice.train.featureShape, [28, 28, 1]);
    assert.equal(slice.train.numClasses, 10);
    // The browser's split of the shard equals the Node node's split, row for row.
    const browser = holdOutValidation(slice.train, 'n3');
    const node = loadNodeData('mnist-partition:3/20', 'n3');
    for (const part of ['train', 'validation'] as const) {
      assert.equal(browser[part].n, node[part].n, part);
      assert.deepEqual(browser[part].y, node[part].y, part);
      assert.deepEqual(browser[part].x, node[part].x, part);
    }
  });
});
