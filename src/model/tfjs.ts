/**
 * The TensorFlow.js side of a model: building tfjs LayersModels from specs, moving flat weights in and
 * out, and saving/loading the tfjs Keras format (model.json + weights.bin) that stock tfjs reads.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { LayerSpec, ModelSpec } from './spec.js';
import { tensorSpecs } from './spec.js';
import { layerSpecOf } from './tfjs-layer-spec.js';
import type { Loss } from '../nn/dense.js';
import type { OptimizerConfig } from '../nn/optimizer.js';
import { layoutSize, makeLayout } from '../core/params.js';

let ready: Promise<void> | null = null;

/**
 * tfjs on its CPU backend: it has every kernel (the wasm backend lacks the conv filter gradient). Its
 * conv filter gradient reads every element through TensorBuffer.get, about 70x slower than a plain
 * loop (80 s for one batch-32 step of the cnn's second conv layer), so it is replaced with the loop below.
 */
export function ensureTfjs(): Promise<void> {
  // PROD skips debug checks and the console banner about tfjs-node, which cannot install here.
  ready ??= (async () => {
    tf.env().set('PROD', true);
    await tf.setBackend('cpu');
    await tf.ready();
    const stock = tf.getKernel('Conv2DBackpropFilter', 'cpu');
    if (stock) {
      tf.unregisterKernel('Conv2DBackpropFilter', 'cpu');
      tf.registerKernel({
        kernelName: 'Conv2DBackpropFilter',
        backendName: 'cpu',
        kernelFunc: conv2dBackpropFilter(stock.kernelFunc),
      });
    }
  })();
  return ready;
}

interface CpuBackend {
  data: { get(dataId: object): { values: unknown } };
  makeTensorInfo(shape: number[], dtype: string, values: Float32Array): tf.TensorInfo;
}

/**
 * The CPU backend's Conv2DBackpropFilter (dW[wr, wc, i, o] = sum over b, yr, yc of x[b, xr, xc, i] *
 * dy[b, yr, yc, o]) with flat indexing. Each sum is accumulated in float64 over (b, yr, yc) in the stock
 * kernel's order, so the result is bit-identical to it; NCHW and non-float32 inputs go to the stock kernel.
 */
export function conv2dBackpropFilter(stock: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    const attrs = args.attrs as unknown as {
      strides: number | [number, number];
      pad: 'valid' | 'same' | number;
      dataFormat: 'NHWC' | 'NCHW';
      dimRoundingMode?: 'floor' | 'round' | 'ceil';
      filterShape: [number, number, number, number];
    };
    const backend = args.backend as unknown as CpuBackend;
    const xVals = backend.data.get(x.dataId).values;
    const dyVals = backend.data.get(dy.dataId).values;
    if (attrs.dataFormat === 'NCHW' || !(xVals instanceof Float32Array) || !(dyVals instanceof Float32Array))
      return stock(args);
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      attrs.filterShape,
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
      false,
      'channelsLast',
    );
    const {
      batchSize,
      inHeight,
      inWidth,
      inChannels,
      outHeight,
      outWidth,
      outChannels,
      strideHeight,
      strideWidth,
      filterHeight,
      filterWidth,
    } = info;
    const { top, left } = info.padInfo;
    const acc = new Float64Array(filterHeight * filterWidth * inChannels * outChannels);
    for (let b = 0; b < batchSize; b++) {
      for (let yR = 0; yR < outHeight; yR++) {
        for (let yC = 0; yC < outWidth; yC++) {
          const dyOff = ((b * outHeight + yR) * outWidth + yC) * outChannels;
          for (let wR = 0; wR < filterHeight; wR++) {
            const xR = yR * strideHeight + wR - top;
            if (xR < 0 || xR >= inHeight) continue;
            for (let wC = 0; wC < filterWidth; wC++) {
              const xC = yC * strideWidth + wC - left;
              if (xC < 0 || xC >= inWidth) continue;
              const xOff = ((b * inHeight + xR) * inWidth + xC) * inChannels;
              const wOff = (wR * filterWidth + wC) * inChannels * outChannels;
              for (let d1 = 0; d1 < inChannels; d1++) {
                const xv = xVals[xOff + d1];
                const dwBase = wOff + d1 * outChannels;
                for (let d2 = 0; d2 < outChannels; d2++) acc[dwBase + d2] += xv * dyVals[dyOff + d2];
              }
            }
          }
        }
      }
    }
    return backend.makeTensorInfo(info.filterShape as number[], 'float32', Float32Array.from(acc));
  };
}

export { tf };

function tfjsLayer(layer: LayerSpec, inputShape?: number[]): tf.layers.Layer {
  const first = inputShape ? { inputShape } : {};
  switch (layer.type) {
    case 'flatten':
      return tf.layers.flatten({ name: layer.name, ...first });
    case 'dense':
      return tf.layers.dense({ name: layer.name, units: layer.units, activation: layer.activation, ...first });
    case 'conv2d':
    case 'conv1d': {
      const args = {
        name: layer.name,
        filters: layer.filters,
        kernelSize: layer.kernelSize,
        activation: layer.activation,
        padding: layer.padding,
        ...first,
      };
      return layer.type === 'conv2d' ? tf.layers.conv2d(args) : tf.layers.conv1d(args);
    }
    case 'maxpool2d':
      return tf.layers.maxPooling2d({ name: layer.name, poolSize: layer.poolSize, ...first });
    case 'dropout':
      return tf.layers.dropout({ name: layer.name, rate: layer.rate, ...first });
    case 'gru':
    case 'lstm': {
      // The weights are always set from the engine's (Glorot, as initialWeights draws them); tfjs's default
      // orthogonal initializer would only warn about its own speed on every build of the model.
      const args = {
        name: layer.name,
        units: layer.units,
        activation: layer.activation,
        recurrentActivation: layer.recurrentActivation,
        returnSequences: layer.returnSequences,
        recurrentInitializer: 'glorotUniform' as const,
        ...first,
      };
      return layer.type === 'gru' ? tf.layers.gru(args) : tf.layers.lstm(args);
    }
    case 'globalavgpool1d':
      return tf.layers.globalAveragePooling1d({ name: layer.name, ...first });
    case 'layernorm':
      return tf.layers.layerNormalization({ name: layer.name, epsilon: layer.epsilon, ...first });
    case 'embedding':
      return tf.layers.embedding({ name: layer.name, inputDim: layer.inputDim, outputDim: layer.outputDim, ...first });
    case 'depthwiseconv2d':
      return tf.layers.depthwiseConv2d({
        name: layer.name,
        kernelSize: layer.kernelSize,
        depthMultiplier: layer.depthMultiplier,
        strides: layer.strides,
        padding: layer.padding,
        activation: layer.activation,
        useBias: layer.useBias,
        ...first,
      });
    case 'separableconv2d':
      return tf.layers.separableConv2d({
        name: layer.name,
        filters: layer.filters,
        kernelSize: layer.kernelSize,
        strides: layer.strides,
        padding: layer.padding,
        activation: layer.activation,
        ...first,
      });
    case 'batchnorm':
      return tf.layers.batchNormalization({
        name: layer.name,
        momentum: layer.momentum,
        epsilon: layer.epsilon,
        ...first,
      });
    case 'globalavgpool2d':
      return tf.layers.globalAveragePooling2d({ name: layer.name, ...first });
  }
}

/** A tfjs model for the spec (weights left at tfjs's own initial values: set them with setModelWeights). */
export async function buildTfjsModel(spec: ModelSpec): Promise<tf.LayersModel> {
  if (spec.topology) return tf.models.modelFromJSON({ modelTopology: spec.topology } as never);
  const model = tf.sequential({ name: spec.name.replace(/[^A-Za-z0-9_]/g, '_') });
  // The built-in models start with Flatten for every input; on tabular (rank-1) inputs it is a no-op the
  // engine skips, but tfjs's Flatten rejects inputs of rank < 3, so it is left out here.
  let rank = spec.inputShape.length;
  let first = true;
  for (const l of spec.layers) {
    if (l.type === 'flatten') {
      if (rank === 1) continue;
      rank = 1;
    }
    model.add(tfjsLayer(l, first ? spec.inputShape : undefined));
    first = false;
  }
  return model;
}

/**
 * Writes the flat values into the model's weights in tfjs's model.weights order: every trainable weight,
 * then the non-trainable ones (batch-normalization moving statistics), as the engine lays them out.
 */
export function setModelWeights(model: tf.LayersModel, values: Float32Array): void {
  const weights = model.weights;
  const sizes = weights.map((w) => (w.shape as number[]).reduce((a, b) => a * b, 1));
  const total = sizes.reduce((a, b) => a + b, 0);
  if (total !== values.length) throw new Error(`weights have ${values.length} values but the model needs ${total}`);
  let offset = 0;
  weights.forEach((w, i) => {
    const t = tf.tensor(values.subarray(offset, offset + sizes[i]), w.shape as number[], 'float32');
    offset += sizes[i];
    try {
      w.write(t);
    } finally {
      t.dispose();
    }
  });
}

export function getModelWeights(model: tf.LayersModel): Float32Array {
  const vars = model.weights.map((w) => w.read());
  const total = vars.reduce((a, t) => a + t.size, 0);
  const out = new Float32Array(total);
  let offset = 0;
  for (const t of vars) {
    out.set(t.dataSync() as Float32Array, offset);
    offset += t.size;
  }
  return out;
}

const LOSSES: Record<string, Loss> = {
  sparse_categorical_crossentropy: 'sparse_categorical_crossentropy',
  sparseCategoricalCrossentropy: 'sparse_categorical_crossentropy',
  mse: 'mse',
  mean_squared_error: 'mse',
  meanSquaredError: 'mse',
};

/**
 * A spec for a user's (or our saved) model.json: the topology is kept as is; layers the dense engine
 * understands are listed so it can train the model, and the loss comes from the training config or,
 * failing that, from the output activation (softmax: sparse categorical cross-entropy, else MSE).
 */
export async function specFromModelJson(path: string): Promise<{ spec: ModelSpec; weights: Float32Array | null }> {
  let json: ModelJson;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: not a readable tfjs model.json (${(e as Error).message.split('\n')[0]})`);
  }
  const dir = join(path, '..');
  return specFromModelArtifacts(json, path, (p) => {
    const file = join(dir, p);
    if (!existsSync(file)) throw new Error(`${path}: weights file ${p} is missing`);
    return readFileSync(file);
  });
}

type WeightsManifest = { paths: string[]; weights: { name: string; shape: number[]; dtype: string }[] }[];
export interface ModelJson {
  modelTopology?: unknown;
  trainingConfig?: { loss?: unknown };
  weightsManifest?: WeightsManifest;
}

/** As specFromModelJson, for a parsed model.json whose weight files come from `weightFile` (e.g. fetched over HTTP). */
export async function specFromModelArtifacts(
  json: ModelJson,
  path: string,
  weightFile: (p: string) => Uint8Array,
): Promise<{ spec: ModelSpec; weights: Float32Array | null }> {
  const topology = json.modelTopology as { model_config?: unknown; training_config?: { loss?: unknown } } | undefined;
  if (!topology || typeof topology !== 'object')
    throw new Error(`${path}: no modelTopology (is this a tfjs layers model.json?)`);
  let model: tf.LayersModel;
  try {
    model = await buildTfjsModel({ topology, name: path } as ModelSpec);
  } catch (e) {
    throw new Error(`${path}: tfjs cannot build this topology (${(e as Error).message.split('\n')[0]})`);
  }
  try {
    const inputShape = (model.inputs[0].shape.slice(1) as (number | null)[]).map((d) => {
      if (d === null) throw new Error(`${path}: input shape has an unknown dimension`);
      return d;
    });
    const layers = model.layers.map(layerSpecOf);
    const lossName = json.trainingConfig?.loss ?? topology.training_config?.loss;
    const last = layers[layers.length - 1];
    const loss: Loss =
      typeof lossName === 'string' && LOSSES[lossName]
        ? LOSSES[lossName]
        : last?.type === 'dense' && last.activation === 'softmax'
          ? 'sparse_categorical_crossentropy'
          : 'mse';
    const tensors = model.weights.map((w) => ({ name: w.originalName, shape: w.shape as number[] }));
    const spec: ModelSpec = {
      name: path,
      inputShape,
      layers,
      loss,
      optimizer: { name: 'adam', lr: 0.001 },
      topology,
      tensors,
    };
    return { spec, weights: readManifestWeights(path, json.weightsManifest, spec, weightFile) };
  } finally {
    model.dispose();
  }
}

function readManifestWeights(
  path: string,
  manifest: WeightsManifest | undefined,
  spec: ModelSpec,
  weightFile: (p: string) => Uint8Array,
): Float32Array | null {
  if (!manifest || manifest.length === 0) return null;
  const chunks = manifest.flatMap((g) => g.paths.map((p) => weightFile(p)));
  const bytes = Buffer.concat(chunks);
  const specs = manifest.flatMap((g) => g.weights);
  const byName = new Map<string, Float32Array>();
  let offset = 0;
  for (const w of specs) {
    if (w.dtype !== 'float32')
      throw new Error(`${path}: weight ${w.name} has dtype ${w.dtype}; only float32 is supported`);
    const size = w.shape.reduce((a, b) => a * b, 1);
    if (offset + size * 4 > bytes.length) throw new Error(`${path}: weights file is shorter than its manifest says`);
    byName.set(
      w.name,
      new Float32Array(bytes.buffer.slice(bytes.byteOffset + offset, bytes.byteOffset + offset + size * 4)),
    );
    offset += size * 4;
  }
  const layout = makeLayout(tensorSpecs(spec));
  const out = new Float32Array(layoutSize(layout));
  for (const slot of layout) {
    const v = byName.get(slot.name);
    if (!v) throw new Error(`${path}: the manifest has no weight named ${slot.name}`);
    if (v.length !== slot.size)
      throw new Error(`${path}: weight ${slot.name} has ${v.length} values, expected ${slot.size}`);
    out.set(v, slot.offset);
  }
  return out;
}

/**
 * The optimizer as tfjs's own getTrainingConfig() writes it (class name and getConfig()): loadLayersModel
 * compiles the model from it, and its Adam needs every field (a missing beta1 makes it throw).
 */
function optimizerConfig(optimizer: OptimizerConfig): { class_name: string; config: Record<string, unknown> } {
  switch (optimizer.name) {
    case 'adam':
      return {
        class_name: 'Adam',
        config: {
          learningRate: optimizer.lr,
          beta1: optimizer.beta1 ?? 0.9,
          beta2: optimizer.beta2 ?? 0.999,
          epsilon: optimizer.epsilon ?? 1e-7,
        },
      };
    case 'momentum':
      return {
        class_name: 'Momentum',
        config: { learningRate: optimizer.lr, momentum: optimizer.momentum ?? 0.9, useNesterov: false },
      };
    case 'sgd':
      return { class_name: 'SGD', config: { learningRate: optimizer.lr } };
  }
}

/** model.json (as an object) and the weights.bin bytes for the model with the given weights, the layout tfjs's loadLayersModel reads. */
export async function tfjsArtifacts(
  spec: ModelSpec,
  weights: Float32Array,
): Promise<{ modelJson: object; weightData: Uint8Array }> {
  await ensureTfjs();
  const model = await buildTfjsModel(spec);
  try {
    setModelWeights(model, weights);
    let out: { modelJson: object; weightData: Uint8Array } | undefined;
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        const trainingConfig = {
          loss: spec.loss,
          metrics: spec.loss === 'mse' ? [] : ['accuracy'],
          optimizer_config: optimizerConfig(spec.optimizer),
        };
        const modelJson = {
          modelTopology: artifacts.modelTopology,
          format: 'layers-model',
          generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
          convertedBy: 'EdgeFed',
          trainingConfig,
          weightsManifest: [{ paths: ['./weights.bin'], weights: artifacts.weightSpecs }],
        };
        out = { modelJson, weightData: new Uint8Array(artifacts.weightData as ArrayBuffer) };
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    return out!;
  } finally {
    model.dispose();
  }
}

/** Saves the model with the given weights as model.json + weights.bin, the layout tfjs's loadLayersModel reads. */
export async function saveTfjsModel(spec: ModelSpec, weights: Float32Array, dir: string): Promise<void> {
  const { modelJson, weightData } = await tfjsArtifacts(spec, weights);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'weights.bin'), weightData);
  writeFileSync(join(dir, 'model.json'), JSON.stringify(modelJson));
}
