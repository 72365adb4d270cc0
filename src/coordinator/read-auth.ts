/**
 * Who may read model versions and use the coordinator's predictions: with auth on, an enrolled node
 * (a request signed with its key, see core/request-auth.ts; fresh within 5 minutes, nonce not seen
 * before) or an operator with the admin bearer token. With auth off (development), anyone.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AUTH_HEADERS, canonicalBody, verifyRequest } from '../core/request-auth.js';
import { fromHex } from '../core/identity.js';
import type { Store } from './store.js';
import { nodeCrypto } from '../net/node-crypto.js';

const SKEW_MS = 5 * 60 * 1000;
const MAX_NONCES = 100_000;

export type ReadGuard = (req: FastifyRequest, reply: FastifyReply) => Promise<boolean>;

export function makeReadGuard(o: { store: Store; auth: boolean; adminToken: string }): ReadGuard {
  const seen = new Map<string, number>();
  const deny = async (reply: FastifyReply, message: string) => {
    await reply.code(401).send({ error: { code: 'unauthorized', message } });
    return false;
  };
  return async (req, reply) => {
    if (!o.auth || req.headers.authorization === `Bearer ${o.adminToken}`) return true;
    const h = (k: string) => (typeof req.headers[k] === 'string' ? (req.headers[k] as string) : undefined);
    const name = h(AUTH_HEADERS.node);
    const timestamp = Number(h(AUTH_HEADERS.timestamp));
    const nonce = h(AUTH_HEADERS.nonce);
    const signature = h(AUTH_HEADERS.signature);
    if (!name || !nonce || !signature) return deny(reply, 'a node signature (x-edgefed-* headers) or the admin token is required');
    const keyHex = o.store.nodeKey(name);
    if (!keyHex) return deny(reply, `node ${name} is not enrolled`);
    if (!Number.isSafeInteger(timestamp) || Math.abs(Date.now() - timestamp) > SKEW_MS || !/^[0-9a-f]{32}$/.test(nonce) || seen.has(nonce)) {
      return deny(reply, 'request signature is stale, replayed or malformed');
    }
    const ok = verifyRequest({ name, timestamp, nonce, method: req.method, path: req.url, body: canonicalBody(req.body) }, signature, fromHex(keyHex, 32, 'public key'), nodeCrypto);
    if (!ok) return deny(reply, 'request signature does not verify with the node\'s enrolled key');
    for (const [k, t] of seen) { // oldest first: stop at the first nonce still inside the window
      if (Date.now() - t <= SKEW_MS && seen.size < MAX_NONCES) break;
      seen.delete(k);
    }
    seen.set(nonce, Date.now());
    return true;
  };
}
