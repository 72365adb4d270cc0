/**
 * An image data slice (train and test splits) as one little-endian binary file: what the browser pages
 * fetch (the engine check's MNIST slice, the browser node's MNIST shard). BROWSER-SAFE.
 */
import type { Dataset } from './types.js';

/** 'EFMS' read as a little-endian uint32. */
export const SLICE_MAGIC = 0x534d4645;
export const SLICE_VERSION = 1;
/** Eight uint32s: magic, version, nTrain, nTest, height, width, channels, numClasses. */
export const SLICE_HEADER_BYTES = 32;

export interface MnistSlice {
  train: Dataset;
  test: Dataset;
}

function littleEndian(): boolean {
  return new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
}

/**
 * The slice as bytes: the header, then train x (nTrain * h*w*c float32), train y (nTrain int32), test x,
 * test y. Every section starts at a multiple of 4 bytes, so the reader views the buffer without copying.
 */
export function encodeSlice(slice: MnistSlice): Uint8Array<ArrayBuffer> {
  if (!littleEndian()) throw new Error('encodeSlice: big-endian hosts are not supported');
  const { train, test } = slice;
  const [h, w, c] = train.featureShape;
  if (train.featureShape.length !== 3 || test.featureShape.join(',') !== train.featureShape.join(',')) {
    throw new Error(
      `encodeSlice: need image data [h, w, c] on both splits, got [${train.featureShape}] and [${test.featureShape}]`,
    );
  }
  for (const d of [train, test]) {
    if (!(d.y instanceof Int32Array)) throw new Error(`encodeSlice: ${d.source} needs class labels (Int32Array)`);
  }
  const f = h * w * c;
  const total = SLICE_HEADER_BYTES + 4 * (train.n * f + train.n + test.n * f + test.n);
  const out = new Uint8Array(total);
  new Uint32Array(out.buffer, 0, 8).set([SLICE_MAGIC, SLICE_VERSION, train.n, test.n, h, w, c, train.numClasses]);
  let off = SLICE_HEADER_BYTES;
  const put = (a: Float32Array | Int32Array, len: number): void => {
    out.set(new Uint8Array(a.buffer, a.byteOffset, len * 4), off);
    off += len * 4;
  };
  put(train.x, train.n * f);
  put(train.y, train.n);
  put(test.x, test.n * f);
  put(test.y, test.n);
  return out;
}

/** Reads encodeSlice's bytes (views into `buf`, no copies). Throws a one-line Error on a malformed file. */
export function decodeSlice(buf: ArrayBuffer, source = 'mnist-slice'): MnistSlice {
  if (!littleEndian()) throw new Error('decodeSlice: big-endian hosts are not supported');
  if (buf.byteLength < SLICE_HEADER_BYTES)
    throw new Error(`${source}: ${buf.byteLength} bytes is too short for the header`);
  const [magic, version, nTrain, nTest, h, w, c, numClasses] = new Uint32Array(buf, 0, 8);
  if (magic !== SLICE_MAGIC)
    throw new Error(`${source}: bad magic 0x${magic.toString(16)} (not an EdgeFed MNIST slice)`);
  if (version !== SLICE_VERSION) throw new Error(`${source}: version ${version}, expected ${SLICE_VERSION}`);
  const f = h * w * c;
  const expected = SLICE_HEADER_BYTES + 4 * (nTrain * f + nTrain + nTest * f + nTest);
  if (buf.byteLength !== expected)
    throw new Error(`${source}: ${buf.byteLength} bytes, the header implies ${expected}`);
  let off = SLICE_HEADER_BYTES;
  const f32 = (len: number): Float32Array => {
    const a = new Float32Array(buf, off, len);
    off += len * 4;
    return a;
  };
  const i32 = (len: number): Int32Array => {
    const a = new Int32Array(buf, off, len);
    off += len * 4;
    return a;
  };
  const featureShape = [h, w, c];
  const train: Dataset = {
    source: `${source}:train`,
    n: nTrain,
    featureShape,
    x: f32(nTrain * f),
    y: i32(nTrain),
    numClasses,
  };
  const test: Dataset = {
    source: `${source}:test`,
    n: nTest,
    featureShape: [...featureShape],
    x: f32(nTest * f),
    y: i32(nTest),
    numClasses,
  };
  return { train, test };
}
