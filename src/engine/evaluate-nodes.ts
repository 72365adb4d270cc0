/** Federated evaluation: asks nodes to evaluate weights on their own data; a node that cannot is left out. */
import type { TensorSlot } from '../core/params.js';
import { decodeMessage, encodeEvalRequest } from './messages.js';
import type { EvalResult } from './strategy.js';
import type { Transport } from './transport.js';

export async function evaluateNodes(layout: readonly TensorSlot[], transport: Transport, round: number, nodes: readonly number[], weights: Float32Array): Promise<EvalResult[]> {
  const out: EvalResult[] = [];
  await Promise.all(nodes.map(async (nodeId) => {
    try {
      const msg = decodeMessage(layout, await transport.request(nodeId, encodeEvalRequest(layout, { round, nodeId, weights })));
      if (msg.type === 'eval_result') out.push({ nodeId, numExamples: msg.reply.numExamples, loss: msg.reply.loss, accuracy: msg.reply.accuracy });
    } catch {
      // a node that cannot evaluate is left out of the federated metric, as Flower does
    }
  }));
  return out.sort((a, b) => a.nodeId - b.nodeId);
}
