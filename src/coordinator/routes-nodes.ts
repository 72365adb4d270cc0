/**
 * Node-facing and monitoring routes: /healthz and the bandwidth probe (public), the node table
 * (GET /v1/nodes, nodes:read) and Prometheus metrics (GET /metrics, metrics:read).
 */
import { actorOf, PUBLIC, read } from './route-policy.js';
import { anyDpRun, readerOf, visibleNodes } from './run-visibility.js';
import { nodeViews } from './live.js';
import type { RouteContext } from './route-context.js';

export function registerNodeRoutes(context: RouteContext, protocol: number): void {
  context.app.get('/healthz', PUBLIC, async () => ({ ok: true, protocol }));
  // A fixed-size download the node agent times to estimate its bandwidth at enrolment.
  context.app.get('/v1/bandwidth-probe', PUBLIC, async (_req, reply) =>
    reply.type('application/octet-stream').send(Buffer.alloc(1 << 20)),
  );
  context.app.get('/v1/nodes', read('nodes:read'), async (req) => ({
    nodes: visibleNodes(nodeViews(context.store, context.registry), anyDpRun(context.store), readerOf(actorOf(req))),
  }));
  context.app.get('/metrics', read('metrics:read'), async (_req, reply) => {
    const m = await context.metrics.text();
    return reply.type(m.contentType).send(m.body);
  });
}
