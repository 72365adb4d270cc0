/** What the round engine needs from a transport: send a frame to a node, get its answer frame. */
export interface Transport {
  /** Ids of the nodes that can take work now. */
  nodeIds(): number[];
  /** Sends a request frame to a node and resolves with its reply frame; rejects on loss or timeout. */
  request(nodeId: number, frame: Uint8Array): Promise<Uint8Array>;
  /**
   * request() with the frame in two parts, head then body (the frame is their concatenation, byte for byte):
   * a round sends every node the same body, encoded once, and each its own head. Optional: without it the round
   * engine encodes each node's whole frame and calls request(). The engine never writes a body after passing it
   * (each round encodes a new one), so a transport may share it, or keep a copy known by its identity, across the
   * round's requests (the simulation pool does: src/sim/request-parts.ts).
   */
  requestParts?(nodeId: number, head: Uint8Array, body: Uint8Array): Promise<Uint8Array>;
  /** Bytes sent to and received from nodes so far, by node id. */
  traffic(): { sent: number; received: number; byNode: Map<number, { sent: number; received: number }> };
  close(): Promise<void>;
  /** Keeps a node's requests on one host while it holds session state (secure aggregation); optional. */
  pin?(nodeId: number): void;
  unpin?(nodeId: number): void;
  /**
   * Called between the requests of a round and between chunks of fusion: a network transport yields to its
   * event loop here now and then, so heartbeats and probes are served while 10,000 requests go out. Absent:
   * nothing yields (simulation). Never changes what is computed, only when.
   */
  pace?(): Promise<void>;
}

/** Byte counting shared by transports. */
export class TrafficMeter {
  sent = 0;
  received = 0;
  readonly byNode = new Map<number, { sent: number; received: number }>();

  count(nodeId: number, sent: number, received: number): void {
    this.sent += sent;
    this.received += received;
    const t = this.byNode.get(nodeId) ?? { sent: 0, received: 0 };
    t.sent += sent;
    t.received += received;
    this.byNode.set(nodeId, t);
  }

  snapshot(): { sent: number; received: number; byNode: Map<number, { sent: number; received: number }> } {
    return {
      sent: this.sent,
      received: this.received,
      byNode: new Map([...this.byNode].map(([k, v]) => [k, { ...v }])),
    };
  }
}
