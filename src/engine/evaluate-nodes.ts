/** Federated evaluation: asks nodes to evaluate weights on their own data; a node that cannot is left out. */
import type { TensorSlot } from '../core/params.js';
import { decodeMessage, encodeEvalRequest } from './messages.js';
import type { EvalResult } from './strategy.js';
import type { Transport } from './transport.js';
import { percentile10 } from '../core/personal-head.js';
import type { RoundRecord } from './round-record.js';

export async function evaluateNodes(
  layout: readonly TensorSlot[],
  transport: Transport,
  round: number,
  nodes: readonly number[],
  weights: Float32Array,
): Promise<EvalResult[]> {
  const out: EvalResult[] = [];
  await Promise.all(
    nodes.map(async (nodeId) => {
      try {
        const msg = decodeMessage(
          layout,
          await transport.request(nodeId, encodeEvalRequest(layout, { round, nodeId, weights })),
        );
        const reply = msg.type === 'eval_result' ? msg.reply : undefined;
        if (reply)
          out.push({
            nodeId,
            numExamples: reply.numExamples,
            loss: reply.loss,
            accuracy: reply.accuracy,
            ...(reply.personal ? { personal: reply.personal } : {}),
          });
      } catch {
        // a node that cannot evaluate is left out of the federated metric, as Flower does
      }
    }),
  );
  return out.sort((a, b) => a.nodeId - b.nodeId);
}

/** Across the nodes that report a personalised model (FedPer): its accuracy's mean, 10th percentile and minimum. */
export function personalizedAccuracy(
  results: readonly EvalResult[],
): Pick<RoundRecord, 'personalizedAccuracyMean' | 'personalizedAccuracyP10' | 'personalizedAccuracyMin'> {
  const acc = results.flatMap((r) => (r.personal ? [r.personal.accuracy] : []));
  if (acc.length === 0) return {};
  return {
    personalizedAccuracyMean: acc.reduce((a, b) => a + b, 0) / acc.length,
    personalizedAccuracyP10: percentile10(acc),
    personalizedAccuracyMin: Math.min(...acc),
  };
}
