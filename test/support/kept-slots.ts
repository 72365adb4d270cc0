/** What the personalised-strategy tests share: their engine, a recording transport, and the check that no train
 * reply carries a trained copy of the node-only slots. */
import assert from 'node:assert/strict';
import { takeHead } from '../../src/core/personal-head.js';
import type { TensorSlot } from '../../src/core/params.js';
import { decodeMessage } from '../../src/engine/messages.js';
import { RoundEngine } from '../../src/engine/round-engine.js';
import { Strategy, parseStrategy } from '../../src/engine/strategy.js';
import type { Transport } from '../../src/engine/transport.js';
import { sgd } from './skewed-nodes.js';

/** Every node every round, 2 local epochs of SGD, seed 9. */
export function personalEngine(
  layout: TensorSlot[],
  transport: Transport,
  initial: Float32Array,
  strategy: string,
  rounds: number,
): RoundEngine {
  return new RoundEngine({
    layout,
    strategy: new Strategy(parseStrategy(strategy)),
    transport,
    initial,
    seed: 9,
    rounds,
    fraction: 1,
    minNodes: 1,
    evalFraction: 1,
    local: { epochs: 2, batchSize: 16, optimizer: sgd },
  });
}

/** A transport that keeps every reply it passes on. */
export function recording(inner: Transport): { transport: Transport; replies: Uint8Array[] } {
  const replies: Uint8Array[] = [];
  const transport: Transport = Object.assign(Object.create(inner) as Transport, {
    request: async (nodeId: number, frame: Uint8Array) => {
      const reply = await inner.request(nodeId, frame);
      replies.push(reply);
      return reply;
    },
  });
  return { transport, replies };
}

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
