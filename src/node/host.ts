/**
 * The node side of a round: decodes a request frame, trains or evaluates on the node's own data, and
 * answers with a frame. One host may serve several virtual nodes (a simulation worker) or one (an agent).
 */
import type { Dataset } from '../data/types.js';
import type { TensorSlot } from '../core/params.js';
import type { LocalTrainer } from '../model/trainer.js';
import { decodeMessage, encodeError, encodeEvalReply, encodeTrainReply } from '../engine/messages.js';
import { validateTrainConfig } from '../model/trainer.js';

export interface LocalData {
  train: Dataset;
  validation: Dataset;
}

export class NodeHost {
  constructor(
    private readonly layout: readonly TensorSlot[],
    private readonly trainer: LocalTrainer,
    private readonly data: ReadonlyMap<number, LocalData>,
  ) {}

  async handle(frame: Uint8Array): Promise<Uint8Array> {
    let round = -1;
    let nodeId = -1;
    try {
      const msg = decodeMessage(this.layout, frame);
      if (msg.type !== 'train' && msg.type !== 'evaluate') throw new Error(`a node does not accept '${msg.type}' messages`);
      ({ round, nodeId } = msg.req);
      const local = this.data.get(nodeId);
      if (!local) throw new Error(`node ${nodeId} is not hosted here`);
      if (msg.type === 'evaluate') {
        const r = await this.trainer.evaluate(msg.req.weights, local.validation.n > 0 ? local.validation : local.train);
        return encodeEvalReply({ round, nodeId, ...r });
      }
      const { config, mode, weights } = msg.req;
      if (mode === 'gradient') {
        const g = await this.trainer.gradient(weights, local.train, Math.max(config.batchSize, 256));
        return encodeTrainReply(this.layout, { round, nodeId, numExamples: g.numExamples, steps: 1, metrics: g.metrics, vector: g.gradient });
      }
      validateTrainConfig(config);
      const r = await this.trainer.train(weights, local.train, config);
      return encodeTrainReply(this.layout, { round, nodeId, numExamples: r.numExamples, steps: r.steps, metrics: r.metrics, vector: r.weights });
    } catch (e) {
      return encodeError(round, nodeId, (e as Error).message);
    }
  }
}
