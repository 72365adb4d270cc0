/** A tiny static file server for browser tests: a directory plus in-memory files, on 127.0.0.1 only. */
import { createServer, type Server } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mimeType } from '../../src/net/mime.js';
import { CROSS_ORIGIN_ISOLATION } from '../../src/coordinator/static-files.js';

/** Debian's Chromium, driven through playwright-core, and how the browser suite launches it. */
export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
/**
 * Builds one browser page (scripts/build-web.mjs, which also builds the WASM kernels when missing), so
 * the browser suite works from a fresh clone; one page only, so that tests running side by side do not
 * rebuild each other's page while it is served. Returns the build's report; throws with its output on failure.
 */
export function buildWebPage(page: 'engine-check' | 'node'): string {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const build = spawnSync(process.execPath, [join(root, 'scripts', 'build-web.mjs'), page], {
    cwd: root,
    encoding: 'utf8',
  });
  if (build.status !== 0) throw new Error(`build-web failed:\n${build.stdout}${build.stderr}`);
  return build.stdout.trim();
}

/** node:test's skip option: false, or why the browser suite cannot run here. */
export const chromiumMissing: false | string = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} not found: install Debian's chromium (apt-get install chromium) to run the browser suite`;

export interface StaticServer {
  /** Base URL ending in '/', e.g. http://127.0.0.1:41234/ */
  url: string;
  /** Paths requested so far with their status, in order (for diagnostics). */
  requests: string[];
  close(): Promise<void>;
}

/**
 * Serves GET/HEAD for files under `root` and for the in-memory `files` (URL path without the leading '/',
 * e.g. 'data/mnist-slice.bin'), which take precedence. '/' serves index.html. Anything else is a 404.
 * crossOriginIsolated adds the COOP/COEP headers to every response.
 */
export async function serveStatic(
  root: string,
  files: Record<string, Uint8Array> = {},
  options: { crossOriginIsolated?: boolean } = {},
): Promise<StaticServer> {
  // COOP/COEP as the coordinator serves the node page (src/coordinator/static-files.ts): SharedArrayBuffer.
  const isolation = options.crossOriginIsolated ? CROSS_ORIGIN_ISOLATION : {};
  const base = resolve(root);
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    void (async () => {
      const send = (status: number, type: string, body: Uint8Array | string): void => {
        requests.push(`${status} ${req.method} ${req.url}`);
        const bytes = typeof body === 'string' ? Buffer.from(body) : body;
        res.writeHead(status, {
          'Content-Type': type,
          'Content-Length': bytes.byteLength,
          'Cache-Control': 'no-store',
          ...isolation,
        });
        res.end(req.method === 'HEAD' ? undefined : bytes);
      };
      try {
        if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'method not allowed\n');
        let path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname).replace(/^\/+/, '');
        if (path === '' || path.endsWith('/')) path += 'index.html';
        const mem = files[path];
        if (mem) return send(200, mimeType(path), mem);
        const file = resolve(join(base, path));
        if (!file.startsWith(base + sep)) return send(403, 'text/plain', 'forbidden\n');
        const info = await stat(file).catch(() => null);
        if (!info?.isFile()) return send(404, 'text/plain', `not found: /${path}\n`);
        send(200, mimeType(file), await readFile(file));
      } catch (e) {
        send(500, 'text/plain', `${e instanceof Error ? e.message : String(e)}\n`);
      }
    })();
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    requests,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
