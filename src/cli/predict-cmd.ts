/** `edgefed predict`: a saved global model applied to new data, with a decision per example. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureTfjs, specFromModelJson } from '../model/tfjs.js';
import { makeTrainer } from '../model/make-trainer.js';
import { decide, summarizeDecisions } from '../predict/decide.js';
import { loadCsvInput, loadIdxInput, type ModelMeta, type PredictInput } from '../predict/input.js';
import { loadMnist } from '../data/mnist.js';
import { UsageError } from './args.js';

export interface PredictOptions {
  model: string;
  input: string;
  threshold: number;
  json?: boolean;
  limit?: number;
}

export async function runPredict(o: PredictOptions): Promise<Record<string, unknown>> {
  const modelJson = o.model.endsWith('.json') ? o.model : join(o.model, 'model.json');
  if (!existsSync(modelJson)) throw new UsageError(`--model: ${modelJson} does not exist`);
  await ensureTfjs();
  const { spec, weights } = await specFromModelJson(modelJson);
  if (!weights) throw new UsageError(`--model: ${modelJson} has no weights manifest`);
  const metaPath = join(modelJson, '..', 'edgefed.json');
  const meta: ModelMeta = existsSync(metaPath) ? JSON.parse(readFileSync(metaPath, 'utf8'))
    : { featureShape: spec.inputShape, numClasses: spec.loss === 'mse' ? 0 : spec.tensors![spec.tensors!.length - 1].shape[0] };
  let input: PredictInput;
  if (o.input === 'mnist') {
    const t = loadMnist().test;
    input = { n: t.n, x: t.x, labels: t.y as Int32Array };
  } else if (o.input.startsWith('idx:')) input = loadIdxInput(o.input.slice(4), meta);
  else if (o.input.startsWith('csv:')) input = loadCsvInput(o.input.slice(4), meta);
  else throw new UsageError(`--input: expected mnist, idx:DIR or csv:FILE, got '${o.input}'`);
  if (o.limit !== undefined && o.limit < input.n) {
    const f = input.x.length / input.n;
    input = { n: o.limit, x: input.x.subarray(0, o.limit * f), labels: input.labels?.subarray(0, o.limit) };
  }
  const trainer = await makeTrainer(spec);
  try {
    const out = await trainer.predict(weights, input.x, input.n);
    if (meta.numClasses === 0) {
      const values = Array.from(out);
      const mse = input.labels ? values.reduce((a, v, i) => a + (v - input.labels![i]) ** 2, 0) / values.length : undefined;
      return { n: input.n, predictions: values.map((value) => ({ value, decision: 'accept' })), mse };
    }
    const preds = decide(out, meta.numClasses, o.threshold);
    const s = summarizeDecisions(preds, input.labels);
    return {
      model: modelJson, input: o.input, threshold: o.threshold, ...s, trainer: trainer.kind,
      predictions: preds.map((p) => ({ ...p, label: meta.classNames?.[p.class] ?? p.class })),
    };
  } finally {
    trainer.dispose();
  }
}
