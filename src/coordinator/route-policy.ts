/**
 * Every HTTP route declares who may call it, beside its definition (`app.get(path, { config: read('runs:read') }, ...)`),
 * and one onRequest hook enforces it before the body is read, so an unauthenticated request never has its
 * body buffered or parsed. A route that declares nothing is refused (fail closed), and routesWithoutPolicy()
 * lets a test prove there is none.
 *
 * Policies:
 *   public    anyone (health, static pages, enrolment whose join token is in the body)
 *   read      a bearer token with the scope, or anyone when the coordinator runs with --public-read
 *   node      an enrolled node's signed request (core/request-auth.ts), or a bearer token with the scope
 *   operator  a bearer token with the scope (runs:write)
 *   admin     the admin token only
 * With --auth off (development: the network is trusted) every route but admin routes is open.
 * 401: no credential, or one that is wrong, revoked, expired or badly signed. 403: a valid credential
 * that this route does not accept.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AUTH_HEADERS, canonicalBody, verifyRequest } from '../core/request-auth.js';
import { fromHex } from '../core/identity.js';
import { nodeCrypto } from '../net/node-crypto.js';
import type { ApiTokens, Credential, Scope } from './api-tokens.js';
import type { AuditLog } from './audit.js';
import type { Store } from './store.js';

export type Access = 'public' | 'read' | 'node' | 'operator' | 'admin';

export interface RoutePolicy {
  access: Access;
  scope?: Scope;
  /** A read route that enrolled nodes may also call with a signed request. */
  nodes?: boolean;
}

/** Route options carrying a policy (fastify's per-route `config`). */
export const PUBLIC = { config: { policy: { access: 'public' } as RoutePolicy } };
export const ADMIN = { config: { policy: { access: 'admin' } as RoutePolicy } };
export const read = (scope: Scope, options: { nodes?: boolean } = {}) => ({
  config: { policy: { access: 'read', scope, nodes: options.nodes } as RoutePolicy },
});
export const nodeOr = (scope: Scope) => ({ config: { policy: { access: 'node', scope } as RoutePolicy } });
export const operator = (scope: Scope) => ({ config: { policy: { access: 'operator', scope } as RoutePolicy } });

/** Who made a request, as the audit log names them. */
export type Actor = Credential | { kind: 'node'; id: string } | { kind: 'anonymous'; id: 'public' };

const SKEW_MS = 5 * 60 * 1000;
const MAX_NONCES = 100_000;
const actors = new WeakMap<FastifyRequest, Actor>();
const pendingSignature = new WeakMap<
  FastifyRequest,
  { name: string; key: Uint8Array; timestamp: number; nonce: string; signature: string }
>();

export const actorOf = (req: FastifyRequest): Actor => actors.get(req) ?? { kind: 'anonymous', id: 'public' };
export const actorName = (a: Actor): string =>
  a.kind === 'token' ? `token:${a.id}` : a.kind === 'node' ? `node:${a.id}` : a.id;

export interface PolicyOptions {
  auth: boolean;
  publicRead: boolean;
  /** A coordinator opened for viewing: only public and read routes answer. */
  readOnly?: boolean;
  tokens: ApiTokens;
  store: Store;
  audit: AuditLog;
}

export interface RouteEntry {
  method: string;
  url: string;
  policy: RoutePolicy | undefined;
}

/** Installs the hooks; call before any route is registered. Returns the table of routes registered since. */
export function installRoutePolicy(app: FastifyInstance, options: PolicyOptions): RouteEntry[] {
  const routes: RouteEntry[] = [];
  const seenNonces = new Map<string, number>();
  app.addHook('onRoute', (r) => {
    const policy = (r.config as { policy?: RoutePolicy } | undefined)?.policy;
    for (const method of [r.method].flat()) routes.push({ method, url: r.url, policy });
  });

  const refuse = async (req: FastifyRequest, reply: FastifyReply, status: 401 | 403, message: string) => {
    options.audit.refused(`${req.method} ${req.routeOptions.url ?? '?'}`, req.ip, message);
    await reply.code(status).send({ error: { code: status === 401 ? 'unauthorized' : 'forbidden', message } });
    return reply;
  };

  app.addHook('onRequest', async (req, reply) => {
    if (req.is404) return;
    const policy = (req.routeOptions.config as { policy?: RoutePolicy }).policy;
    if (!policy) return refuse(req, reply, 403, 'this route declares no access policy, so it is closed');
    if (policy.access === 'public') return;
    if (options.readOnly && policy.access !== 'read')
      return refuse(req, reply, 403, 'this coordinator was opened read-only (edgefed open): it only shows saved runs');
    if (!options.auth && policy.access !== 'admin') return;
    if (policy.access === 'read' && options.publicRead) return;
    const need = policy.access === 'admin' ? 'the admin token' : `a token with scope ${policy.scope}`;
    const nodeAllowed = policy.access === 'node' || (policy.access === 'read' && policy.nodes === true);
    const bearer = bearerOf(req);
    if (bearer !== null) {
      const cred = options.tokens.identify(bearer);
      if (!cred) return refuse(req, reply, 401, 'the bearer token is unknown, revoked or expired');
      actors.set(req, cred);
      if (cred.kind === 'admin') return;
      if (policy.access === 'admin' || !cred.scopes.includes(policy.scope!))
        return refuse(req, reply, 403, `this route needs ${need}`);
      return;
    }
    if (typeof req.headers[AUTH_HEADERS.node] === 'string') {
      if (!nodeAllowed) return refuse(req, reply, 403, `nodes may not call this route; it needs ${need}`);
      const problem = checkNodeHeaders(req, options.store, seenNonces);
      if (typeof problem === 'string') return refuse(req, reply, 401, problem);
      actors.set(req, { kind: 'node', id: problem.name });
      // A body is covered by the signature: checked once parsed (preHandler), bounded by the route's bodyLimit.
      if (req.method === 'GET' || req.method === 'HEAD') return verifyNode(req, reply, problem, undefined);
      pendingSignature.set(req, problem);
      return;
    }
    const how = nodeAllowed ? `${need} or an enrolled node's signed request` : need;
    return refuse(req, reply, 401, `this route needs ${how} (header Authorization: Bearer <token>)`);
  });

  const verifyNode = async (
    req: FastifyRequest,
    reply: FastifyReply,
    s: NonNullable<ReturnType<typeof pendingSignature.get>>,
    body: unknown,
  ) => {
    const fields = {
      name: s.name,
      timestamp: s.timestamp,
      nonce: s.nonce,
      method: req.method,
      path: req.url,
      body: canonicalBody(body),
    };
    if (!verifyRequest(fields, s.signature, s.key, nodeCrypto))
      return refuse(req, reply, 401, "request signature does not verify with the node's enrolled key");
    for (const [k, t] of seenNonces) {
      // oldest first: stop at the first nonce still inside the window
      if (Date.now() - t <= SKEW_MS && seenNonces.size < MAX_NONCES) break;
      seenNonces.delete(k);
    }
    seenNonces.set(s.nonce, Date.now());
    return undefined;
  };
  app.addHook('preHandler', async (req, reply) => {
    const pending = pendingSignature.get(req);
    if (pending) return verifyNode(req, reply, pending, req.body);
  });
  return routes;
}

export function bearerOf(req: Pick<FastifyRequest, 'headers'>): string | null {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return null;
  const m = /^Bearer\s+(\S{1,512})$/i.exec(h.trim());
  return m ? m[1] : '';
}

function checkNodeHeaders(req: FastifyRequest, store: Store, seen: Map<string, number>) {
  const h = (k: string) => (typeof req.headers[k] === 'string' ? (req.headers[k] as string) : undefined);
  const name = h(AUTH_HEADERS.node)!;
  const timestamp = Number(h(AUTH_HEADERS.timestamp));
  const nonce = h(AUTH_HEADERS.nonce);
  const signature = h(AUTH_HEADERS.signature);
  if (!nonce || !signature || !/^[0-9a-f]{128}$/.test(signature))
    return 'a signed request needs all x-edgefed-* headers';
  const keyHex = name.length <= 128 ? store.nodeKey(name) : null;
  if (!keyHex) return `node ${name.slice(0, 128)} is not enrolled`;
  if (
    !Number.isSafeInteger(timestamp) ||
    Math.abs(Date.now() - timestamp) > SKEW_MS ||
    !/^[0-9a-f]{32}$/.test(nonce) ||
    seen.has(nonce)
  ) {
    return 'request signature is stale, replayed or malformed';
  }
  return { name, key: fromHex(keyHex, 32, 'public key'), timestamp, nonce, signature };
}
