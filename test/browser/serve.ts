/** A tiny static file server for browser tests: a directory plus in-memory files, on 127.0.0.1 only. */
import { createServer, type Server } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { mimeType } from '../../src/net/mime.js';
import type { AddressInfo } from 'node:net';

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
 */
export async function serveStatic(root: string, files: Record<string, Uint8Array> = {}): Promise<StaticServer> {
  const base = resolve(root);
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    void (async () => {
      const send = (status: number, type: string, body: Uint8Array | string): void => {
        requests.push(`${status} ${req.method} ${req.url}`);
        const bytes = typeof body === 'string' ? Buffer.from(body) : body;
        res.writeHead(status, { 'Content-Type': type, 'Content-Length': bytes.byteLength, 'Cache-Control': 'no-store' });
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
    close: () => new Promise<void>((ok) => {
      server.closeAllConnections();
      server.close(() => ok());
    }),
  };
}
