/**
 * Large frames travel in chunks, so one model update never has to be a single huge network message and a
 * receiver can bound what it buffers. A chunk is:
 *   "EFC1" | u32 LE message id | u32 LE index | u32 LE count | u32 LE total frame bytes | u32 LE chunk size | payload
 * Messages that are not chunks (whole frames, "EFW1") pass through the reassembler untouched.
 */
import { FrameError } from './wire.js';

export const CHUNK_MAGIC = 'EFC1';
export const CHUNK_HEADER_BYTES = 24;
export const DEFAULT_CHUNK_BYTES = 1 << 20;
const MAGIC = new TextEncoder().encode(CHUNK_MAGIC);

function isChunk(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 4 &&
    bytes[0] === MAGIC[0] &&
    bytes[1] === MAGIC[1] &&
    bytes[2] === MAGIC[2] &&
    bytes[3] === MAGIC[3]
  );
}

/** The frame itself when it fits in one chunk, else its chunks. */
export function splitFrame(frame: Uint8Array, messageId: number, chunkBytes = DEFAULT_CHUNK_BYTES): Uint8Array[] {
  if (!Number.isInteger(chunkBytes) || chunkBytes < 1)
    throw new Error(`chunk size must be a whole number >= 1, got ${chunkBytes}`);
  if (frame.length <= chunkBytes) return [frame];
  const count = Math.ceil(frame.length / chunkBytes);
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const payload = frame.subarray(i * chunkBytes, Math.min(frame.length, (i + 1) * chunkBytes));
    const chunk = new Uint8Array(CHUNK_HEADER_BYTES + payload.length);
    chunk.set(MAGIC, 0);
    const v = new DataView(chunk.buffer);
    v.setUint32(4, messageId >>> 0, true);
    v.setUint32(8, i, true);
    v.setUint32(12, count, true);
    v.setUint32(16, frame.length, true);
    v.setUint32(20, chunkBytes, true);
    chunk.set(payload, CHUNK_HEADER_BYTES);
    out.push(chunk);
  }
  return out;
}

interface Pending {
  buffer: Uint8Array;
  count: number;
  received: Set<number>;
  chunkBytes: number;
}

/** Rebuilds chunked frames, refusing anything inconsistent or larger than the limits allow. */
export class Reassembler {
  private readonly pending = new Map<number, Pending>();
  /** Messages already refused: their remaining chunks are dropped quietly (one rejection per message). */
  private readonly refused = new Set<number>();

  constructor(
    private readonly maxFrameBytes: number,
    private readonly maxPending = 4,
  ) {}

  /** A whole frame when one is complete (or the message was not chunked), else null. */
  push(bytes: Uint8Array): Uint8Array | null {
    if (!isChunk(bytes)) return bytes;
    if (bytes.length <= CHUNK_HEADER_BYTES) throw new FrameError('bad_chunk', 'chunk has no payload');
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const id = v.getUint32(4, true);
    const index = v.getUint32(8, true);
    const count = v.getUint32(12, true);
    const total = v.getUint32(16, true);
    const size = v.getUint32(20, true);
    const payload = bytes.subarray(CHUNK_HEADER_BYTES);
    if (this.refused.has(id)) return null;
    if (total > this.maxFrameBytes)
      this.refuse(
        id,
        new FrameError('too_large', `chunked frame of ${total} bytes exceeds the limit of ${this.maxFrameBytes}`),
      );
    if (count < 2 || index >= count || size < 1 || size * (count - 1) >= total || size * count < total)
      throw new FrameError('bad_chunk', `chunk ${index} of ${count} for ${total} bytes is inconsistent`);
    let p = this.pending.get(id);
    if (!p) {
      if (this.pending.size >= this.maxPending)
        throw new FrameError('too_many_chunked', `more than ${this.maxPending} chunked frames in progress`);
      const chunkBytes = size;
      p = { buffer: new Uint8Array(total), count, received: new Set(), chunkBytes };
      this.pending.set(id, p);
    }
    const expected = index === count - 1 ? total - p.chunkBytes * (count - 1) : p.chunkBytes;
    if (
      p.count !== count ||
      p.buffer.length !== total ||
      p.chunkBytes !== size ||
      payload.length !== expected ||
      p.received.has(index)
    ) {
      this.pending.delete(id);
      throw new FrameError('bad_chunk', `chunk ${index} of message ${id} does not fit the chunks before it`);
    }
    p.buffer.set(payload, index * p.chunkBytes);
    p.received.add(index);
    if (p.received.size < count) return null;
    this.pending.delete(id);
    return p.buffer;
  }

  private refuse(id: number, e: FrameError): never {
    this.pending.delete(id);
    this.refused.add(id);
    if (this.refused.size > 64) this.refused.delete(this.refused.values().next().value!);
    throw e;
  }

  /** Forget partial frames (a connection closed). */
  clear(): void {
    this.pending.clear();
  }
}
