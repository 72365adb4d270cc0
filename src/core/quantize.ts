/**
 * Post-training int8 quantisation of a model's weights for serving on small devices: every tensor of
 * rank >= 2 (kernels, recurrent kernels, embeddings) gets one symmetric scale per output channel (its last
 * axis, where Keras kernels keep output units and filters): q = round(w / scale), scale = max|w| / 127,
 * so q is in [-127, 127] and |w - q * scale| <= scale / 2. Rank-1 tensors (biases, LayerNorm gamma and
 * beta) stay float32: they are a fraction of a percent of the bytes and their error would shift every
 * output. Pure: Float32Array in, Int8Array and scales out.
 */
import { concatFloat32 } from './concat.js';
import { makeLayout, type TensorSpec } from './params.js';

export interface QuantizedTensor {
  name: string;
  shape: number[];
  /** 'int8': q and one scale per output channel; 'float32': the values as they were. */
  kind: 'int8' | 'float32';
  q?: Int8Array;
  scales?: Float32Array;
  values?: Float32Array;
}

/**
 * Symmetric per-channel int8 of a row-major tensor whose channel axis has `channels` entries and `inner`
 * elements after it (1: the last axis, as Keras kernels; prod of the later dims for an earlier axis).
 */
export function quantizePerChannel(
  values: Float32Array,
  channels: number,
  inner = 1,
): { q: Int8Array; scales: Float32Array } {
  if (!(Number.isInteger(channels) && channels >= 1) || values.length % channels !== 0) {
    throw new Error(`cannot quantise ${values.length} values in ${channels} channels`);
  }
  const scales = new Float32Array(channels);
  const channelOf = (i: number) => Math.floor(i / inner) % channels;
  for (let i = 0; i < values.length; i++) {
    const c = channelOf(i);
    scales[c] = Math.max(scales[c], Math.abs(values[i]));
  }
  // A channel of zeros (or of weights so small that max / 127 underflows float32) gets scale 1: all its q are 0.
  for (let c = 0; c < channels; c++) scales[c] = Math.fround(scales[c] / 127) > 0 ? scales[c] / 127 : 1;
  const q = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) throw new Error(`cannot quantise a non-finite weight (${values[i]} at ${i})`);
    q[i] = Math.max(-127, Math.min(127, Math.round(values[i] / scales[channelOf(i)])));
  }
  return { q, scales };
}

/** The float values a quantised tensor stands for. */
export function dequantize(t: QuantizedTensor): Float32Array {
  if (t.kind === 'float32') return Float32Array.from(t.values!);
  const channels = t.scales!.length;
  return Float32Array.from(t.q!, (v, i) => v * t.scales![i % channels]);
}

/** Quantises the model's flat weights (tfjs order, as `tensors` lists them). */
export function quantizeWeights(tensors: readonly TensorSpec[], weights: Float32Array): QuantizedTensor[] {
  const layout = makeLayout(tensors);
  const total = layout.reduce((a, s) => a + s.size, 0);
  if (weights.length !== total) throw new Error(`weights have ${weights.length} values, the tensors need ${total}`);
  return layout.map((s) => {
    const v = weights.subarray(s.offset, s.offset + s.size);
    if (s.shape.length < 2) return { name: s.name, shape: [...s.shape], kind: 'float32', values: Float32Array.from(v) };
    return { name: s.name, shape: [...s.shape], kind: 'int8', ...quantizePerChannel(v, s.shape[s.shape.length - 1]) };
  });
}

/** The flat float weights (tfjs order) the quantised model computes with. */
export function dequantizeWeights(tensors: readonly QuantizedTensor[]): Float32Array {
  return concatFloat32(tensors.map(dequantize));
}

/** Bytes the quantised tensors take (int8 values, float32 scales, float32 rank-1 tensors). */
export function quantizedBytes(tensors: readonly QuantizedTensor[]): {
  int8: number;
  scales: number;
  float: number;
  total: number;
} {
  let int8 = 0,
    scales = 0,
    float = 0;
  for (const t of tensors) {
    if (t.kind === 'int8') {
      int8 += t.q!.length;
      scales += t.scales!.length * 4;
    } else {
      float += t.values!.length * 4;
    }
  }
  return { int8, scales, float, total: int8 + scales + float };
}
