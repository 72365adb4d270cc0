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
  const reply = msg.reply;
  if (reply.round !== round || reply.nodeId !== nodeId)
    throw new Error(`reply is for node ${reply.nodeId} round ${reply.round}`);
  if (!finite(reply.vector)) throw new Error('update has non-finite values');
  if (reply.vector.length !== modelLength)
    throw new Error(`update has ${reply.vector.length} values, the model ${modelLength}`);
  if (reply.controlDelta && !finite(reply.controlDelta)) throw new Error('control delta has non-finite values');
  return reply;
}
