/**
 * The WebSocket adapter of NodeConnection. Memory stays bounded against peers that never authenticate:
 * `ws` fixes maxPayload for the whole server, so the server's limit is one chunk (MAX_MESSAGE_BYTES, bigger
 * frames travel in chunks) and, until the hello is accepted, the raw socket's bytes are counted and the
 * connection is cut past MAX_HELLO_BYTES: a 200 MB message before hello is never buffered.
 */
// Before 'ws': lets ws unmask the nodes' frames a word at a time (ws-mask.ts).
import '../net/ws-mask.js';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { FrameLink } from '../net/frame-link.js';
import { FrameError } from '../core/wire.js';
import { CHUNK_HEADER_BYTES } from '../core/chunks.js';
import { concatBytes } from '../core/concat.js';
import { MAX_HELLO_BYTES, MAX_MESSAGE_BYTES, type CoordinatorMessage } from '../net/node-protocol.js';
import type { CloseCause, NodeConnection, NodeConnectionEvents, NodeIdentity } from './node-connection.js';

const PROTOCOL_ERROR_GRACE_MS = 500;

/** Accepts node WebSocket upgrades; `open` starts a session for each connection and returns its handlers. */
export class WebSocketNodeEndpoint {
  private readonly wss: WebSocketServer;

  constructor(
    private readonly maxFrameBytes: number,
    private readonly open: (connection: NodeConnection) => NodeConnectionEvents,
  ) {
    // One chunk, or one whole frame when the frame limit is smaller: no single message is larger.
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: Math.min(MAX_MESSAGE_BYTES, maxFrameBytes + CHUNK_HEADER_BYTES),
    });
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    let unauthenticatedBytes = head.length;
    const count = (chunk: Buffer) => {
      unauthenticatedBytes += chunk.length;
      if (unauthenticatedBytes > MAX_HELLO_BYTES) socket.destroy();
    };
    // Registered before ws's own listener, so the budget is checked before ws buffers the bytes.
    socket.on('data', count);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
      new WebSocketNodeConnection(ws, remote, this.maxFrameBytes, () => socket.off('data', count), this.open);
    });
  }

  close(): void {
    this.wss.close();
  }
}

class WebSocketNodeConnection implements NodeConnection {
  identity: NodeIdentity | null = null;
  private readonly link: FrameLink;
  /** Set when the coordinator or a socket error ends the connection, before ws reports the close. */
  private cause: CloseCause | null = null;

  constructor(
    private readonly ws: WebSocket,
    readonly remote: string,
    maxFrameBytes: number,
    private readonly lift: () => void,
    open: (connection: NodeConnection) => NodeConnectionEvents,
  ) {
    this.link = new FrameLink(ws, maxFrameBytes);
    const events = open(this);
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      if (!isBinary) return events.control(bytes.toString('utf8'));
      let frame: Uint8Array | null;
      try {
        frame = this.link.receive(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
        if (frame && frame.length > maxFrameBytes) {
          throw new FrameError('too_large', `frame of ${frame.length} bytes exceeds the limit of ${maxFrameBytes}`);
        }
      } catch (e) {
        return events.invalid(e instanceof FrameError ? e.code : 'bad_frame', (e as Error).message);
      }
      if (frame) events.frame(frame);
    });
    ws.on('close', (code: number, reason: Buffer) =>
      events.closed(this.cause ?? { by: 'node', code, reason: reason.toString('utf8').slice(0, 123) }),
    );
    ws.on('error', (e: Error & { code?: string }) => {
      this.cause ??= { by: 'socket_error', code: 0, reason: e.code ?? e.message.slice(0, 123) };
      // A protocol error (WS_ERR_*, e.g. a message over maxPayload) has already queued ws's close frame with
      // its status (1009): destroying the socket now can reset it before the peer reads why. ws discards the
      // peer's further bytes meanwhile, so the short grace costs no memory.
      if (e.code?.startsWith('WS_ERR_')) setTimeout(() => ws.terminate(), PROTOCOL_ERROR_GRACE_MS).unref();
      else ws.terminate();
    });
  }

  sendFrame(frame: Uint8Array, onError?: (e: Error) => void): void {
    this.link.send(frame, onError);
  }

  /**
   * A frame that fits one message goes out as one WebSocket message in fragments, a part each: the node's socket
   * hands over their concatenation, the very bytes sendFrame would have sent, and nothing is copied here (ws
   * writes unmasked buffers as they are). Nothing else can go out between the fragments: they are sent in one
   * synchronous stretch. A larger frame is joined and chunked as sendFrame does.
   */
  sendFrameParts(parts: readonly Uint8Array[], onError?: (e: Error) => void): void {
    const total = parts.reduce((sum, part) => sum + part.length, 0);
    if (!this.link.sendsWhole(total)) return this.link.send(concatBytes(parts), onError);
    // Corked, the fragments leave in one write call, as one message would (ws writes each fragment on its own).
    const socket = (this.ws as unknown as { _socket?: Duplex })._socket;
    socket?.cork();
    parts.forEach((part, i) => {
      const fin = i === parts.length - 1;
      // One callback is enough: a fragment that cannot be sent fails the ones after it too.
      this.ws.send(part, { binary: true, fin }, fin ? (err) => err && onError?.(err) : undefined);
    });
    socket?.uncork();
  }

  sendControl(message: CoordinatorMessage): void {
    this.ws.send(JSON.stringify(message));
  }

  authenticated(): void {
    this.lift();
  }

  close(code: number, reason: string): void {
    this.cause ??= { by: 'coordinator', code, reason };
    this.ws.close(code, reason);
  }

  terminate(): void {
    this.cause ??= { by: 'coordinator', code: 0, reason: 'terminated' };
    this.ws.terminate();
  }
}
