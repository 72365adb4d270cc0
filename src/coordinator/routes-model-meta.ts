/**
 * GET /v1/runs/:id/models/:version/edgefed.json: what a saved model needs besides its weights to take raw
 * input, in the file simulation writes beside model.json (so `edgefed predict --model DIR` reads either):
 * input shape, classes, CSV columns and, for a run with `standardize: 'federated'`, the federation's statistics
 * every version of the run was trained on. Serving nodes read it with each version they load.
 */
import type { FastifyReply } from 'fastify';
import { sendError, type RouteContext } from './route-context.js';
import { nodeOr } from './route-policy.js';
import { parseRunConfig } from './config.js';
import { runModelSpec } from './run-manager.js';
import { tensorSpecs } from '../model/spec.js';
import type { Dataset } from '../data/types.js';

/** A deployed model version's metadata (the fields `edgefed predict` reads, and where its scaling came from). */
export interface ModelVersionMeta {
  runId: number;
  version: number;
  featureShape: number[];
  numClasses: number;
  columns?: string[];
  classNames?: string[];
  labelColumn?: string;
  standardization?: { mean: number[]; std: number[] };
  /** federated: the statistics above; node: each node scaled with its own (raw input cannot be scaled here). */
  standardizedWith?: 'federated' | 'node';
}

export function registerModelMetaRoutes(c: RouteContext): void {
  const { app, store, runs } = c;
  app.get('/v1/runs/:id/models/:version/edgefed.json', nodeOr('models:read'), async (req, reply) => {
    const p = req.params as { id: string; version: string };
    const runId = /^[1-9]\d{0,9}$/.test(p.id) ? Number(p.id) : -1;
    const run = runId > 0 ? store.getRun(runId) : undefined;
    if (!run) return sendError(reply, 404, 'not_found', 'no such run');
    const version = p.version === 'latest' ? run.roundsCompleted : /^[1-9]\d{0,9}$/.test(p.version) ? +p.version : -1;
    if (version < 1 || version > run.roundsCompleted)
      return notFound(reply, runId, p.version, `run ${runId} has ${run.roundsCompleted} committed rounds`);
    const config = parseRunConfig(run.config);
    const federated = config.standardize === 'federated';
    let test: Dataset;
    try {
      test = federated ? runs.datasets.rawTestSet(config.evalDataset) : runs.datasets.testSet(config.evalDataset);
    } catch (e) {
      return sendError(reply, 409, 'dataset_unavailable', (e as Error).message);
    }
    const spec = runModelSpec(config, test);
    const tensors = tensorSpecs(spec);
    const csv = test as Dataset & { labelColumn?: string; classNames?: string[] };
    const stats = federated ? runs.standardizations.get(runId) : undefined;
    const meta: ModelVersionMeta = {
      runId,
      version,
      featureShape: spec.inputShape,
      numClasses: spec.loss === 'mse' ? 0 : tensors[tensors.length - 1].shape[0],
      ...(test.columns ? { columns: test.columns } : {}),
      ...(csv.classNames ? { classNames: csv.classNames } : {}),
      ...(csv.labelColumn ? { labelColumn: csv.labelColumn } : {}),
      ...(stats ? { standardization: { mean: stats.mean, std: stats.std } } : {}),
      ...(test.columns ? { standardizedWith: federated ? 'federated' : 'node' } : {}),
    };
    return meta;
  });
}

function notFound(reply: FastifyReply, runId: number, version: string, why: string) {
  return sendError(
    reply,
    404,
    'not_found',
    `run ${runId} has no model version ${version} (${why}; versions kept: GET /v1/runs/${runId}/models)`,
  );
}
