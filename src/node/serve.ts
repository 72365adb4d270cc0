/**
 * Serving on an edge node (`edgefed node --serve-port N`): an HTTP server beside the agent.
 *   POST /v1/predict  { inputs: number[][] } | { input: number[] }  ->  per sample { class, confidence,
 *                     decision, modelVersion } with decision accept | abstain | escalated
 *                     (and `scaling`: whose statistics scaled the raw input, federated | node | none)
 *   GET  /v1/model    the version in use and the decision counts
 *   GET  /metrics     Prometheus text (node-metrics.ts)
 * Samples below --threshold are abstained, or with --escalate sent to the coordinator's escalation model.
 * In a personalised run the node's own model answers once it has one (personal-serving.ts); the response's
 * `model` says which model answered.
 */
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { ModelFollower } from './model-follower.js';
import { NodeMetrics } from './node-metrics.js';
import { signedFetch, type NodeCredentials } from './signed-fetch.js';
import { parsePredictBody, PredictError, predictErrorStatus } from '../predict/request.js';
import { scaleRows, scalingReport, SCALING_WORDS, type InputScaling } from '../predict/input-scaling.js';
import { applyPolicy, mergeEscalated, type PolicyOptions, type ServedAnswer } from '../predict/policy.js';
import { PersonalServing, type PersonalModelSource } from './personal-serving.js';
import type { ModelLoader } from '../predict/serving-model.js';
import { ServedModel } from '../predict/served-model.js';

export const NODE_PREDICT_BODY_LIMIT = 16 * 1024 * 1024;

/** Raw CSV feature columns in, scaled as the node's trainer saw them (its training split's statistics). */
export type { InputScaling };

export interface NodeServeOptions extends PolicyOptions {
  inputScaling?: InputScaling;
  port: number;
  host?: string;
  coordinator: string;
  creds: NodeCredentials;
  runId?: number;
  pollMs: number;
  log: Logger;
  /** The node's personal models (a personalised run): they answer in place of the global model once present. */
  personal?: PersonalModelSource;
  /** Serve each version through this loader (e.g. int8, predict/int8-served-model.ts); default float. */
  loadModel?: ModelLoader;
}

export interface NodeServer {
  url: string;
  metrics: NodeMetrics;
  follower: ModelFollower;
  close(): Promise<void>;
}

/** Fastify's own body errors (bad JSON, too large, wrong content type) as codes a client can act on. */
function bodyErrorCode(err: { code?: string; statusCode?: number }): { status: number; code: string } {
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return { status: 413, code: 'too_large' };
  if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return { status: 415, code: 'unsupported_media_type' };
  if (
    err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ||
    err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' ||
    (err.statusCode === 400 && /JSON/i.test(String(err.code)))
  )
    return { status: 400, code: 'bad_json' };
  return err.statusCode && err.statusCode >= 400 && err.statusCode < 500
    ? { status: err.statusCode, code: 'bad_request' }
    : { status: 500, code: 'internal' };
}

export async function startNodeServer(options: NodeServeOptions): Promise<NodeServer> {
  if (!(options.threshold >= 0 && options.threshold <= 1))
    throw new Error(`threshold must be in [0, 1], got ${options.threshold}`);
  const metrics = new NodeMetrics();
  const follower = new ModelFollower({
    coordinator: options.coordinator,
    creds: options.creds,
    runId: options.runId,
    pollMs: options.pollMs,
    log: options.log,
    metrics,
    load: options.loadModel,
  });
  const personal = options.personal && new PersonalServing(options.personal);
  const app: FastifyInstance = Fastify({ logger: false, bodyLimit: NODE_PREDICT_BODY_LIMIT });
  const reject = (reply: FastifyReply, status: number, code: string, message: string) => {
    metrics.rejected.inc({ code });
    return reply.code(status).send({ error: { code, message } });
  };
  app.setErrorHandler((err: { code?: string; statusCode?: number; message: string }, _req, reply) => {
    const { status, code } = bodyErrorCode(err);
    if (status === 500) options.log.error({ err: err.message }, 'predict failed');
    return reject(reply, status, code, status === 500 ? 'internal error' : err.message);
  });

  const escalate = async (x: Float32Array, featureSize: number, indexes: number[]) => {
    const inputs = indexes.map((i) => Array.from(x.subarray(i * featureSize, (i + 1) * featureSize)));
    metrics.escalations.inc(indexes.length);
    try {
      const r = await signedFetch(options.coordinator, '/v1/predict', options.creds, { model: 'escalation', inputs });
      const body = (await r.json()) as { predictions: { class: number; confidence: number; modelVersion: string }[] };
      if (!Array.isArray(body.predictions) || body.predictions.length !== indexes.length)
        throw new Error('the coordinator answered a different number of samples');
      return body.predictions;
    } catch (e) {
      metrics.escalationFailures.inc(indexes.length);
      options.log.warn(
        { err: (e as Error).message, samples: indexes.length },
        'escalation failed; those samples abstain',
      );
      return e as Error;
    }
  };

  app.post('/v1/predict', async (req, reply) => {
    const current = follower.current; // one version for the whole request, whatever swaps meanwhile
    if (!current)
      return reject(reply, 503, 'no_model', 'no global model version yet; the node is still waiting for the first');
    // Personal models are float: a node serving int8 (--serve-quantized) answers with the global int8 model.
    const answering =
      personal && current instanceof ServedModel
        ? await personal.pick(current, follower.runId)
        : { model: current, info: { kind: 'global', version: current.version, sha256: current.sha256 } };
    const model = answering.model;
    // The version's own statistics (a federated run's) win over the node's: the model was trained on them.
    const federated = follower.scalingOf(current);
    const scaling = federated ?? options.inputScaling;
    let rows;
    try {
      const raw = parsePredictBody(req.body, model.featureSize);
      rows = { n: raw.n, x: scaleRows(raw.x, raw.n, model.featureSize, scaling) };
    } catch (e) {
      if (e instanceof PredictError) return reject(reply, predictErrorStatus(e), e.code, e.message);
      throw e;
    }
    const outputs = await model.predict(rows.x, rows.n);
    const { answers, escalate: low } = applyPolicy(outputs, model.version, options);
    let final: ServedAnswer[] = answers;
    if (low.length > 0) final = mergeEscalated(answers, low, await escalate(rows.x, model.featureSize, low));
    metrics.counted(final.map((a) => a.decision));
    return {
      modelVersion: model.version,
      model: answering.info,
      precision: ('precision' in model && model.precision) || 'float32',
      scaling: scalingReport(federated ? 'federated' : scaling ? 'node' : 'none', scaling),
      predictions: final,
    };
  });
  app.get('/v1/model', async () => {
    const m = follower.current;
    const count = async (d: string) =>
      (await metrics.predictions.get()).values.find((v) => v.labels.decision === d)?.value ?? 0;
    return {
      runId: follower.runId,
      version: m?.version ?? null,
      sha256: m?.sha256 ?? null,
      precision: m ? (m.precision ?? 'float32') : null,
      pid: process.pid,
      policy: { threshold: options.threshold, escalate: options.escalate },
      inputs:
        m && follower.scalingOf(m)
          ? { columns: follower.scalingOf(m)!.columns, scaling: SCALING_WORDS.federated }
          : options.inputScaling
            ? { columns: options.inputScaling.columns, scaling: SCALING_WORDS.node }
            : { scaling: SCALING_WORDS.none },
      counts: {
        accepted: await count('accept'),
        abstained: await count('abstain'),
        escalated: await count('escalated'),
        escalationFailures: (await metrics.escalationFailures.get()).values[0]?.value ?? 0,
      },
    };
  });
  app.get('/metrics', async (_req, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );

  await app.listen({ port: options.port, host: options.host ?? '127.0.0.1' });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : options.port;
  follower.start();
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    metrics,
    follower,
    async close() {
      follower.stop();
      personal?.close();
      await app.close();
    },
  };
}
