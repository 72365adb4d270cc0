/** Frames over one WebSocket: large frames are sent in chunks and reassembled on arrival, within limits. */
import type { WebSocket } from 'ws';
import { DEFAULT_CHUNK_BYTES, Reassembler, splitFrame } from '../core/chunks.js';

export class FrameLink {
  private nextId = 1;
  private readonly reassembler: Reassembler;

  /** EDGEFED_CHUNK_BYTES overrides the chunk size (tests use it to chunk even small models). */
  constructor(private readonly ws: WebSocket, maxFrameBytes: number, private readonly chunkBytes = Number(process.env.EDGEFED_CHUNK_BYTES) || DEFAULT_CHUNK_BYTES) {
    this.reassembler = new Reassembler(maxFrameBytes);
  }

  send(frame: Uint8Array, onError?: (e: Error) => void): void {
    const id = this.nextId++;
    for (const part of splitFrame(frame, id, this.chunkBytes)) {
      this.ws.send(part, { binary: true }, (err) => err && onError?.(err));
    }
  }

  /** A whole frame once all its chunks are in; null while waiting; throws FrameError on a bad chunk. */
  receive(bytes: Uint8Array): Uint8Array | null {
    return this.reassembler.push(bytes);
  }

  reset(): void {
    this.reassembler.clear();
  }
}
