/**
 * Serves a directory of built pages (e.g. web/dashboard/dist) under a URL prefix on the coordinator's
 * fastify app: GET and HEAD only, files only, known content types only. The path is decoded once and
 * refused (404) when it holds '..' or '.' segments, backslashes or NUL, or resolves outside the directory,
 * so no request reaches a file outside it. A directory that was never built answers 503 with the
 * command that builds it. The pages are public; the data they show is behind the API's policies.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { readFile, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { extname, resolve, sep } from 'node:path';
import { MIME } from '../net/mime.js';
import { PUBLIC } from './route-policy.js';

export interface StaticDirOptions {
  /** URL prefix without a trailing slash, e.g. '/dashboard'. */
  prefix: string;
  /** Directory with index.html. */
  dir: string;
  /** What to tell a visitor when dir does not exist (how to build it). */
  notBuilt: string;
  /** Extra headers on every file served (e.g. CROSS_ORIGIN_ISOLATION). */
  headers?: Readonly<Record<string, string>>;
}

/**
 * The headers that make a page cross-origin isolated (COOP same-origin, COEP require-corp): only then do
 * browsers give it SharedArrayBuffer, which multi-threaded WebAssembly needs (shared memory between workers).
 * The page may then load only same-origin resources or ones that opt in (CORS / CORP).
 */
export const CROSS_ORIGIN_ISOLATION: Readonly<Record<string, string>> = Object.freeze({
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
});

/** The file under `root` that URL path `rest` (after the prefix, still percent-encoded) names, or null. */
export function resolveStaticPath(root: string, rest: string): string | null {
  let path: string;
  try {
    path = decodeURIComponent(rest);
  } catch {
    return null;
  }
  if (path.includes('\0') || path.includes('\\')) return null;
  const segments = path.split('/');
  if (segments.some((s) => s === '..' || s === '.')) return null;
  if (path === '' || path.endsWith('/')) path += 'index.html';
  const base = resolve(root);
  const file = resolve(base, path.replace(/^\/+/, ''));
  if (!file.startsWith(base + sep)) return null;
  if (!(extname(file).toLowerCase() in MIME)) return null;
  return file;
}

export function registerStaticDir(app: FastifyInstance, options: StaticDirOptions): void {
  const notFound = (reply: FastifyReply) =>
    reply.code(404).send({ error: { code: 'not_found', message: 'no such file' } });
  const serve = async (req: FastifyRequest, reply: FastifyReply) => {
    if (!existsSync(options.dir))
      return reply.code(503).send({ error: { code: 'not_built', message: options.notBuilt } });
    const url = req.raw.url ?? '';
    const rest = url.slice(options.prefix.length + 1).split(/[?#]/)[0];
    const file = resolveStaticPath(options.dir, rest);
    if (!file) return notFound(reply);
    const info = await stat(file).catch(() => null);
    if (!info?.isFile()) return notFound(reply);
    // Vite names assets by content hash, so they never change; pages are re-checked on each visit.
    const immutable = file.includes(`${sep}assets${sep}`);
    if (options.headers) reply.headers(options.headers);
    return reply
      .type(MIME[extname(file).toLowerCase()])
      .header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .send(await readFile(file));
  };
  app.get(options.prefix, PUBLIC, async (_req, reply) => reply.redirect(`${options.prefix}/`, 301));
  app.get(`${options.prefix}/*`, PUBLIC, serve);
}
