/** Checks a node's answer to a train request; both engines refuse the same bad replies with the same words. */
import type { TensorSlot } from '../core/params.js';
import { decodeMessage, type TrainReply } from './messages.js';

function finite(v: Float32Array): boolean {
  for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) return false;
  return true;
}

/** The train result in `bytes`, or an Error naming what is wrong (node error, wrong round or node, NaN, size). */
export function parseTrainReply(
  layout: readonly TensorSlot[],
  bytes: Uint8Array,
  round: number,
  nodeId: number,
  modelLength: number,
): TrainReply {
  const msg = decodeMessage(layout, bytes);
  if (msg.type === 'error') throw new Error(msg.message);
  if (msg.type !== 'train_result') throw new Error(`expected a train result, got '${msg.type}'`);
  const r = msg.reply;
  if (r.round !== round || r.nodeId !== nodeId) throw new Error(`reply is for node ${r.nodeId} round ${r.round}`);
  if (!finite(r.vector)) throw new Error('update has non-finite values');
  if (r.vector.length !== modelLength)
    throw new Error(`update has ${r.vector.length} values, the model ${modelLength}`);
  if (r.controlDelta && !finite(r.controlDelta)) throw new Error('control delta has non-finite values');
  return r;
}
