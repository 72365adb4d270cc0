/**
 * A round's train requests between the simulation's main thread and its workers, in parts: every node of a round
 * gets the same weights (the frame's body) and its own small head. The body goes into shared memory once per round
 * instead of being copied into every node's frame and transferred; a worker joins head and body into the frame
 * encodeTrainRequest would have made, byte for byte, so the node decodes and trains exactly as before.
 */

/** A request as it crosses to a worker: the node's head (copied, it is small) and the round's shared body. */
export interface PartsRequest {
  id: number;
  head: Uint8Array;
  body: Uint8Array;
}

/**
 * The bodies of a round's requests in shared memory: the one last shared is reused while the caller passes the same
 * body (every node of a round), a new body gets a new buffer. Never rewritten: a request still queued or a
 * straggler still reading an earlier round's body keeps that round's weights.
 */
export class SharedBodies {
  private last: { body: Uint8Array; shared: Uint8Array } | null = null;

  share(body: Uint8Array): Uint8Array {
    if (this.last?.body !== body) {
      const shared = new Uint8Array(new SharedArrayBuffer(body.length));
      shared.set(body);
      this.last = { body, shared };
    }
    return this.last.shared;
  }
}

/** The frame head + body (a new buffer the caller owns alone, so it may adopt it: wire.ts). */
export function joinParts(head: Uint8Array, body: Uint8Array): Uint8Array {
  const frame = new Uint8Array(head.length + body.length);
  frame.set(head, 0);
  frame.set(body, head.length);
  return frame;
}
