/**
 * A simulation worker: hosts every virtual node's local data (built lazily from the shared dataset and
 * the node's partition), and answers request frames with the same NodeHost a deployed agent uses.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Dataset } from '../data/types.js';
import { subset } from '../data/types.js';
import { trainValidationSplit } from '../data/split.js';
import { Rng } from '../core/rng.js';
import { makeLayout } from '../core/params.js';
import { tensorSpecs, type ModelSpec } from '../model/spec.js';
import { makeTrainer, type TrainerChoice } from '../model/make-trainer.js';
import { NodeHost, type LocalData, type NodeAttack } from '../node/host.js';
import { secAggDropouts } from '../engine/secure-messages.js';

export interface SimWorkerData {
  entry: string;
  data: Dataset;
  parts: Int32Array[];
  validationFraction: number;
  seed: number;
  spec: ModelSpec;
  trainer: TrainerChoice;
  /** Byzantine nodes and their attack, applied node-side (absent = every node honest). */
  attack?: NodeAttack;
  /** Secure aggregation fault injection: fraction of each round's nodes that drop after sharing keys. */
  secaggDropout?: number;
}

/** A node's local split, fixed by run seed and node id, so every worker builds the same one. */
export function localData(data: Dataset, rows: Int32Array, nodeId: number, validationFraction: number, seed: number): LocalData {
  const mine = subset(data, rows, `${data.source}#node${nodeId}`);
  if (validationFraction <= 0) return { train: mine, validation: subset(mine, []) };
  return trainValidationSplit(mine, validationFraction, new Rng(seed).fork(`split:${nodeId}`));
}

if (parentPort && workerData?.entry) {
  const w = workerData as SimWorkerData;
  const layout = makeLayout(tensorSpecs(w.spec));
  const trainer = await makeTrainer(w.spec, w.trainer);
  const cache = new Map<number, LocalData>();
  const lazy = {
    get(nodeId: number): LocalData | undefined {
      if (!cache.has(nodeId) && nodeId >= 0 && nodeId < w.parts.length) {
        cache.set(nodeId, localData(w.data, w.parts[nodeId], nodeId, w.validationFraction, w.seed));
      }
      return cache.get(nodeId);
    },
  } as ReadonlyMap<number, LocalData>;
  const dropout = w.secaggDropout;
  const host = new NodeHost(layout, trainer, lazy, w.attack, dropout ? {
    dropAfterShareKeys: (round, nodeId, roster) => secAggDropouts(w.seed, round, roster, dropout).has(nodeId),
  } : {});
  const port = parentPort;
  port.on('message', async (msg: { id: number; frame: Uint8Array }) => {
    const reply = await host.handle(msg.frame);
    port.postMessage({ id: msg.id, frame: reply }, [reply.buffer as ArrayBuffer]);
  });
  port.postMessage({ ready: true, trainer: trainer.kind });
}
