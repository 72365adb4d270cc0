/**
 * The TensorFlow.js side of a model: building tfjs LayersModels from specs, moving flat weights in and
 * out, and saving/loading the tfjs Keras format (model.json + weights.bin) that stock tfjs reads.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { LayerSpec, ModelSpec } from './spec.js';
import { tensorSpecs } from './spec.js';
import type { Activation, Loss } from '../nn/dense.js';
import { layoutSize, makeLayout } from '../core/params.js';

let ready: Promise<void> | null = null;

/** tfjs on its CPU backend: it has every kernel (the wasm backend lacks the conv filter gradient). */
export function ensureTfjs(): Promise<void> {
  // PROD skips debug checks and the console banner about tfjs-node, which cannot install here.
  ready ??= (async () => {
    tf.env().set('PROD', true);
    await tf.setBackend('cpu');
    await tf.ready();
  })();
  return ready;
}

export { tf };

function tfjsLayer(l: LayerSpec, inputShape?: number[]): tf.layers.Layer {
  const first = inputShape ? { inputShape } : {};
  switch (l.type) {
    case 'flatten':
      return tf.layers.flatten({ name: l.name, ...first });
    case 'dense':
      return tf.layers.dense({ name: l.name, units: l.units, activation: l.activation, ...first });
    case 'conv2d':
      return tf.layers.conv2d({ name: l.name, filters: l.filters, kernelSize: l.kernelSize, activation: l.activation, padding: l.padding, ...first });
    case 'maxpool2d':
      return tf.layers.maxPooling2d({ name: l.name, poolSize: l.poolSize, ...first });
    case 'dropout':
      return tf.layers.dropout({ name: l.name, rate: l.rate, ...first });
  }
}

/** A tfjs model for the spec (weights left at tfjs's own initial values: set them with setModelWeights). */
export async function buildTfjsModel(spec: ModelSpec): Promise<tf.LayersModel> {
  if (spec.topology) return tf.models.modelFromJSON({ modelTopology: spec.topology } as never);
  const model = tf.sequential({ name: spec.name.replace(/[^A-Za-z0-9_]/g, '_') });
  spec.layers.forEach((l, i) => model.add(tfjsLayer(l, i === 0 ? spec.inputShape : undefined)));
  return model;
}

export function setModelWeights(model: tf.LayersModel, values: Float32Array): void {
  const weights = model.trainableWeights;
  let offset = 0;
  const tensors = weights.map((w) => {
    const size = (w.shape as number[]).reduce((a, b) => a * b, 1);
    const t = tf.tensor(values.subarray(offset, offset + size), w.shape as number[], 'float32');
    offset += size;
    return t;
  });
  if (offset !== values.length) {
    tf.dispose(tensors);
    throw new Error(`weights have ${values.length} values but the model needs ${offset}`);
  }
  model.setWeights(tensors);
  tf.dispose(tensors);
}

export function getModelWeights(model: tf.LayersModel): Float32Array {
  const vars = model.trainableWeights.map((w) => w.read());
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
  sparse_categorical_crossentropy: 'sparse_categorical_crossentropy', sparseCategoricalCrossentropy: 'sparse_categorical_crossentropy',
  mse: 'mse', mean_squared_error: 'mse', meanSquaredError: 'mse',
};

/**
 * A spec for a user's (or our saved) model.json: the topology is kept as is; layers the dense engine
 * understands are listed so it can train the model, and the loss comes from the training config or,
 * failing that, from the output activation (softmax: sparse categorical cross-entropy, else MSE).
 */
export async function specFromModelJson(path: string): Promise<{ spec: ModelSpec; weights: Float32Array | null }> {
  let json: { modelTopology?: unknown; trainingConfig?: { loss?: unknown }; weightsManifest?: { paths: string[]; weights: { name: string; shape: number[]; dtype: string }[] }[] };
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: not a readable tfjs model.json (${(e as Error).message.split('\n')[0]})`);
  }
  const topology = json.modelTopology as { model_config?: unknown; training_config?: { loss?: unknown } } | undefined;
  if (!topology || typeof topology !== 'object') throw new Error(`${path}: no modelTopology (is this a tfjs layers model.json?)`);
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
    const layers = model.layers.map((l): LayerSpec => {
      const c = l.getConfig() as Record<string, unknown>;
      const cls = l.getClassName();
      if (cls === 'Flatten') return { type: 'flatten', name: l.name };
      if (cls === 'Dense') return { type: 'dense', name: l.name, units: c.units as number, activation: (c.activation as Activation) ?? 'linear' };
      if (cls === 'Dropout') return { type: 'dropout', name: l.name, rate: c.rate as number };
      return { type: 'dropout', name: `${l.name}:${cls}`, rate: NaN }; // marks a layer only tfjs can train
    });
    const lossName = json.trainingConfig?.loss ?? topology.training_config?.loss;
    const last = layers[layers.length - 1];
    const loss: Loss = typeof lossName === 'string' && LOSSES[lossName] ? LOSSES[lossName]
      : last?.type === 'dense' && last.activation === 'softmax' ? 'sparse_categorical_crossentropy' : 'mse';
    const tensors = model.trainableWeights.map((w) => ({ name: w.originalName, shape: w.shape as number[] }));
    const spec: ModelSpec = { name: path, inputShape, layers, loss, optimizer: { name: 'adam', lr: 0.001 }, topology, tensors };
    return { spec, weights: readManifestWeights(path, json.weightsManifest, spec) };
  } finally {
    model.dispose();
  }
}

function readManifestWeights(path: string, manifest: { paths: string[]; weights: { name: string; shape: number[]; dtype: string }[] }[] | undefined, spec: ModelSpec): Float32Array | null {
  if (!manifest || manifest.length === 0) return null;
  const dir = join(path, '..');
  const chunks = manifest.flatMap((g) => g.paths.map((p) => {
    const file = join(dir, p);
    if (!existsSync(file)) throw new Error(`${path}: weights file ${p} is missing`);
    return readFileSync(file);
  }));
  const bytes = Buffer.concat(chunks);
  const specs = manifest.flatMap((g) => g.weights);
  const byName = new Map<string, Float32Array>();
  let offset = 0;
  for (const w of specs) {
    if (w.dtype !== 'float32') throw new Error(`${path}: weight ${w.name} has dtype ${w.dtype}; only float32 is supported`);
    const size = w.shape.reduce((a, b) => a * b, 1);
    if (offset + size * 4 > bytes.length) throw new Error(`${path}: weights file is shorter than its manifest says`);
    byName.set(w.name, new Float32Array(bytes.buffer.slice(bytes.byteOffset + offset, bytes.byteOffset + offset + size * 4)));
    offset += size * 4;
  }
  const layout = makeLayout(tensorSpecs(spec));
  const out = new Float32Array(layoutSize(layout));
  for (const slot of layout) {
    const v = byName.get(slot.name);
    if (!v) throw new Error(`${path}: the manifest has no weight named ${slot.name}`);
    if (v.length !== slot.size) throw new Error(`${path}: weight ${slot.name} has ${v.length} values, expected ${slot.size}`);
    out.set(v, slot.offset);
  }
  return out;
}

/** Saves the model with the given weights as model.json + weights.bin, the layout tfjs's loadLayersModel reads. */
export async function saveTfjsModel(spec: ModelSpec, weights: Float32Array, dir: string): Promise<void> {
  await ensureTfjs();
  const model = await buildTfjsModel(spec);
  try {
    setModelWeights(model, weights);
    await model.save(tf.io.withSaveHandler(async (artifacts) => {
      mkdirSync(dir, { recursive: true });
      const trainingConfig = { loss: spec.loss, metrics: spec.loss === 'mse' ? [] : ['accuracy'], optimizer_config: { class_name: spec.optimizer.name === 'adam' ? 'Adam' : 'SGD', config: { learning_rate: spec.optimizer.lr } } };
      const modelJson = {
        modelTopology: artifacts.modelTopology,
        format: 'layers-model',
        generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
        convertedBy: 'EdgeFed',
        trainingConfig,
        weightsManifest: [{ paths: ['./weights.bin'], weights: artifacts.weightSpecs }],
      };
      writeFileSync(join(dir, 'weights.bin'), Buffer.from(artifacts.weightData as ArrayBuffer));
      writeFileSync(join(dir, 'model.json'), JSON.stringify(modelJson));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
  } finally {
    model.dispose();
  }
}
