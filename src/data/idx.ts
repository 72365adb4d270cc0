/**
 * IDX reader and writer (the format of the MNIST files), and a loader for a directory of IDX
 * image/label files.
 *
 * Layout: magic 0x00 0x00 TYPE NDIM, then NDIM big-endian uint32 dimensions, then the values
 * big-endian, row-major. Every malformed file gets a one-line Error naming the file and the problem.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Dataset, TrainTestData } from './types.js';

export type IdxDtype = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';
export type IdxTypedArray = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxArray {
  dims: number[];
  dtype: IdxDtype;
  data: IdxTypedArray;
}

interface DtypeInfo {
  code: number;
  bytes: number;
  /** Inclusive value range for integer types; undefined for floats. */
  range?: [number, number];
}

export const IDX_DTYPES: Readonly<Record<IdxDtype, DtypeInfo>> = {
  uint8: { code: 0x08, bytes: 1, range: [0, 255] },
  int8: { code: 0x09, bytes: 1, range: [-128, 127] },
  int16: { code: 0x0b, bytes: 2, range: [-32768, 32767] },
  int32: { code: 0x0c, bytes: 4, range: [-2147483648, 2147483647] },
  float32: { code: 0x0d, bytes: 4 },
  float64: { code: 0x0e, bytes: 8 },
};

const DTYPE_BY_CODE = new Map<number, IdxDtype>(
  (Object.entries(IDX_DTYPES) as [IdxDtype, DtypeInfo][]).map(([name, info]) => [info.code, name]),
);

/** The format allows 255 dimensions; real files use 1-4, so anything past 8 is corruption. */
export const IDX_MAX_DIMS = 8;
/** Larger than any file readFileSync can return (2 GiB), so a product above it is a corrupt header. */
export const IDX_MAX_BYTES = 2 ** 32;

function hex(b: number): string {
  return '0x' + b.toString(16).padStart(2, '0');
}

function shapeText(dims: readonly number[]): string {
  return `[${dims.join(', ')}]`;
}

/**
 * Decode IDX bytes. `nameForErrors` (usually the path) starts every error message. The result
 * never aliases `bytes`.
 */
export function parseIdx(bytes: Uint8Array, nameForErrors: string): IdxArray {
  return decodeIdx(bytes, nameForErrors, true);
}

function decodeIdx(bytes: Uint8Array, nameForErrors: string, copy: boolean): IdxArray {
  const fail = (problem: string): never => {
    throw new Error(`${nameForErrors}: ${problem}`);
  };
  if (bytes.length < 4) fail(`too short for an IDX header (${bytes.length} bytes, need at least 4)`);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    fail(
      `bad IDX magic: first two bytes are ${hex(bytes[0])} ${hex(bytes[1])}, expected 0x00 0x00 (not an IDX file, or still gzip-compressed?)`,
    );
  }
  const dtype = DTYPE_BY_CODE.get(bytes[2]);
  if (dtype === undefined) {
    fail(
      `unknown IDX type code ${hex(bytes[2])} (known: 0x08 uint8, 0x09 int8, 0x0b int16, 0x0c int32, 0x0d float32, 0x0e float64)`,
    );
  }
  const dt = dtype as IdxDtype;
  const ndim = bytes[3];
  if (ndim === 0 || ndim > IDX_MAX_DIMS) fail(`IDX header gives ${ndim} dimensions, expected 1 to ${IDX_MAX_DIMS}`);
  const headerBytes = 4 + 4 * ndim;
  if (bytes.length < headerBytes) {
    fail(`too short: header with ${ndim} dimensions needs ${headerBytes} bytes, file has ${bytes.length}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < ndim; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const zero = dims.indexOf(0);
  if (zero >= 0) fail(`dimension ${zero} is 0 in dims ${shapeText(dims)}`);
  const count = dims.reduce((a, b) => a * b, 1);
  const elemBytes = IDX_DTYPES[dt].bytes;
  const expected = headerBytes + count * elemBytes;
  if (expected > IDX_MAX_BYTES) {
    fail(
      `absurd dims ${shapeText(dims)} of ${dt}: they describe ${expected} bytes, more than the ${IDX_MAX_BYTES}-byte limit`,
    );
  }
  if (bytes.length < expected) {
    fail(`truncated: dims ${shapeText(dims)} of ${dt} need ${expected} bytes, file has ${bytes.length}`);
  }
  if (bytes.length > expected) {
    fail(
      `${bytes.length - expected} trailing bytes: dims ${shapeText(dims)} of ${dt} need ${expected} bytes, file has ${bytes.length}`,
    );
  }
  return { dims, dtype: dt, data: decode(bytes, view, headerBytes, count, dt, copy) };
}

function decode(
  bytes: Uint8Array,
  view: DataView,
  off: number,
  count: number,
  dtype: IdxDtype,
  copy: boolean,
): IdxTypedArray {
  switch (dtype) {
    case 'uint8':
      return copy ? bytes.slice(off, off + count) : bytes.subarray(off, off + count);
    case 'int8':
      return copy
        ? new Int8Array(bytes.slice(off, off + count).buffer)
        : new Int8Array(bytes.buffer, bytes.byteOffset + off, count);
    case 'int16': {
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(off + 2 * i, false);
      return out;
    }
    case 'int32': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(off + 4 * i, false);
      return out;
    }
    case 'float32': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(off + 4 * i, false);
      return out;
    }
    case 'float64': {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(off + 8 * i, false);
      return out;
    }
  }
}

/** Read and decode one IDX file; errors name the path. */
export function readIdx(path: string): IdxArray {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new Error(`${path}: cannot read IDX file: ${(e as Error).message}`);
  }
  // The buffer is ours alone, so byte data can be a view on it: MNIST train is 47 MB, and a copy
  // costs as much again in fresh pages.
  return decodeIdx(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), path, false);
}

/**
 * Encode values as an IDX file. Integer dtypes reject non-integers and out-of-range values rather
 * than wrapping them silently; float32 rounds to the nearest float32.
 */
export function writeIdx(dims: readonly number[], dtype: IdxDtype, data: ArrayLike<number>): Uint8Array {
  const info = IDX_DTYPES[dtype];
  if (info === undefined) throw new Error(`writeIdx: unknown dtype '${String(dtype)}'`);
  if (dims.length === 0 || dims.length > IDX_MAX_DIMS) {
    throw new Error(`writeIdx: need 1 to ${IDX_MAX_DIMS} dimensions, got ${dims.length}`);
  }
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 1 || d > 0xffffffff)
      throw new Error(`writeIdx: bad dimension ${d} in dims ${shapeText(dims)}`);
  }
  const count = dims.reduce((a, b) => a * b, 1);
  if (count !== data.length) {
    throw new Error(`writeIdx: dims ${shapeText(dims)} hold ${count} values but data has ${data.length}`);
  }
  const header = 4 + 4 * dims.length;
  const out = new Uint8Array(header + count * info.bytes);
  const view = new DataView(out.buffer);
  out[2] = info.code;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  if (info.range) {
    const [lo, hi] = info.range;
    for (let i = 0; i < count; i++) {
      const v = data[i];
      if (!Number.isInteger(v) || v < lo || v > hi)
        throw new Error(`writeIdx: value ${v} at index ${i} does not fit ${dtype}`);
    }
  }
  switch (dtype) {
    case 'uint8':
      out.set(data as ArrayLike<number>, header);
      break;
    case 'int8':
      for (let i = 0; i < count; i++) view.setInt8(header + i, data[i]);
      break;
    case 'int16':
      for (let i = 0; i < count; i++) view.setInt16(header + 2 * i, data[i], false);
      break;
    case 'int32':
      for (let i = 0; i < count; i++) view.setInt32(header + 4 * i, data[i], false);
      break;
    case 'float32':
      for (let i = 0; i < count; i++) view.setFloat32(header + 4 * i, data[i], false);
      break;
    case 'float64':
      for (let i = 0; i < count; i++) view.setFloat64(header + 8 * i, data[i], false);
      break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Directory loader

export type IdxRole = 'train images' | 'train labels' | 'test images' | 'test labels';

/** Accepted file names per role, in the order they are tried (MNIST's names first). */
export function idxCandidateNames(role: IdxRole): string[] {
  const [split, kind] = role.split(' ') as ['train' | 'test', 'images' | 'labels'];
  const prefixes = split === 'train' ? ['train'] : ['t10k', 'test'];
  // Images may be 3-D [n,h,w] (idx3) or 4-D [n,h,w,c] (idx4); labels are 1-D (idx1).
  const ranks = kind === 'images' ? [3, 4] : [1];
  const names: string[] = [];
  for (const p of prefixes)
    for (const r of ranks) for (const sep of ['-', '.']) names.push(`${p}-${kind}${sep}idx${r}-ubyte`);
  return names;
}

function findIdxFile(dir: string, role: IdxRole): string | undefined {
  for (const name of idxCandidateNames(role)) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** 256-entry table so uint8 -> [0,1] is one lookup per pixel (MNIST train is 47M pixels). */
const U8_TO_UNIT = Float32Array.from({ length: 256 }, (_, i) => i / 255);

function imagesToDataset(
  images: IdxArray,
  labels: IdxArray,
  imagePath: string,
  labelPath: string,
  source: string,
): Dataset {
  const { dims } = images;
  if (dims.length !== 3 && dims.length !== 4) {
    throw new Error(`${imagePath}: images must have dims [n, h, w] or [n, h, w, c], got ${shapeText(dims)}`);
  }
  const n = dims[0];
  const featureShape = dims.length === 3 ? [dims[1], dims[2], 1] : dims.slice(1);
  let x: Float32Array;
  if (images.dtype === 'uint8') {
    const src = images.data;
    x = new Float32Array(src.length);
    for (let i = 0; i < src.length; i++) x[i] = U8_TO_UNIT[src[i]];
  } else {
    // Other dtypes are taken as already-scaled values: there is no universal range to divide by.
    x = new Float32Array(images.data);
  }
  if (labels.dims.length !== 1) {
    throw new Error(`${labelPath}: labels must be 1-D [n], got dims ${shapeText(labels.dims)}`);
  }
  if (labels.dims[0] !== n) {
    throw new Error(`${labelPath}: ${labels.dims[0]} labels but ${imagePath} has ${n} images`);
  }
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = labels.data[i];
    if (!Number.isInteger(v)) throw new Error(`${labelPath}: label ${i} is ${v}, not an integer class index`);
    if (v < 0) throw new Error(`${labelPath}: label ${i} is ${v}; class indices must be >= 0`);
    y[i] = v;
  }
  return { source, n, featureShape, x, y, numClasses: 0 };
}

function maxLabel(y: Int32Array | Float32Array): number {
  let m = -1;
  for (let i = 0; i < y.length; i++) if (y[i] > m) m = y[i];
  return m;
}

export interface IdxDatasetOptions {
  /** Dataset.source for the train and test sets; default: the image file paths. */
  trainSource?: string;
  testSource?: string;
}

/**
 * Load train/test image and label IDX files from a directory (see idxCandidateNames for the
 * accepted names). uint8 images are scaled to [0,1] by /255; other image dtypes are used as-is.
 * numClasses is max label + 1 over train and test together, so both sets agree on the output size.
 */
export function loadIdxDataset(dir: string, opts: IdxDatasetOptions = {}): TrainTestData {
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new Error(`IDX directory '${dir}' does not exist or is not a directory`);
  const roles: IdxRole[] = ['train images', 'train labels', 'test images', 'test labels'];
  const found = roles.map((r) => findIdxFile(dir, r));
  const missing = roles.filter((_, i) => found[i] === undefined);
  if (missing.length > 0) {
    const detail = missing.map((r) => `${r} (looked for ${idxCandidateNames(r).join(', ')})`).join('; ');
    throw new Error(`IDX directory '${dir}': missing ${detail}`);
  }
  const [trImg, trLab, teImg, teLab] = found as string[];
  const train = imagesToDataset(readIdx(trImg), readIdx(trLab), trImg, trLab, opts.trainSource ?? trImg);
  const test = imagesToDataset(readIdx(teImg), readIdx(teLab), teImg, teLab, opts.testSource ?? teImg);
  if (shapeText(train.featureShape) !== shapeText(test.featureShape)) {
    throw new Error(
      `IDX directory '${dir}': train images are ${shapeText(train.featureShape)} but test images are ${shapeText(test.featureShape)}`,
    );
  }
  const numClasses = Math.max(maxLabel(train.y), maxLabel(test.y)) + 1;
  train.numClasses = numClasses;
  test.numClasses = numClasses;
  return { train, test };
}
