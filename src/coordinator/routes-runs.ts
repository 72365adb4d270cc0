/**
 * Runs: create (POST /v1/runs), list and read them, their events and checkpoint, and control them
 * (POST /v1/runs/:id/pause|resume|stop). Control needs runs:write; reads need runs:read (or --public-read).
 * Every control action goes to the audit log with the credential that made it.
 */
import type { FastifyRequest } from 'fastify';
import { parseRunConfig } from './config.js';
import { weightsSha256 } from '../model/hash.js';
import { operator, read, actorName, actorOf } from './route-policy.js';
import { sendError, type RouteContext } from './route-context.js';
import { isDpConfig, readerOf, visibleEvents, visibleRun } from './run-visibility.js';
import type { AuditAction } from './audit.js';
import { standardizationCoverage, type ContributionRecord } from './standardization-coverage.js';

const ACTIONS = { pause: 'run.paused', resume: 'run.resumed', stop: 'run.stopped' } as const satisfies Record<
  string,
  AuditAction
>;

/** The run id in the path, or 0 (ids start at 1) so a bad id is a 404, not a store error. */
const runId = (req: { params: unknown }) => {
  const id = Number((req.params as { id: string }).id);
  return Number.isSafeInteger(id) && id > 0 ? id : 0;
};
const who = (req: FastifyRequest) => actorName(actorOf(req));

export function registerRunRoutes(context: RouteContext): void {
  const { app, store, runs, audit } = context;

  app.post('/v1/runs', operator('runs:write'), async (req, reply) => {
    if (context.gateway)
      return sendError(reply, 409, 'gateway', 'a gateway takes its rounds from its coordinator: create runs there');
    let config;
    try {
      config = parseRunConfig(req.body);
    } catch (e) {
      return sendError(reply, 400, 'invalid_config', (e as Error).message);
    }
    const dataProblem = runs.datasets.problem(config.evalDataset);
    if (dataProblem) return sendError(reply, 400, 'invalid_config', `run config: evalDataset: ${dataProblem}`);
    const scalingProblem = runs.datasets.federatedStandardizeProblem(config);
    if (scalingProblem) return sendError(reply, 400, 'invalid_config', `run config: standardize: ${scalingProblem}`);
    // Off the event loop: decoding a test set here would hold every node's heartbeats and frames meanwhile.
    await runs.datasets.prepare(config.evalDataset);
    const id = store.createRun(config, config.seed);
    audit.record('run.created', who(req), req.ip, { runId: id, name: config.name });
    try {
      runs.start(id);
    } catch (e) {
      return reply.code(201).send({ id, status: 'failed', error: (e as Error).message });
    }
    return reply.code(201).send({ id });
  });

  app.get('/v1/runs', read('runs:read', { nodes: true }), async () => ({ runs: store.listRuns() }));

  app.get('/v1/runs/:id', read('runs:read'), async (req, reply) => {
    const run = store.getRun(runId(req));
    if (!run) return sendError(reply, 404, 'not_found', 'no such run');
    const rounds = store.roundRecords<ContributionRecord & Record<string, unknown>>(run.id);
    const reader = readerOf(actorOf(req));
    const stats = runs.standardizations.get(run.id);
    const coverage = stats && standardizationCoverage(stats, rounds);
    return visibleRun(
      {
        ...run,
        rounds,
        ...(coverage ? { standardization: { ...coverage, lateNodes: coverage.joinedLater.length } } : {}),
      },
      reader,
    );
  });

  for (const action of ['pause', 'resume', 'stop'] as const) {
    app.post(`/v1/runs/:id/${action}`, operator('runs:write'), async (req, reply) => {
      const run = store.getRun(runId(req));
      if (!run) return sendError(reply, 404, 'not_found', 'no such run');
      if (run.status === 'completed' || run.status === 'stopped' || run.status === 'failed') {
        return sendError(reply, 409, 'finished', `run is ${run.status}`);
      }
      runs.setControl(run.id, action === 'pause' ? 'pause' : action === 'stop' ? 'stop' : 'run');
      audit.record(ACTIONS[action], who(req), req.ip, { runId: run.id });
      return { id: run.id, action };
    });
  }

  app.get('/v1/runs/:id/events', read('runs:read'), async (req, reply) => {
    const run = store.getRun(runId(req));
    if (!run) return sendError(reply, 404, 'not_found', 'no such run');
    return { events: visibleEvents(store.events(run.id, 500), () => isDpConfig(run.config), readerOf(actorOf(req))) };
  });

  app.get('/v1/runs/:id/checkpoint', read('runs:read'), async (req, reply) => {
    const run = store.getRun(runId(req));
    const ckpt = run ? store.lastCheckpoint(run.id) : null;
    if (!run || !ckpt) return sendError(reply, 404, 'not_found', 'no checkpoint for this run');
    return { runId: run.id, round: ckpt.round, sha256: weightsSha256(ckpt.weights), numParams: ckpt.weights.length };
  });
}
