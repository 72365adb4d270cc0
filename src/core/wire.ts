/**
 * The binary frame every message travels in (simulation and network alike):
 *   "EFW1" | u32 LE header length | header JSON (UTF-8) | zero padding to 4 bytes | raw little-endian tensor bytes
 * The header names each tensor with its dtype, shape, byte offset and length (safetensors-style), so floats
 * never pass through JSON. decodeFrame trusts nothing: every bound is checked before a byte is read.
 */
import { shown } from './shown.js';

export const WIRE_MAGIC = 'EFW1';
export const WIRE_VERSION = 1;
export const MAX_HEADER_BYTES = 1 << 20;

/** float16 travels as raw IEEE half bits (Uint16Array) and int8 as Int8Array: the compressed update formats. */
export type WireDtype = 'float32' | 'int32' | 'float16' | 'int8';
export type WireData = Float32Array | Int32Array | Uint16Array | Int8Array;

export interface WireTensor {
  name: string;
  dtype: WireDtype;
  shape: number[];
  data: WireData;
}

/** Per dtype: bytes per value, the typed array that holds it (by realm-independent tag) and a constructor. */
const DTYPES: Record<
  WireDtype,
  { bytes: number; tag: string; make: (b: ArrayBuffer, offset?: number, count?: number) => WireData }
> = {
  float32: { bytes: 4, tag: '[object Float32Array]', make: (b, o, n) => new Float32Array(b, o, n) },
  int32: { bytes: 4, tag: '[object Int32Array]', make: (b, o, n) => new Int32Array(b, o, n) },
  float16: { bytes: 2, tag: '[object Uint16Array]', make: (b, o, n) => new Uint16Array(b, o, n) },
  int8: { bytes: 1, tag: '[object Int8Array]', make: (b, o, n) => new Int8Array(b, o, n) },
};

function isDtype(d: unknown): d is WireDtype {
  return typeof d === 'string' && Object.prototype.hasOwnProperty.call(DTYPES, d);
}

interface TensorEntry {
  name: string;
  dtype: WireDtype;
  shape: number[];
  offset: number;
  length: number;
}

export interface Frame<H extends Record<string, unknown> = Record<string, unknown>> {
  header: H & { v: number; type: string };
  tensors: WireTensor[];
}

const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function align4(n: number): number {
  return (n + 3) & ~3;
}

/** Checks the tensors as decodeFrame will and lays them out: each starts 4-byte aligned after the header. */
function tensorEntries(tensors: readonly WireTensor[]): { entries: TensorEntry[]; dataBytes: number } {
  if (!LE) throw new Error('EdgeFed frames need a little-endian host');
  let offset = 0;
  const names = new Set<string>();
  const entries: TensorEntry[] = tensors.map((t) => {
    // The same rules decodeFrame enforces, so the encoder never produces a frame its decoder rejects.
    if (typeof t.name !== 'string' || t.name.length === 0 || t.name.length > 256)
      throw new Error(`tensor name '${String(t.name)}' must be 1 to 256 characters`);
    if (names.has(t.name)) throw new Error(`tensor ${t.name} appears twice`);
    names.add(t.name);
    const kind = Object.prototype.toString.call(t.data); // realm-independent, unlike instanceof
    if (!isDtype(t.dtype) || kind !== DTYPES[t.dtype].tag) {
      throw new Error(`tensor ${t.name}: dtype ${String(t.dtype)} does not match its data`);
    }
    if (t.shape.length > 8 || !t.shape.every((d) => Number.isInteger(d) && d >= 0))
      throw new Error(`tensor ${t.name}: shape [${t.shape.join(',')}] is not up to 8 whole numbers`);
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length)
      throw new Error(
        `tensor ${t.name}: shape [${t.shape.join(',')}] holds ${count} values, data has ${t.data.length}`,
      );
    const e = { name: t.name, dtype: t.dtype, shape: t.shape, offset, length: t.data.byteLength };
    offset += align4(t.data.byteLength); // every tensor starts 4-byte aligned; short ones are zero-padded
    return e;
  });
  return { entries, dataBytes: offset };
}

/** The header JSON as UTF-8, within its limit. */
function headerBytes(type: string, fields: Record<string, unknown>, entries: TensorEntry[]): Uint8Array {
  const header = new TextEncoder().encode(JSON.stringify({ ...fields, v: WIRE_VERSION, type, tensors: entries }));
  if (header.length > MAX_HEADER_BYTES)
    throw new Error(`frame header of ${header.length} bytes exceeds the limit of ${MAX_HEADER_BYTES}`);
  return header;
}

/** Writes magic, header length and header at the start of `out` (its padding stays zero). */
function writeHead(out: Uint8Array, header: Uint8Array): void {
  out.set(new TextEncoder().encode(WIRE_MAGIC), 0);
  new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(4, header.length, true);
  out.set(header, 8);
}

function writeTensors(out: Uint8Array, at: number, tensors: readonly WireTensor[], entries: TensorEntry[]): void {
  tensors.forEach((t, i) =>
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at + entries[i].offset),
  );
}

export function encodeFrame(type: string, fields: Record<string, unknown>, tensors: WireTensor[] = []): Uint8Array {
  const { entries, dataBytes } = tensorEntries(tensors);
  const header = headerBytes(type, fields, entries);
  const dataStart = align4(8 + header.length);
  const out = new Uint8Array(dataStart + dataBytes);
  writeHead(out, header);
  writeTensors(out, dataStart, tensors, entries);
  return out;
}

/**
 * A frame in two parts whose concatenation is encodeFrame's frame, byte for byte: the head (magic, header,
 * padding) and the tensors' bytes (encodeFrameBody). Many frames that differ only in their header fields share
 * one body: a coordinator encodes a round's weights once and sends each node its own small head before them.
 */
export function encodeFrameHead(type: string, fields: Record<string, unknown>, tensors: WireTensor[] = []): Uint8Array {
  const header = headerBytes(type, fields, tensorEntries(tensors).entries);
  const out = new Uint8Array(align4(8 + header.length));
  writeHead(out, header);
  return out;
}

/** The data section of a frame holding these tensors (see encodeFrameHead). */
export function encodeFrameBody(tensors: WireTensor[]): Uint8Array {
  const { entries, dataBytes } = tensorEntries(tensors);
  const out = new Uint8Array(dataBytes);
  writeTensors(out, 0, tensors, entries);
  return out;
}

/** Frames handed over for good (adoptFrame): their tensors decode as views into them, not copies. */
const adopted = new WeakSet<Uint8Array>();

/**
 * Hands a frame over to the decoder for good: a frame transferred from another thread, which nobody else holds
 * or writes. decodeFrame then returns its tensors as views into it (no copy, no allocation: on Linux a fresh
 * buffer of a model's size costs page faults, ten times the copy), which stay valid as long as anyone holds them.
 * A frame in shared memory is never adopted. Only for frames you produced and own: tensors whose byte ranges
 * overlap would decode to aliasing views. Returns the frame.
 */
export function adoptFrame(bytes: Uint8Array): Uint8Array {
  // SharedArrayBuffer is undefined in pages that are not cross-origin isolated.
  if (typeof SharedArrayBuffer === 'undefined' || !(bytes.buffer instanceof SharedArrayBuffer)) adopted.add(bytes);
  return bytes;
}

/**
 * A received frame made readable in place (adoptFrame): the frame itself when the caller holds its buffer alone
 * (`owned`: e.g. transferred back from a worker) and it starts 4-byte aligned, else one aligned copy. Its
 * tensors then decode as views, and a flat update as one view: one copy at most instead of one per tensor and
 * another to join them.
 */
export function readableFrame(bytes: Uint8Array, owned: boolean): Uint8Array {
  if (owned && bytes.byteOffset % 4 === 0) return adoptFrame(bytes);
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return adoptFrame(copy);
}

export class FrameError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Decodes and validates a frame; tensor data are copies, aligned and independent of the input buffer (views into
 * it when the frame was adopted, see adoptFrame).
 */
export function decodeFrame(bytes: Uint8Array, maxBytes = 512 * 1024 * 1024): Frame {
  if (bytes.length > maxBytes)
    throw new FrameError('too_large', `frame of ${bytes.length} bytes exceeds the limit of ${maxBytes}`);
  const { header, headerLength } = readHeaderObject(bytes);
  if (header.v !== WIRE_VERSION)
    throw new FrameError('bad_version', `protocol version ${shown(header.v)} is not ${WIRE_VERSION}`);
  if (typeof header.type !== 'string') throw new FrameError('bad_header', 'header has no message type');
  const entries = header.tensors ?? [];
  if (!Array.isArray(entries)) throw new FrameError('bad_header', 'header.tensors is not a list');
  const dataStart = align4(8 + headerLength);
  const dataLength = bytes.length - dataStart;
  const names = new Set<string>();
  const own = adopted.has(bytes);
  const tensors: WireTensor[] = entries.map((raw: unknown, i: number) => {
    const e = raw as Partial<TensorEntry>;
    if (
      typeof e !== 'object' ||
      e === null ||
      typeof e.name !== 'string' ||
      e.name.length === 0 ||
      e.name.length > 256
    ) {
      throw new FrameError('bad_tensor', `tensor ${i} has no valid name`);
    }
    if (names.has(e.name)) throw new FrameError('bad_tensor', `tensor ${e.name} appears twice`);
    names.add(e.name);
    if (!isDtype(e.dtype))
      throw new FrameError(
        'bad_tensor',
        `tensor ${e.name}: dtype ${shown(e.dtype)} is not one of ${Object.keys(DTYPES).join(', ')}`,
      );
    if (!Array.isArray(e.shape) || e.shape.length > 8 || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new FrameError('bad_tensor', `tensor ${e.name}: shape is not a list of up to 8 whole numbers`);
    }
    const count = e.shape.reduce((a: number, b: number) => a * b, 1);
    if (
      !Number.isInteger(e.offset) ||
      !Number.isInteger(e.length) ||
      e.offset! < 0 ||
      e.offset! % 4 !== 0 ||
      e.length !== count * DTYPES[e.dtype].bytes ||
      e.offset! + e.length! > dataLength
    ) {
      throw new FrameError('bad_tensor', `tensor ${e.name}: byte range does not match its shape or the frame`);
    }
    const at = bytes.byteOffset + dataStart + e.offset!;
    if (own && at % DTYPES[e.dtype].bytes === 0) {
      const data = DTYPES[e.dtype].make(bytes.buffer as ArrayBuffer, at, count);
      return { name: e.name, dtype: e.dtype, shape: e.shape, data };
    }
    // An explicit copy into a fresh buffer: `bytes.slice` on a Node Buffer returns a view into shared (pooled) memory.
    const slice = new Uint8Array(e.length!);
    slice.set(bytes.subarray(dataStart + e.offset!, dataStart + e.offset! + e.length!));
    return { name: e.name, dtype: e.dtype, shape: e.shape, data: DTYPES[e.dtype].make(slice.buffer) };
  });
  delete header.tensors;
  return { header: header as Frame['header'], tensors };
}

/** The header of a frame without reading its tensors (for routing); the frame is fully validated later. */
export function peekHeader(bytes: Uint8Array): Frame['header'] {
  return readHeaderObject(bytes).header as Frame['header'];
}

/** The prefix checks and the JSON header object both readers need; its fields are checked by the caller. */
function readHeaderObject(bytes: Uint8Array): { header: Record<string, unknown>; headerLength: number } {
  if (bytes.length < 8)
    throw new FrameError('truncated', `frame of ${bytes.length} bytes is shorter than its 8-byte prefix`);
  if (new TextDecoder().decode(bytes.subarray(0, 4)) !== WIRE_MAGIC)
    throw new FrameError('bad_magic', 'frame does not start with EFW1');
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4, true);
  if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > bytes.length)
    throw new FrameError('bad_header', `header length ${headerLength} does not fit the frame`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch {
    throw new FrameError('bad_header', 'header is not valid UTF-8 JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    throw new FrameError('bad_header', 'header is not a JSON object');
  return { header: header as Record<string, unknown>, headerLength };
}
