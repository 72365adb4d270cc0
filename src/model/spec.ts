/**
 * Model specifications: the built-in Keras-style models and how a user's tfjs model.json enters.
 * A spec is plain data (it crosses worker and network boundaries); tfjs models are built from it on demand.
 */
import type { DenseNetSpec, Loss } from '../nn/dense.js';
import type { TensorSpec } from '../core/params.js';
import type { OptimizerConfig } from '../nn/optimizer.js';
import { Rng } from '../core/rng.js';
import { denseUnsupportedReason } from '../nn/dense.js';
import { seqTensorSpecs, seqUnsupportedReason, type SeqLayer } from '../nn/seqnet.js';

/** A layer of a model: the layers the engine runs (SeqLayer, nn/seqnet.ts). */
export type LayerSpec = SeqLayer;

export interface ModelSpec {
  /** 'mlp', '2nn', 'cnn', 'linear', 'gru', 'lstm', 'mobilenet' or the path of a user's model.json. */
  name: string;
  inputShape: number[];
  layers: LayerSpec[];
  loss: Loss;
  optimizer: OptimizerConfig;
  /** A user's Keras topology (model.json's modelTopology), when the model came from a file. */
  topology?: unknown;
  /** Tensor names and shapes in tfjs order (filled for user models from the tfjs model itself). */
  tensors?: TensorSpec[];
}

export const BUILTIN_MODELS = ['mlp', '2nn', 'cnn', 'linear', 'gru', 'lstm', 'mobilenet'] as const;
export type BuiltinModel = (typeof BUILTIN_MODELS)[number];
/** The built-in models with BatchNormalization layers (what FedBN keeps local). */
export const BATCHNORM_MODELS: readonly BuiltinModel[] = ['mobilenet'];

/** The built-in models for inputs of the given shape and a task with numClasses classes (0 = regression). */
export function builtinModel(name: BuiltinModel, inputShape: number[], numClasses: number): ModelSpec {
  const classify = numClasses > 0;
  const out: LayerSpec = classify
    ? { type: 'dense', name: 'output', units: numClasses, activation: 'softmax' }
    : { type: 'dense', name: 'output', units: 1, activation: 'linear' };
  const loss: Loss = classify ? 'sparse_categorical_crossentropy' : 'mse';
  const flatten: LayerSpec = { type: 'flatten', name: 'flatten' };
  const dense = (i: number, units: number): LayerSpec => ({
    type: 'dense',
    name: `dense${i}`,
    units,
    activation: 'relu',
  });
  switch (name) {
    case 'mlp': // the seed's reference model: Flatten, Dense(128, relu), Dense(10, softmax), Adam
      return { name, inputShape, layers: [flatten, dense(1, 128), out], loss, optimizer: { name: 'adam', lr: 0.001 } };
    case '2nn': // McMahan et al. 2017: two hidden layers of 200 ReLU units
      return {
        name,
        inputShape,
        layers: [flatten, dense(1, 200), dense(2, 200), out],
        loss,
        optimizer: { name: 'sgd', lr: 0.1 },
      };
    case 'cnn': {
      // McMahan et al. 2017: 5x5x32, pool, 5x5x64, pool, 512, classes
      if (inputShape.length !== 3)
        throw new Error(`the cnn model needs image inputs [h, w, c], got [${inputShape.join(',')}]`);
      const conv = (i: number, filters: number): LayerSpec => ({
        type: 'conv2d',
        name: `conv${i}`,
        filters,
        kernelSize: 5,
        activation: 'relu',
        padding: 'same',
      });
      const pool = (i: number): LayerSpec => ({ type: 'maxpool2d', name: `pool${i}`, poolSize: 2 });
      return {
        name,
        inputShape,
        layers: [conv(1, 32), pool(1), conv(2, 64), pool(2), flatten, dense(1, 512), out],
        loss,
        optimizer: { name: 'sgd', lr: 0.05 },
      };
    }
    case 'linear': // the seed's f(x) = sum w x + b; with classes, its softmax (multinomial logistic) form
      return { name, inputShape, layers: [flatten, out], loss, optimizer: { name: 'sgd', lr: 0.01 } };
    case 'gru':
    case 'lstm': {
      // A small forecaster for windows of time series ([steps, features]): one recurrent layer of 32 units
      // (sigmoid gates, as Keras 2.3+ defaults; tfjs's own default is hardSigmoid), its last state to the output.
      if (inputShape.length !== 2)
        throw new Error(`the ${name} model needs sequence inputs [steps, features], got [${inputShape.join(',')}]`);
      const rnn: LayerSpec = {
        type: name,
        name,
        units: 32,
        activation: 'tanh',
        recurrentActivation: 'sigmoid',
        returnSequences: false,
      };
      return { name, inputShape, layers: [rnn, out], loss, optimizer: { name: 'adam', lr: 0.003 } };
    }
    case 'mobilenet':
      if (inputShape.length !== 3)
        throw new Error(`the mobilenet model needs image inputs [h, w, c], got [${inputShape.join(',')}]`);
      return { name, inputShape, layers: mobileNetLayers(out), loss, optimizer: { name: 'adam', lr: 0.002 } };
  }
}

/**
 * A small MobileNet-style network (about 45k parameters on 28x28x1 inputs): a 3x3 conv stem, one
 * depthwise + pointwise block and three separable blocks (stride 2 where the map shrinks), each
 * followed by BatchNormalization (after the ReLU, since the engine's convolutions carry their
 * activation; momentum 0.9), then global average pooling and the output layer.
 */
function mobileNetLayers(out: LayerSpec): LayerSpec[] {
  // Momentum 0.9, not Keras' 0.99: a node trains a few dozen steps per round, and its moving statistics (what
  // evaluation normalises with) must catch up within them; at 0.99 they lag so far that evaluation collapses.
  const bn = (name: string): LayerSpec => ({ type: 'batchnorm', name, momentum: 0.9, epsilon: 1e-3 });
  const sep = (i: number, filters: number, strides: number): LayerSpec[] => [
    { type: 'separableconv2d', name: `sep${i}`, filters, kernelSize: 3, strides, padding: 'same', activation: 'relu' },
    bn(`sep${i}_bn`),
  ];
  return [
    { type: 'conv2d', name: 'stem', filters: 16, kernelSize: 3, activation: 'relu', padding: 'same' },
    bn('stem_bn'),
    {
      type: 'depthwiseconv2d',
      name: 'dw1',
      kernelSize: 3,
      depthMultiplier: 1,
      strides: 2,
      padding: 'same',
      activation: 'relu',
      useBias: false,
    },
    bn('dw1_bn'),
    { type: 'conv2d', name: 'pw1', filters: 32, kernelSize: 1, activation: 'relu', padding: 'same' },
    bn('pw1_bn'),
    ...sep(2, 64, 2),
    ...sep(3, 128, 2),
    ...sep(4, 128, 1),
    { type: 'globalavgpool2d', name: 'gap' },
    out,
  ];
}

/** Tensor names and shapes in the order tfjs lists the model's trainable weights. */
export function tensorSpecs(spec: ModelSpec): TensorSpec[] {
  if (spec.tensors) return spec.tensors;
  if (seqUnsupportedReason(spec) === null) return seqTensorSpecs(spec);
  const out: TensorSpec[] = [];
  let shape = [...spec.inputShape];
  for (const l of spec.layers) {
    switch (l.type) {
      case 'flatten':
        shape = [shape.reduce((a, b) => a * b, 1)];
        break;
      case 'dense': {
        const fanIn = shape[shape.length - 1];
        out.push({ name: `${l.name}/kernel`, shape: [fanIn, l.units] }, { name: `${l.name}/bias`, shape: [l.units] });
        shape = [...shape.slice(0, -1), l.units];
        break;
      }
      case 'conv2d': {
        const [h, w, c] = shape;
        out.push(
          { name: `${l.name}/kernel`, shape: [l.kernelSize, l.kernelSize, c, l.filters] },
          { name: `${l.name}/bias`, shape: [l.filters] },
        );
        shape = l.padding === 'same' ? [h, w, l.filters] : [h - l.kernelSize + 1, w - l.kernelSize + 1, l.filters];
        break;
      }
      case 'maxpool2d':
        shape = [Math.floor(shape[0] / l.poolSize), Math.floor(shape[1] / l.poolSize), shape[2]];
        break;
      case 'dropout':
        break;
    }
  }
  return out;
}

/**
 * The dense-engine form of a spec, or null when it has layers DenseNet does not run (conv, dropout, ...;
 * those run on SeqNet, see engineUnsupportedReason).
 */
export function asDenseNet(spec: {
  inputShape: readonly number[];
  layers: readonly LayerSpec[];
  loss: Loss;
}): DenseNetSpec | null {
  let i = 0;
  if (spec.layers[0]?.type === 'flatten') i = 1;
  else if (spec.inputShape.length !== 1) return null;
  const layers = [];
  for (; i < spec.layers.length; i++) {
    const layer = spec.layers[i];
    if (layer.type !== 'dense') return null;
    layers.push({ name: layer.name, units: layer.units, activation: layer.activation });
  }
  if (layers.length === 0) return null;
  return { inputSize: spec.inputShape.reduce((a, b) => a * b, 1), layers, loss: spec.loss };
}

/**
 * Why the engine (DenseNet for dense-only models, SeqNet for the others) cannot train this model, or
 * null when it can; such models train on tfjs.
 */
export function engineUnsupportedReason(spec: ModelSpec): string | null {
  const dense = asDenseNet(spec);
  if (dense && denseUnsupportedReason(dense) === null) return null;
  return seqUnsupportedReason(spec);
}

/**
 * Seeded initial weights as Keras initialises them by default: Glorot-uniform kernels, zero biases,
 * Layer/BatchNormalization's gamma and BatchNormalization's moving variance at one (moving mean zero). Fan-in/out of a conv kernel [kh, kw, cin, cout] count the receptive
 * field, as Keras does. (Recurrent kernels are Glorot-uniform too, where Keras uses orthogonal.)
 */
export function initialWeights(tensors: TensorSpec[], rng: Rng): Float32Array {
  const total = tensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
  const w = new Float32Array(total);
  let offset = 0;
  for (const t of tensors) {
    const size = t.shape.reduce((x, y) => x * y, 1);
    if (t.shape.length >= 2) {
      const receptive = t.shape.slice(0, -2).reduce((x, y) => x * y, 1);
      const fanIn = t.shape[t.shape.length - 2] * receptive;
      const fanOut = t.shape[t.shape.length - 1] * receptive;
      const limit = Math.sqrt(6 / (fanIn + fanOut));
      for (let i = 0; i < size; i++) w[offset + i] = rng.uniform(-limit, limit);
    } else if (t.name.endsWith('/gamma') || t.name.endsWith('/moving_variance')) {
      w.fill(1, offset, offset + size);
    }
    offset += size;
  }
  return w;
}
