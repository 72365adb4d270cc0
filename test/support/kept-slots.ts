/** The check the personalised strategies share: no train reply carries a trained copy of the node-only slots. */
import assert from 'node:assert/strict';
import { takeHead } from '../../src/core/personal-head.js';
import type { TensorSlot } from '../../src/core/params.js';
import { decodeMessage } from '../../src/engine/messages.js';

/** Asserts every train reply among `replies` holds `kept` in `slots`; returns how many train replies there were. */
export function countTrainRepliesKeeping(
  layout: readonly TensorSlot[],
  replies: readonly Uint8Array[],
  slots: readonly TensorSlot[],
  kept: Float32Array,
  message: string,
): number {
  let trainReplies = 0;
  for (const bytes of replies) {
    const msg = decodeMessage(layout, bytes);
    if (msg.type !== 'train_result') continue;
    trainReplies++;
    assert.deepEqual(takeHead(msg.reply.vector, slots), kept, message);
  }
  return trainReplies;
}
