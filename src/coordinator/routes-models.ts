/**
 * The model registry's API and the coordinator's predictions:
 *   GET  /v1/runs/:id/models                               versions kept (see model-versions.ts)
 *   GET  /v1/runs/:id/models/:version/model.json           tfjs layers format (:version a number or 'latest')
 *   GET  /v1/runs/:id/models/:version/weights.bin          its weights (model.json names ./weights.bin)
 *   POST /v1/predict  { runId, model?: 'latest' | N | 'escalation', threshold?, inputs | input }
 *                     -> { modelVersion, scaling, predictions }; a run with standardize 'federated' takes raw
 *                     CSV feature rows and scales them with its committed statistics, as node serving and
 *                     `edgefed predict` do (scaling.statistics 'federated'); other runs take rows as the model does
 * Each needs an enrolled node's signed request or a token with models:read (route-policy.ts).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Store } from './store.js';
import type { RunManager } from './run-manager.js';
import { ModelVersions, type ModelVersion } from './model-versions.js';
import { nodeOr } from './route-policy.js';
import type { tfjsArtifacts } from '../model/tfjs.js';
import { weightsSha256 } from '../model/hash.js';
import { join } from 'node:path';
import { ServedModel } from '../predict/served-model.js';
import { applyPolicy } from '../predict/policy.js';
import { parsePredictBody, PredictError, predictErrorStatus } from '../predict/request.js';
import { scaleRows, scalingReport, type InputScaling } from '../predict/input-scaling.js';

export const PREDICT_BODY_LIMIT = 16 * 1024 * 1024;
const ARTIFACTS_CACHED = 8;

export interface ModelRoutesOptions {
  store: Store;
  runs: RunManager;
  /** The larger model low-confidence samples are escalated to (loaded from a tfjs model.json). */
  escalation?: ServedModel | null;
}

const error = (reply: FastifyReply, status: number, code: string, message: string) =>
  reply.code(status).send({ error: { code, message } });

function parseVersion(v: string): number | 'latest' | null {
  if (v === 'latest') return 'latest';
  return /^[1-9]\d{0,9}$/.test(v) ? Number(v) : null;
}

/** The escalation model: a tfjs model.json (and its weights) the coordinator serves for low-confidence samples. */
export async function loadEscalationModel(path: string): Promise<ServedModel> {
  const file = path.endsWith('.json') ? path : join(path, 'model.json');
  const { ensureTfjs, specFromModelJson } = await import('../model/tfjs.js'); // tfjs on use, not at startup
  await ensureTfjs();
  const { spec, weights } = await specFromModelJson(file);
  if (!weights) throw new Error(`${file}: the escalation model has no weights manifest`);
  const sha = weightsSha256(weights);
  return ServedModel.load(`escalation:${sha.slice(0, 12)}`, spec, weights, sha);
}

export function registerModelRoutes(app: FastifyInstance, options: ModelRoutesOptions) {
  const versions = new ModelVersions(options.store);
  const artifacts = new Map<string, ReturnType<typeof tfjsArtifacts>>();
  const loading = new Map<number, Promise<ServedModel>>();

  const find = async (params: unknown, reply: FastifyReply): Promise<{ runId: number; model: ModelVersion } | null> => {
    const p = params as { id: string; version: string };
    const runId = /^[1-9]\d{0,9}$/.test(p.id) ? Number(p.id) : -1;
    const version = parseVersion(p.version);
    if (runId < 0 || !options.store.getRun(runId)) return (await error(reply, 404, 'not_found', 'no such run'), null);
    if (version === null)
      return (
        await error(reply, 400, 'bad_version', `version must be a whole number >= 1 or 'latest', got '${p.version}'`),
        null
      );
    const model = versions.get(runId, version, options.runs.get(runId)?.spec);
    if (!model)
      return (
        await error(
          reply,
          404,
          'not_found',
          `run ${runId} has no model version ${p.version} (versions kept: GET /v1/runs/${runId}/models)`,
        ),
        null
      );
    return { runId, model };
  };
  const artifactsOf = (runId: number, version: ModelVersion) => {
    const key = `${runId}:${version.version}`;
    let a = artifacts.get(key);
    if (!a) {
      a = import('../model/tfjs.js').then((t) => t.tfjsArtifacts(version.spec, version.weights));
      artifacts.set(key, a);
      if (artifacts.size > ARTIFACTS_CACHED) artifacts.delete(artifacts.keys().next().value!);
    }
    return a;
  };

  app.get('/v1/runs/:id/models', nodeOr('models:read'), async (req, reply) => {
    const id = Number((req.params as { id: string }).id);
    if (!Number.isInteger(id) || id < 1 || !options.store.getRun(id))
      return error(reply, 404, 'not_found', 'no such run');
    return { runId: id, models: versions.list(id, options.runs.get(id)?.spec) };
  });
  app.get('/v1/runs/:id/models/:version/model.json', nodeOr('models:read'), async (req, reply) => {
    const found = await find(req.params, reply);
    if (!found) return reply;
    const { modelJson } = await artifactsOf(found.runId, found.model);
    return reply
      .header('x-edgefed-model-version', String(found.model.version))
      .header('x-edgefed-sha256', found.model.sha256)
      .send(modelJson);
  });
  app.get('/v1/runs/:id/models/:version/weights.bin', nodeOr('models:read'), async (req, reply) => {
    const found = await find(req.params, reply);
    if (!found) return reply;
    const { weightData } = await artifactsOf(found.runId, found.model);
    return reply
      .type('application/octet-stream')
      .header('x-edgefed-model-version', String(found.model.version))
      .send(Buffer.from(weightData));
  });

  /**
   * The run's newest version, loaded once per version. Returned without an await when already loaded, so
   * the caller starts predicting before any later swap can retire it; the previous one retires on a swap.
   */
  const loaded = new Map<number, ServedModel>();
  const latestServed = (runId: number, model: ModelVersion): ServedModel | Promise<ServedModel> => {
    const have = loaded.get(runId);
    if (have && have.version === model.version) return have;
    const pending = loading.get(runId);
    if (pending) return pending.then((m) => (m.version === model.version ? m : latestServed(runId, model)));
    const load = ServedModel.load(model.version, model.spec, model.weights, model.sha256).then((served) => {
      loaded.set(runId, served);
      loading.delete(runId);
      have?.retire();
      return served;
    });
    loading.set(runId, load);
    load.catch(() => loading.delete(runId));
    return load;
  };

  app.post('/v1/predict', { ...nodeOr('models:read'), bodyLimit: PREDICT_BODY_LIMIT }, async (req, reply) => {
    const body = (typeof req.body === 'object' && req.body !== null ? req.body : {}) as {
      runId?: unknown;
      model?: unknown;
      threshold?: unknown;
    };
    const threshold = body.threshold ?? 0;
    if (typeof threshold !== 'number' || !(threshold >= 0 && threshold <= 1))
      return error(reply, 400, 'bad_request', 'threshold must be a number in [0, 1]');
    let model: ServedModel;
    let scaling: InputScaling | undefined;
    if (body.model === 'escalation') {
      if (!options.escalation)
        return error(
          reply,
          404,
          'no_escalation_model',
          'this coordinator has no escalation model (start it with --escalation-model)',
        );
      model = options.escalation;
    } else {
      if (typeof body.runId !== 'number' || !Number.isInteger(body.runId) || body.runId < 1)
        return error(reply, 400, 'bad_request', "runId (a run id) is required unless model is 'escalation'");
      const which =
        body.model === undefined
          ? 'latest'
          : typeof body.model === 'number'
            ? parseVersion(String(body.model))
            : body.model === 'latest'
              ? 'latest'
              : null;
      if (which === null)
        return error(reply, 400, 'bad_version', "model must be 'latest', a version number or 'escalation'");
      const run = options.store.getRun(body.runId);
      if (!run) return error(reply, 404, 'not_found', 'no such run');
      // The stored config was parsed when the run was created (defaults filled in), so its mode reads as it is;
      // validating the whole config again cost every prediction ~26 us for this one field.
      if ((run.config as { standardize?: unknown } | null)?.standardize === 'federated') {
        const stats = options.runs.standardizations.get(body.runId);
        if (!stats)
          return error(reply, 409, 'no_statistics', `run ${body.runId} has no committed federated statistics yet`);
        scaling = { columns: stats.columns, stats: { mean: stats.mean, std: stats.std } };
      }
      const version = versions.get(body.runId, which, options.runs.get(body.runId)?.spec);
      if (!version) return error(reply, 404, 'no_model', `run ${body.runId} has no model version ${which} yet`);
      const served =
        which === 'latest'
          ? latestServed(body.runId, version)
          : ServedModel.load(version.version, version.spec, version.weights, version.sha256);
      model = served instanceof ServedModel ? served : await served;
    }
    const oneOff = typeof body.model === 'number'; // an older version, loaded for this request only
    try {
      const rows = parsePredictBody(req.body, model.featureSize);
      const outputs = await model.predict(scaleRows(rows.x, rows.n, model.featureSize, scaling), rows.n);
      return {
        modelVersion: model.version,
        scaling: scalingReport(scaling ? 'federated' : 'none', scaling),
        predictions: applyPolicy(outputs, model.version, { threshold, escalate: false }).answers,
      };
    } catch (e) {
      if (e instanceof PredictError) return error(reply, predictErrorStatus(e), e.code, e.message);
      throw e;
    } finally {
      if (oneOff) model.retire();
    }
  });

  return {
    versions,
    /** Called after each round commits: its checkpoint becomes the next model version. */
    committed(runId: number, record: { round: number; testAccuracy?: number }) {
      const spec = options.runs.get(runId)?.spec;
      const ckpt = spec ? options.store.lastCheckpoint(runId) : null;
      if (spec && ckpt && ckpt.round === record.round)
        versions.record(runId, ckpt.round, spec, ckpt.weights, record.testAccuracy ?? null);
    },
    close() {
      for (const m of loaded.values()) m.retire();
      versions.close();
    },
  };
}
