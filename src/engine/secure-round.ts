/**
 * A secure-aggregation training round (Bonawitz et al. 2017) over the shared protocol driver
 * (secure-protocol.ts): the session opens with the train request, the node trains, keeps its update and
 * answers AdvertiseKeys with its public keys (and its training metrics, which are not protected).
 *
 * Nodes send [n_i * delta_i, n_i] in fixed point (delta_i = trained - global), so the unmasked sum gives
 * exactly the FedAvg mean delta sum n_i delta_i / sum n_i up to fixed-point rounding; the coordinator
 * never holds any single update.
 */
import type { TensorSlot } from '../core/params.js';
import {
  decodeWeightedAverage,
  fixedPointErrorBound,
  type FixedPointConfig,
  fixedPointConfig,
} from '../core/secagg/fixed-point.js';
import type { TrainConfig } from '../model/trainer.js';
import { encodeTrainRequest } from './messages.js';
import { clientIdOf, largestScaleBits, type SecAggSessionConfig } from './secure-messages.js';
import { runSecureProtocol, secureThreshold } from './secure-protocol.js';
import type { TrainResult } from './strategy.js';
import type { NodeFailure } from './round-record.js';
import type { Transport } from './transport.js';

/** The user's settings of secure aggregation (CLI --secagg*, RunConfig.secagg). */
export interface SecureAggregationOptions {
  /** Every coordinate of a node's update (trained - global) is clipped to [-clip, clip] before encoding. */
  clip: number;
  /** Largest numExamples a node may weight its update by (bounds the fixed-point range). */
  maxWeight: number;
}

export const DEFAULT_SECAGG: SecureAggregationOptions = { clip: 4, maxWeight: 65536 };

export interface SecureRoundInput {
  round: number;
  selected: readonly number[];
  layout: readonly TensorSlot[];
  transport: Transport;
  global: Float32Array;
  configFor: (nodeId: number) => TrainConfig;
  options: SecureAggregationOptions;
  /** A fresh, unguessable session id (bound into every key and mask). */
  session: string;
}

export interface SecureRoundOutcome {
  /** One per node whose update is in the sum: metrics only (numExamples 1, empty vector: the update stays private). */
  results: TrainResult[];
  failures: NodeFailure[];
  /** sum n_i delta_i / sum n_i, or null when the protocol could not finish. */
  meanDelta: Float32Array | null;
  totalWeight: number;
  fixedPoint: FixedPointConfig | null;
  /** Worst-case absolute error of meanDelta per coordinate from fixed-point rounding (before Float32 rounding). */
  errorBound: number;
}

export async function secureTrainRound(input: SecureRoundInput): Promise<SecureRoundOutcome> {
  const failures = new Map<number, string>();
  const k = input.selected.length;
  const dim = input.global.length;
  const outcome = (
    meanDelta: Float32Array | null,
    totalWeight: number,
    fp: FixedPointConfig | null,
    included: number[],
    metrics: Map<number, TrainResult['metrics']>,
  ): SecureRoundOutcome => ({
    results: included.map((nodeId) => ({
      nodeId,
      numExamples: 1,
      steps: 0,
      vector: new Float32Array(0),
      metrics: metrics.get(nodeId)!,
    })),
    failures: [...failures].map(([nodeId, error]) => ({ nodeId, error })).sort((a, b) => a.nodeId - b.nodeId),
    meanDelta,
    totalWeight,
    fixedPoint: fp,
    errorBound: fp && totalWeight > 0 ? fixedPointErrorBound(fp, included.length) / totalWeight : 0,
  });
  if (k < 2) {
    for (const nodeId of input.selected) failures.set(nodeId, 'secure aggregation needs at least 2 nodes in a round');
    return outcome(null, 0, null, [], new Map());
  }
  const { clip, maxWeight } = input.options;
  const threshold = secureThreshold(k);
  const fp = fixedPointConfig({ scaleBits: largestScaleBits(k, clip, maxWeight), clip, maxWeight, maxClients: k });
  const settings = (nodeId: number): SecAggSessionConfig => ({
    session: input.session,
    clientId: clientIdOf(nodeId),
    threshold,
    scaleBits: fp.scaleBits,
    clip,
    maxWeight,
    maxClients: k,
  });
  const run = await runSecureProtocol({
    round: input.round,
    selected: input.selected,
    transport: input.transport,
    session: input.session,
    threshold,
    vectorLength: dim + 1,
    layout: input.layout,
    openRequest: (nodeId) =>
      encodeTrainRequest(input.layout, {
        round: input.round,
        nodeId,
        mode: 'weights',
        config: input.configFor(nodeId),
        weights: input.global,
        secagg: settings(nodeId),
      }),
  });
  for (const [nodeId, error] of run.failures) failures.set(nodeId, error);
  const metrics = new Map<number, TrainResult['metrics']>();
  for (const [nodeId, header] of run.advertised) {
    const m = header.metrics as Record<string, unknown> | undefined;
    metrics.set(nodeId, {
      loss: typeof m?.loss === 'number' ? m.loss : NaN,
      accuracy: typeof m?.accuracy === 'number' ? m.accuracy : NaN,
    });
  }
  if (!run.sum) return outcome(null, 0, fp, [], metrics);
  try {
    const { average, totalWeight } = decodeWeightedAverage(run.sum, fp);
    return outcome(average, totalWeight, fp, run.included, metrics);
  } catch (e) {
    // No examples anywhere (total weight 0): no node's update is in any model.
    const reason = `secure aggregation aborted: ${(e as Error).message}`;
    for (const nodeId of input.selected) if (!failures.has(nodeId)) failures.set(nodeId, reason);
    return outcome(null, 0, fp, [], metrics);
  }
}
