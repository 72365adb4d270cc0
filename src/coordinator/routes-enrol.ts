/**
 * POST /v1/enroll { name, publicKey, token }: a node trades a one-time join token for an enrolled Ed25519
 * key. Public (the credential is the join token in the small body). Refusals are counted per source in the
 * audit log, never a row each, so a flood of bad tokens cannot grow the database.
 */
import { z } from 'zod';
import { createHash } from 'node:crypto';
import { PUBLIC } from './route-policy.js';
import { sendError, type RouteContext } from './route-context.js';

/** An enrolment body is three short strings. */
const ENROLL_BODY_LIMIT = 4096;

const EnrollSchema = z
  .object({
    name: z
      .string()
      .min(1)
      .max(128)
      .regex(/^[A-Za-z0-9_.:-]+$/),
    publicKey: z.string().regex(/^[0-9a-f]{64}$/),
    token: z.string().min(16).max(256),
  })
  .strict();

export const hashJoinToken = (t: string) => createHash('sha256').update(t).digest('hex');

export function registerEnrolRoutes(context: RouteContext): void {
  context.app.post('/v1/enroll', { ...PUBLIC, bodyLimit: ENROLL_BODY_LIMIT }, async (req, reply) => {
    const parsed = EnrollSchema.safeParse(req.body);
    if (!parsed.success) return sendError(reply, 400, 'bad_request', parsed.error.issues[0].message);
    try {
      context.store.redeemJoinToken(hashJoinToken(parsed.data.token), parsed.data.name, parsed.data.publicKey);
    } catch (e) {
      const status = (e as { code?: string }).code === 'conflict' ? 409 : 401;
      context.audit.refused('node.refused', req.ip, (e as Error).message);
      context.metrics.rejected('enroll_refused');
      context.log.debug(
        { name: parsed.data.name, code: 'enroll_refused', message: (e as Error).message },
        'enrolment refused',
      );
      return sendError(reply, status, 'enroll_refused', (e as Error).message);
    }
    context.audit.record('node.enrolled', 'join-token', req.ip, { name: parsed.data.name });
    context.log.info({ name: parsed.data.name }, 'node identity enrolled');
    return reply.code(201).send({ name: parsed.data.name });
  });
}
