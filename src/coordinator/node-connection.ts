/**
 * The coordinator's side of one node's connection, whatever carries it. An adapter (WebSocket today, MQTT
 * later) turns its transport into this interface and feeds what arrives into NodeConnectionEvents; the node
 * session (node-session.ts), the registry and the network transport see only this, never a socket.
 */
import type { CoordinatorMessage } from '../net/node-protocol.js';

/** Who is at the other end, once its hello was accepted. */
export interface NodeIdentity {
  nodeId: number;
  name: string;
  /** The enrolled Ed25519 public key (null when the node has none and auth is off). */
  publicKey: Uint8Array | null;
}

export interface NodeConnection {
  /** Where the peer connects from, for logs (an address, a client id). */
  readonly remote: string;
  /** Set by the session when the hello is accepted; null before. */
  identity: NodeIdentity | null;
  /** Sends one whole frame; the adapter splits it as its transport needs. onError: it could not be sent. */
  sendFrame(frame: Uint8Array, onError?: (e: Error) => void): void;
  /**
   * Sends one frame given as parts (the frame is their concatenation), without joining them where the transport
   * can send them as they are: a round's weights, shared by every node's request, are then never copied per node.
   */
  sendFrameParts(parts: readonly Uint8Array[], onError?: (e: Error) => void): void;
  /** Sends a control message (challenge, welcome, configure, error). */
  sendControl(message: CoordinatorMessage): void;
  /** The hello was accepted: the adapter lifts the limits it holds unauthenticated peers to. */
  authenticated(): void;
  /** Closes with a code and reason the node can read. */
  close(code: number, reason: string): void;
  /** Drops the connection at once (a dead or replaced peer). */
  terminate(): void;
}

/** What an adapter reports; the session answers. */
export interface NodeConnectionEvents {
  /** A text (control) message. */
  control(text: string): void;
  /** A whole binary frame (reassembled from chunks, within the frame limit). */
  frame(bytes: Uint8Array): void;
  /** A message the adapter refused on its own (a bad chunk, a frame over the limit). */
  invalid(code: string, message: string): void;
  /** The connection is gone; `cause` says who ended it and how (absent when the adapter cannot tell). */
  closed(cause?: CloseCause): void;
}

/**
 * Who ended a connection: the coordinator (with the close code it sent, or 0 for a terminate), the node (the
 * code its close frame carried, 1006 when the socket vanished without one), or a socket error (ws's error code,
 * e.g. a message over maxPayload).
 */
export interface CloseCause {
  by: 'coordinator' | 'node' | 'socket_error';
  code: number;
  reason: string;
}
