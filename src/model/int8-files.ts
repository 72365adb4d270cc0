/**
 * The int8 model folder `edgefed quantize` writes and `edgefed predict` / serving read:
 *   int8-model.json   the network (layers, shapes, activation scales and zero points), where each tensor sits
 *                     in the weights file, the calibration that fixed the scales and the byte accounting;
 *   int8-weights.bin  per Dense / Conv2D layer: int8 kernel, int32 bias, float32 per-channel scales (what an
 *                     ONNX QLinear / QDQ graph stores), the whole file deflated (raw deflate, zlib level 9);
 *   edgefed.json      the float model's metadata (columns, scaling, classes), copied when it had one.
 * Why deflate: the float model's budget is one byte per parameter at a quarter of its size, and int8 kernels
 * alone take one byte per kernel weight, so int32 biases and per-channel scales (8 bytes per output channel)
 * put the raw tensors just over a quarter; int8 weights compress by a few percent (float32 ones barely do).
 */
import { createHash } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ActivationQuant, Int8Net, Int8Op } from '../core/int8-net.js';

export const INT8_MODEL_FILE = 'int8-model.json';
export const INT8_WEIGHTS_FILE = 'int8-weights.bin';
export const INT8_FORMAT = 'edgefed-int8/1';

interface Slice {
  offset: number;
  bytes: number;
}
type StoredOp =
  | (Omit<Extract<Int8Op, { type: 'dense' }>, 'kernel' | 'bias' | 'weightScales'> & StoredWeights)
  | (Omit<Extract<Int8Op, { type: 'conv2d' }>, 'kernel' | 'bias' | 'weightScales'> & StoredWeights)
  | Extract<Int8Op, { type: 'maxpool2d' }>;
interface StoredWeights {
  kernel: Slice;
  bias: Slice;
  weightScales: Slice;
}

/** Where the int8 model's bytes go, against the float model's weight bytes (float32, 4 per parameter). */
export interface Int8ByteAccount {
  floatWeightBytes: number;
  int8KernelBytes: number;
  int32BiasBytes: number;
  float32ScaleBytes: number;
  /** Activation scales and zero points (kept in int8-model.json: 8 bytes a tensor as float32 + int32). */
  activationParamBytes: number;
  /** All tensor bytes as held in memory for inference. */
  rawTotal: number;
  /** int8-weights.bin on disk (deflated) plus the activation parameters. */
  storedTotal: number;
  rawRatio: number;
  storedRatio: number;
}

export interface Int8Manifest {
  format: typeof INT8_FORMAT;
  inputShape: number[];
  outputSize: number;
  input: ActivationQuant;
  layers: StoredOp[];
  weights: { file: string; encoding: 'deflate-raw'; bytes: number; rawBytes: number; sha256: string };
  source: { model: string; sha256: string; loss: string };
  calibration: { data: string; samples: number; method: string };
  bytes: Int8ByteAccount;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const bytesOf = (a: Int8Array | Int32Array | Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** The weights file's raw bytes and the manifest's layer entries pointing into it. */
function packWeights(net: Int8Net): { raw: Uint8Array; layers: StoredOp[] } {
  const parts: Uint8Array[] = [];
  let offset = 0;
  const put = (a: Int8Array | Int32Array | Float32Array): Slice => {
    // Each tensor starts 4-byte aligned so the int32 / float32 ones can be viewed in place after loading.
    const pad = (4 - (offset % 4)) % 4;
    if (pad) parts.push(new Uint8Array(pad));
    offset += pad;
    const slice = { offset, bytes: a.byteLength };
    parts.push(bytesOf(a));
    offset += a.byteLength;
    return slice;
  };
  const layers = net.ops.map((op): StoredOp => {
    if (op.type === 'maxpool2d') return op;
    const { kernel, bias, weightScales, ...rest } = op;
    return { ...rest, kernel: put(kernel), bias: put(bias), weightScales: put(weightScales) } as StoredOp;
  });
  const raw = new Uint8Array(offset);
  let o = 0;
  for (const p of parts) {
    raw.set(p, o);
    o += p.length;
  }
  return { raw, layers };
}

export function accountBytes(net: Int8Net, floatParameters: number, storedWeightBytes: number): Int8ByteAccount {
  let kernel = 0,
    bias = 0,
    scales = 0,
    activations = 1;
  for (const op of net.ops) {
    if (op.type === 'maxpool2d') continue;
    kernel += op.kernel.byteLength;
    bias += op.bias.byteLength;
    scales += op.weightScales.byteLength;
    if (op.output) activations++;
  }
  const floatWeightBytes = floatParameters * 4;
  const activationParamBytes = activations * 8;
  const rawTotal = kernel + bias + scales + activationParamBytes;
  const storedTotal = storedWeightBytes + activationParamBytes;
  return {
    floatWeightBytes,
    int8KernelBytes: kernel,
    int32BiasBytes: bias,
    float32ScaleBytes: scales,
    activationParamBytes,
    rawTotal,
    storedTotal,
    rawRatio: rawTotal / floatWeightBytes,
    storedRatio: storedTotal / floatWeightBytes,
  };
}

/** The files of an int8 model folder, ready to write (nothing touches the disk here). */
export function int8ModelFiles(
  net: Int8Net,
  info: {
    model: string;
    floatSha256: string;
    floatParameters: number;
    loss: string;
    calibration: Int8Manifest['calibration'];
  },
): { manifest: Int8Manifest; weights: Uint8Array } {
  const { raw, layers } = packWeights(net);
  const weights = new Uint8Array(deflateRawSync(raw, { level: 9 }));
  const manifest: Int8Manifest = {
    format: INT8_FORMAT,
    inputShape: net.inputShape,
    outputSize: net.outputSize,
    input: net.input,
    layers,
    weights: {
      file: INT8_WEIGHTS_FILE,
      encoding: 'deflate-raw',
      bytes: weights.length,
      rawBytes: raw.length,
      sha256: sha256(raw),
    },
    source: { model: info.model, sha256: info.floatSha256, loss: info.loss },
    calibration: info.calibration,
    bytes: accountBytes(net, info.floatParameters, weights.length),
  };
  return { manifest, weights };
}

/** Writes the folder's files (the folder exists and is empty; the caller makes it so). */
export function writeInt8Files(dir: string, files: { manifest: Int8Manifest; weights: Uint8Array }): void {
  writeFileSync(join(dir, INT8_WEIGHTS_FILE), files.weights);
  writeFileSync(join(dir, INT8_MODEL_FILE), JSON.stringify(files.manifest, null, 1));
}

export function isInt8ModelDir(dir: string): boolean {
  return existsSync(join(dir, INT8_MODEL_FILE));
}

/** Reads and checks an int8 model folder; errors name the file and what is wrong. */
export function readInt8Model(dir: string): { net: Int8Net; manifest: Int8Manifest } {
  const path = join(dir, INT8_MODEL_FILE);
  let manifest: Int8Manifest;
  try {
    manifest = JSON.parse(readFileSync(path, 'utf8')) as Int8Manifest;
  } catch (e) {
    throw new Error(`${path}: not a readable int8 model manifest (${(e as Error).message.split('\n')[0]})`);
  }
  if (manifest.format !== INT8_FORMAT)
    throw new Error(`${path}: format '${String(manifest.format)}', this EdgeFed reads '${INT8_FORMAT}'`);
  const weightsPath = join(dir, manifest.weights.file);
  let raw: Uint8Array;
  try {
    raw = new Uint8Array(inflateRawSync(readFileSync(weightsPath)));
  } catch (e) {
    throw new Error(`${weightsPath}: cannot read the int8 weights (${(e as Error).message.split('\n')[0]})`);
  }
  if (sha256(raw) !== manifest.weights.sha256)
    throw new Error(`${weightsPath}: the weights do not match the sha256 in ${INT8_MODEL_FILE}`);
  const view = <T>(s: Slice, make: (b: ArrayBuffer, o: number, n: number) => T, size: number): T => {
    if (s.offset % 4 !== 0 || s.offset + s.bytes > raw.length || s.bytes % size !== 0)
      throw new Error(`${path}: a tensor slice (${s.offset}+${s.bytes}) lies outside ${manifest.weights.file}`);
    return make(raw.buffer as ArrayBuffer, raw.byteOffset + s.offset, s.bytes / size);
  };
  const ops = manifest.layers.map((l): Int8Op => {
    if (l.type === 'maxpool2d') return l;
    return {
      ...l,
      kernel: view(l.kernel, (b, o, n) => new Int8Array(b, o, n), 1),
      bias: view(l.bias, (b, o, n) => new Int32Array(b, o, n), 4),
      weightScales: view(l.weightScales, (b, o, n) => new Float32Array(b, o, n), 4),
    } as Int8Op;
  });
  return {
    net: { inputShape: manifest.inputShape, input: manifest.input, ops, outputSize: manifest.outputSize },
    manifest,
  };
}
