/**
 * The admin token's routes: join tokens for enrolling nodes, scoped API tokens (create, list with last use,
 * revoke), and the audit log.
 *   POST   /v1/admin/join-tokens   { ttlSeconds? }                    -> { token }
 *   POST   /v1/admin/tokens        { name?, scopes, expiresInSeconds } -> { token, ...info } (the secret, once)
 *   GET    /v1/admin/tokens                                           -> { tokens: info[] }
 *   DELETE /v1/admin/tokens/:id                                       -> info (revoked)
 *   GET    /v1/audit               ?limit=N                           -> { entries, refusals }
 */
import { ADMIN, actorName, actorOf } from './route-policy.js';
import { TokenError } from './api-tokens.js';
import { sendError, type RouteContext } from './route-context.js';

export function registerAdminRoutes(context: RouteContext): void {
  const { app, tokens, audit } = context;

  app.post('/v1/admin/join-tokens', ADMIN, async (req, reply) => {
    const ttl = Number((req.body as { ttlSeconds?: unknown } | undefined)?.ttlSeconds ?? 24 * 3600);
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > 365 * 24 * 3600)
      return sendError(reply, 400, 'bad_request', 'ttlSeconds must be a whole number of seconds up to a year');
    return reply.code(201).send({ token: context.createJoinToken(ttl) });
  });

  app.post('/v1/admin/tokens', ADMIN, async (req, reply) => {
    try {
      const { token, info } = tokens.create(req.body);
      audit.record('token.created', actorName(actorOf(req)), req.ip, {
        tokenId: info.id,
        name: info.name,
        scopes: info.scopes,
        expiresAt: info.expiresAt,
      });
      return reply.code(201).send({ token, ...info });
    } catch (e) {
      if (e instanceof TokenError) return sendError(reply, 400, 'bad_request', e.message);
      throw e;
    }
  });

  app.get('/v1/admin/tokens', ADMIN, async () => ({ tokens: tokens.list() }));

  app.delete('/v1/admin/tokens/:id', ADMIN, async (req, reply) => {
    const id = Number((req.params as { id: string }).id);
    const info = Number.isSafeInteger(id) && id > 0 ? tokens.revoke(id) : null;
    if (!info) return sendError(reply, 404, 'not_found', 'no such token (GET /v1/admin/tokens lists them)');
    audit.record('token.revoked', actorName(actorOf(req)), req.ip, { tokenId: id });
    return info;
  });

  app.get('/v1/audit', ADMIN, async (req, reply) => {
    const limit = Number((req.query as { limit?: string }).limit ?? 500);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
      return sendError(reply, 400, 'bad_request', 'limit must be a whole number from 1 to 10000');
    return { entries: audit.entries(limit), refusals: audit.refusals(limit) };
  });
}
