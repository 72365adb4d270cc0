/**
 * A tfjs layer of a user's (or our saved) model.json as the engine's LayerSpec, when the engine computes
 * exactly what tfjs does with that configuration; any other layer (or option) becomes a marker that
 * SeqNet refuses, so the model trains on tfjs instead of training wrongly on the engine.
 */
import type * as tf from '@tensorflow/tfjs';
import type { Activation } from '../nn/dense.js';
import type { LayerSpec } from './spec.js';
import type { CellActivation, RecurrentActivation } from '../nn/recurrent.js';

const one = (v: unknown): number | undefined =>
  Array.isArray(v) ? (v.length === 1 ? v[0] : undefined) : (v as number | undefined);

export function layerSpecOf(layer: tf.layers.Layer): LayerSpec {
  const c = layer.getConfig() as Record<string, unknown>;
  const cls = layer.getClassName();
  const frozen = c.trainable === false;
  const activation = (c.activation as Activation | undefined) ?? 'linear';
  if (cls === 'Flatten') return { type: 'flatten', name: layer.name };
  if (cls === 'Dropout') return { type: 'dropout', name: layer.name, rate: c.rate as number };
  // Weighted layers: the engine expects a trainable kernel and bias; a layer without a bias or frozen is
  // left to tfjs (the engine would expect tensors the model does not have).
  if (!frozen && c.useBias !== false) {
    if (cls === 'Dense') return { type: 'dense', name: layer.name, units: c.units as number, activation };
    if (
      cls === 'Conv1D' &&
      one(c.strides) === 1 &&
      one(c.dilationRate) === 1 &&
      (c.padding === 'same' || c.padding === 'valid')
    ) {
      return {
        type: 'conv1d',
        name: layer.name,
        filters: c.filters as number,
        kernelSize: one(c.kernelSize) as number,
        activation,
        padding: c.padding,
      };
    }
    const plainRnn =
      !c.dropout && !c.recurrentDropout && !c.goBackwards && !c.stateful && !c.returnState && !c.resetAfter;
    if ((cls === 'GRU' || cls === 'LSTM') && plainRnn) {
      return {
        type: cls === 'GRU' ? 'gru' : 'lstm',
        name: layer.name,
        units: c.units as number,
        activation: activation as CellActivation,
        recurrentActivation: ((c.recurrentActivation as string | undefined) ?? 'hardSigmoid') as RecurrentActivation,
        returnSequences: c.returnSequences === true,
      };
    }
  }
  const vision = visionLayerSpecOf(layer, cls, c, activation, frozen);
  if (vision) return vision;
  if (cls === 'GlobalAveragePooling1D' && (c.dataFormat ?? 'channelsLast') === 'channelsLast') {
    return { type: 'globalavgpool1d', name: layer.name };
  }
  if (cls === 'LayerNormalization' && !frozen && c.center !== false && c.scale !== false) {
    // The engine normalises over the last axis only; tfjs writes it as its index in the batched input.
    const axis = one(c.axis);
    const inputRank = (layer.input as tf.SymbolicTensor).shape.length;
    if (axis === -1 || axis === inputRank - 1) {
      return { type: 'layernorm', name: layer.name, epsilon: (c.epsilon as number | undefined) ?? 1e-3 };
    }
  }
  if (cls === 'Embedding' && !frozen && !c.maskZero) {
    return { type: 'embedding', name: layer.name, inputDim: c.inputDim as number, outputDim: c.outputDim as number };
  }
  return { type: 'dropout', name: `${layer.name}:${cls}`, rate: NaN }; // marks a layer only tfjs can train
}

/**
 * The image layers (Conv2D, MaxPooling2D, DepthwiseConv2D, SeparableConv2D, BatchNormalization,
 * GlobalAveragePooling2D) when the engine computes them exactly, else null.
 */
function visionLayerSpecOf(
  layer: tf.layers.Layer,
  cls: string,
  c: Record<string, unknown>,
  activation: Activation,
  frozen: boolean,
): LayerSpec | null {
  const channelsLast = (c.dataFormat ?? 'channelsLast') === 'channelsLast';
  if (cls === 'GlobalAveragePooling2D' && channelsLast) return { type: 'globalavgpool2d', name: layer.name };
  const square = (v: unknown) => (Array.isArray(v) ? (v[0] === v[1] ? v[0] : undefined) : v) as number | undefined;
  const conv =
    !frozen &&
    channelsLast &&
    square(c.dilationRate) === 1 &&
    square(c.kernelSize) !== undefined &&
    square(c.strides) !== undefined &&
    (c.padding === 'same' || c.padding === 'valid');
  if (conv && cls === 'Conv2D' && square(c.strides) === 1 && c.useBias !== false) {
    return {
      type: 'conv2d',
      name: layer.name,
      filters: c.filters as number,
      kernelSize: square(c.kernelSize)!,
      activation,
      padding: c.padding as 'same' | 'valid',
    };
  }
  const pool = square(c.poolSize);
  if (cls === 'MaxPooling2D' && channelsLast && c.padding === 'valid' && pool && square(c.strides) === pool) {
    return { type: 'maxpool2d', name: layer.name, poolSize: pool };
  }
  if (conv && cls === 'DepthwiseConv2D') {
    return {
      type: 'depthwiseconv2d',
      name: layer.name,
      kernelSize: square(c.kernelSize)!,
      depthMultiplier: (c.depthMultiplier as number | undefined) ?? 1,
      strides: square(c.strides)!,
      padding: c.padding as 'same' | 'valid',
      activation,
      useBias: c.useBias !== false,
    };
  }
  if (conv && cls === 'SeparableConv2D' && c.useBias !== false && (c.depthMultiplier ?? 1) === 1) {
    return {
      type: 'separableconv2d',
      name: layer.name,
      filters: c.filters as number,
      kernelSize: square(c.kernelSize)!,
      strides: square(c.strides)!,
      padding: c.padding as 'same' | 'valid',
      activation,
    };
  }
  if (cls === 'BatchNormalization' && !frozen && c.center !== false && c.scale !== false) {
    const axis = one(c.axis);
    const inputRank = (layer.input as tf.SymbolicTensor).shape.length;
    if (axis === -1 || axis === inputRank - 1) {
      return {
        type: 'batchnorm',
        name: layer.name,
        momentum: (c.momentum as number | undefined) ?? 0.99,
        epsilon: (c.epsilon as number | undefined) ?? 1e-3,
      };
    }
  }
  return null;
}
