/**
 * Frames over one WebSocket: large frames are sent in chunks and reassembled on arrival, within limits.
 * BROWSER-SAFE: the browser node uses it too (through a small adapter over the browser's WebSocket).
 */
import { DEFAULT_CHUNK_BYTES, Reassembler, splitFrame } from '../core/chunks.js';
import { MAX_CHUNK_BYTES } from './node-protocol.js';

/** What FrameLink needs of a socket: the `ws` package's WebSocket has it as is. */
export interface ChunkSocket {
  send(data: Uint8Array, options: { binary: true }, cb: (err?: Error) => void): void;
}

/** EDGEFED_CHUNK_BYTES, where there is a process environment (not in a browser), at most MAX_CHUNK_BYTES. */
function chunkBytesFromEnv(): number {
  const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env;
  return Math.min(MAX_CHUNK_BYTES, Number(env?.EDGEFED_CHUNK_BYTES) || DEFAULT_CHUNK_BYTES);
}

export class FrameLink {
  private nextId = 1;
  private readonly reassembler: Reassembler;

  /** EDGEFED_CHUNK_BYTES overrides the chunk size (tests use it to chunk even small models). */
  constructor(
    private readonly ws: ChunkSocket,
    maxFrameBytes: number,
    private readonly chunkBytes = chunkBytesFromEnv(),
  ) {
    this.reassembler = new Reassembler(maxFrameBytes);
  }

  send(frame: Uint8Array, onError?: (e: Error) => void): void {
    const id = this.nextId++;
    for (const part of splitFrame(frame, id, this.chunkBytes)) {
      this.ws.send(part, { binary: true }, (err) => err && onError?.(err));
    }
  }

  /** Whether a frame of this many bytes travels as one message (send chunks only longer ones). */
  sendsWhole(frameBytes: number): boolean {
    return frameBytes <= this.chunkBytes;
  }

  /** A whole frame once all its chunks are in; null while waiting; throws FrameError on a bad chunk. */
  receive(bytes: Uint8Array): Uint8Array | null {
    return this.reassembler.push(bytes);
  }

  reset(): void {
    this.reassembler.clear();
  }
}
