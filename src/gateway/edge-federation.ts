/**
 * A gateway's edge federation (HierFAVG, Liu et al. 2020). A train request from the cloud runs K edge rounds
 * of FedAvg among the gateway's own nodes, starting from the cloud's global weights, with the same RoundEngine
 * and NetworkTransport as the coordinator; the answer is the edge model with numExamples = the examples its
 * nodes trained on, so the cloud's FedAvg weights each site by its data. An evaluate request fans out to the
 * nodes and comes back as their example-weighted mean. With no live node the cloud gets an error frame. A run
 * scaled with federated statistics passes them on to the site's nodes with its model spec.
 */
import type { Logger } from 'pino';
import { makeLayout, type TensorSlot } from '../core/params.js';
import { tensorSpecs, type ModelSpec } from '../model/spec.js';
import { validateTrainConfig } from '../model/trainer.js';
import {
  decodeMessage,
  encodeError,
  encodeEvalReply,
  type EvalRequest,
  type TrainRequest,
} from '../engine/messages.js';
import type { RoundRecord } from '../engine/round-engine.js';
import { engineFor, engineSpecOf } from '../engine/engine-for.js';
import { evaluateNodes } from '../engine/evaluate-nodes.js';
import { Strategy, weightedMetrics } from '../engine/strategy.js';
import { configureForRun, NetworkTransport } from '../coordinator/network-transport.js';
import type { Registry, Selection } from '../coordinator/registry.js';
import type { RunConfig } from '../coordinator/config.js';
import type { RequestHandler } from '../node/agent.js';
import type { FeatureStandardization } from '../net/node-protocol.js';
import { UpdateCompressor } from '../core/compress-update.js';
import { encodeUpdateReply } from '../node/update-reply.js';

/**
 * The site's own run settings, fields of the deployed run spec (engine/run-spec.ts): the fewest local nodes an
 * edge round fuses, the share of them asked, an edge round's deadline, and how long a cloud request waits for
 * minNodes local nodes before its first edge round. The rest of each edge run comes from the cloud's request.
 */
export type EdgeRunSpec = Pick<RunConfig, 'minNodes' | 'fraction' | 'roundTimeoutMs' | 'waitForNodesMs'>;

export interface EdgeOptions extends EdgeRunSpec {
  /** Edge rounds per cloud round (K in HierFAVG). */
  edgeRounds: number;
  /** Require signed replies from the local nodes (the gateway's --auth). */
  auth: boolean;
  log: Logger;
}

const ALL_NODES: Selection = { tags: {} };
const MAX_SEED = 2 ** 32 - 1;

/** The edge round numbers cloud round r owns: K per cloud round, never reused, so late replies stay late. */
export function edgeRoundsOf(cloudRound: number, k: number): { first: number; last: number } {
  return { first: (cloudRound - 1) * k + 1, last: cloudRound * k };
}

/** `standardization`: a federated-standardised run's statistics, passed on to the site's nodes with the run. */
export function edgeHandler(
  registry: Registry,
  options: EdgeOptions,
  runId: number,
  spec: ModelSpec,
  standardization?: FeatureStandardization,
): RequestHandler {
  const layout = makeLayout(tensorSpecs(spec));
  const transport = new NetworkTransport({
    registry,
    selection: ALL_NODES,
    timeoutMs: options.roundTimeoutMs,
    runId,
    allowUnbound: !options.auth,
    configure: configureForRun(runId, spec, () => standardization),
  });
  // The site's answer to the cloud is compressed as the cloud's run asks (error-feedback residual kept here).
  const compressor = new UpdateCompressor(layout);
  return {
    kind: 'gateway',
    async handle(frame) {
      let round = -1;
      let nodeId = -1;
      try {
        const msg = decodeMessage(layout, frame);
        if (msg.type !== 'train' && msg.type !== 'evaluate')
          throw new Error(`a gateway does not accept '${msg.type}' messages`);
        ({ round, nodeId } = msg.req);
        if (round < 1) throw new Error(`round must be >= 1, got ${round}`);
        return msg.type === 'train'
          ? await train(layout, transport, registry, options, msg.req, compressor)
          : await evaluate(layout, transport, options, msg.req);
      } catch (e) {
        options.log.warn({ runId, round, err: (e as Error).message }, 'gateway answers the cloud with an error');
        return encodeError(round, nodeId, (e as Error).message);
      }
    },
    dispose() {},
  };
}

async function train(
  layout: readonly TensorSlot[],
  transport: NetworkTransport,
  registry: Registry,
  options: EdgeOptions,
  req: TrainRequest,
  compressor: UpdateCompressor,
): Promise<Uint8Array> {
  const { round, nodeId, config, mode, weights } = req;
  if (mode !== 'weights')
    throw new Error('a gateway answers weights-mode rounds (the FedAvg family), not gradient mode');
  // The site model would reach the cloud unmasked: refuse rather than break the run's privacy promise.
  if (req.secagg !== undefined) throw new Error('a gateway cannot take part in secure aggregation');
  // A site of several nodes has no single control variate or linear term to keep.
  if (config.localState !== undefined)
    throw new Error(`a gateway cannot answer for a strategy with node state ('${config.localState}')`);
  validateTrainConfig(config);
  if (!Number.isInteger(config.seed) || config.seed < 0 || config.seed > MAX_SEED)
    throw new Error(`train config seed must be a whole number from 0 to ${MAX_SEED}`);
  const { first, last } = edgeRoundsOf(round, options.edgeRounds);
  const records: RoundRecord[] = [];
  let waited = false;
  // The edge run: the site's settings, the cloud's local training and seed, sync FedAvg rounds of its own.
  const edgeRun = {
    rounds: last,
    seed: config.seed,
    fraction: options.fraction,
    evalFraction: 0,
    localEpochs: config.epochs,
    batchSize: config.batchSize,
    compression: 'none',
    mode: 'sync' as const,
  };
  const engine = engineFor(
    engineSpecOf(edgeRun, {
      // The cloud's proximal term carries down to the site's own rounds.
      strategy: new Strategy({
        name: config.proxMu > 0 ? 'fedprox' : 'fedavg',
        proxMu: config.proxMu,
        serverOpt: 'fedavg',
        hyper: {},
      }),
      optimizer: config.optimizer,
      minNodes: options.minNodes,
      roundSize: options.minNodes,
    }),
    {
      layout,
      transport,
      initial: weights,
      startRound: first,
      maxStepsFor: config.maxSteps === undefined ? undefined : () => config.maxSteps,
      // Wait for nodes once per cloud round: a later edge round with too few nodes is skipped, not waited for.
      waitForNodes: async (min) => {
        await registry.waitFor(ALL_NODES, min, waited ? 0 : options.waitForNodesMs);
        waited = true;
      },
      onRound: (record) => {
        records.push(record);
        options.log.info(
          {
            cloudRound: round,
            edgeRound: record.round,
            contributed: record.contributed,
            examples: record.examples,
            failures: record.failures,
            fused: record.fused,
          },
          'edge round',
        );
      },
    },
  );
  const result = await engine.run();
  const fused = records.filter((r) => r.fused);
  const final = fused.at(-1);
  if (!final) {
    const failures = records.flatMap((r) => r.failures.map((f) => `node ${f.nodeId}: ${f.error}`));
    throw new Error(
      `gateway could fuse no edge round: ${transport.nodeIds().length} live nodes, ${options.minNodes} needed${failures.length ? ` (${failures.slice(0, 3).join('; ')})` : ''}`,
    );
  }
  return encodeUpdateReply(
    layout,
    compressor,
    {
      round,
      nodeId,
      vector: result.weights,
      numExamples: final.examples.reduce((a, n) => a + n, 0),
      // One step per fused edge round: what the cloud's FedNova would normalise a site's update by.
      steps: fused.length,
      metrics: { loss: final.trainLoss, accuracy: final.trainAccuracy },
    },
    config,
    weights,
    false,
  );
}

async function evaluate(
  layout: readonly TensorSlot[],
  transport: NetworkTransport,
  options: EdgeOptions,
  req: EvalRequest,
): Promise<Uint8Array> {
  const nodes = transport.nodeIds();
  if (nodes.length === 0) throw new Error('gateway has no live nodes to evaluate on');
  const results = await evaluateNodes(
    layout,
    transport,
    edgeRoundsOf(req.round, options.edgeRounds).last,
    nodes,
    req.weights,
  );
  if (results.length === 0) throw new Error(`none of the gateway's ${nodes.length} nodes could evaluate`);
  const metrics = weightedMetrics(results);
  return encodeEvalReply({
    round: req.round,
    nodeId: req.nodeId,
    numExamples: metrics.numExamples,
    loss: metrics.loss,
    accuracy: metrics.accuracy,
  });
}
