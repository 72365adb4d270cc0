/**
 * POST /v1/analytics: federated statistics over the connected nodes' data (operator scope runs:write, or the
 * admin token). The coordinator sends analytics rounds over the nodes' own connections (the transport that
 * carries training rounds; signed and bound like any request) and answers with the merged sketches only.
 * With `secagg: true` only the sum of the nodes' additive statistics is learnt (engine/analytics-secure.ts).
 * Nothing is stored: a query changes no run, node or model.
 */
import { operator } from './route-policy.js';
import { sendError, type RouteContext } from './route-context.js';
import { NetworkTransport } from './network-transport.js';
import { parseAnalyticsQuery, type AnalyticsQueryInput } from '../engine/analytics-query.js';
import { runAnalyticsQuery } from '../engine/analytics-secure.js';
import { dpWords } from '../engine/dp-noise.js';
import { ANALYTICS_RUN_ID } from './standardize-pass.js';

const DEFAULT_TIMEOUT_MS = 30_000;

interface AnalyticsBody extends AnalyticsQueryInput {
  /** Ask only nodes with these tags (as a run's selection). */
  tags?: Record<string, string>;
  timeoutMs?: number;
}

export function registerAnalyticsRoutes(c: RouteContext, auth: boolean): void {
  c.app.post('/v1/analytics', operator('runs:write'), async (req, reply) => {
    const body = (req.body ?? {}) as AnalyticsBody;
    if (typeof body !== 'object' || Array.isArray(body))
      return sendError(reply, 400, 'bad_request', 'body must be a JSON object');
    let query;
    try {
      const known = [
        'query',
        'features',
        'bins',
        'quantiles',
        'ranges',
        'dpNoise',
        'dpDelta',
        'secagg',
        'clip',
        'tags',
        'timeoutMs',
      ];
      const unknown = Object.keys(body).filter((k) => !known.includes(k));
      if (unknown.length > 0) throw new Error(`${unknown.join(', ')}: unknown field (accepted: ${known.join(', ')})`);
      const tags = body.tags ?? {};
      if (typeof tags !== 'object' || Object.values(tags).some((v) => typeof v !== 'string'))
        throw new Error('tags: expected an object of string values');
      if (
        body.timeoutMs !== undefined &&
        !(Number.isInteger(body.timeoutMs) && body.timeoutMs >= 100 && body.timeoutMs <= 600_000)
      )
        throw new Error('timeoutMs: expected a whole number of milliseconds in [100, 600000]');
      query = parseAnalyticsQuery(body);
    } catch (e) {
      return sendError(reply, 400, 'bad_query', (e as Error).message);
    }
    const transport = new NetworkTransport({
      registry: c.registry,
      selection: { tags: body.tags ?? {} },
      timeoutMs: body.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      runId: ANALYTICS_RUN_ID,
      allowUnbound: !auth,
      configure: async () => {},
    });
    try {
      // Deployment noise comes from the CSPRNG, never from a seed.
      const result = await runAnalyticsQuery(transport, query, { dpWords: () => dpWords('csprng', 0, 'analytics') });
      c.log.info(
        { nodes: result.nodes.answered.length, kinds: query.kinds, secagg: query.secagg !== undefined },
        'analytics query answered',
      );
      return result;
    } catch (e) {
      return sendError(reply, 422, 'analytics_failed', (e as Error).message);
    }
  });
}
