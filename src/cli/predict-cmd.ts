/** `edgefed predict`: a saved global model applied to new data, with a decision per example. */
import type { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTrainer } from '../model/make-trainer.js';
import { decide, summarizeDecisions } from '../predict/decide.js';
import { loadCsvInput, loadIdxInput, type ModelMeta, type PredictInput } from '../predict/input.js';
import { loadMnist } from '../data/mnist.js';
import { floatArg, intArg, UsageError } from './args.js';
import { formatPredictReport, type PredictReport } from './predict-table.js';
import { isInt8ModelDir, readInt8Model } from '../model/int8-files.js';
import { Int8Runner } from '../core/int8-net.js';

export interface PredictOptions {
  model: string;
  input: string;
  threshold: number;
  json?: boolean;
  limit?: number;
}

/**
 * The file of a csv: input. The training spec's options are accepted as written (so the dataset spec of a
 * run works unchanged): columns are matched by the names saved with the model, so only a label that
 * contradicts the model is an error.
 */
function csvInputFile(spec: string, meta: ModelMeta): string {
  const rest = spec.slice(4);
  const q = rest.indexOf('?');
  if (q < 0) return rest;
  for (const part of rest
    .slice(q + 1)
    .split('&')
    .filter((p) => p !== '')) {
    const [key, value = ''] = part.split('=', 2);
    if (!['label', 'keep', 'task', 'test'].includes(key))
      throw new UsageError(`--input ${spec}: unknown option '${key}' (accepted: label, keep, task, test)`);
    if (key === 'label' && meta.labelColumn !== undefined && value !== meta.labelColumn) {
      throw new UsageError(
        `--input ${spec}: label '${value}', but the model was trained to predict '${meta.labelColumn}'`,
      );
    }
  }
  return rest.slice(0, q);
}

/** The saved model to predict with: a float model (tfjs format, on the engine) or an int8 one (edgefed quantize). */
async function openModel(model: string): Promise<{
  path: string;
  meta: ModelMeta;
  kind: string;
  predict(x: Float32Array, n: number): Promise<Float32Array>;
  dispose(): void;
}> {
  const metaOf = (dir: string, fallback: () => ModelMeta): ModelMeta =>
    existsSync(join(dir, 'edgefed.json')) ? JSON.parse(readFileSync(join(dir, 'edgefed.json'), 'utf8')) : fallback();
  if (isInt8ModelDir(model)) {
    let loaded;
    try {
      loaded = readInt8Model(model);
    } catch (e) {
      throw new UsageError(`--model: ${(e as Error).message}`);
    }
    const { net, manifest } = loaded;
    const runner = new Int8Runner(net);
    const meta = metaOf(model, () => ({
      featureShape: net.inputShape,
      numClasses: manifest.source.loss === 'mse' ? 0 : net.outputSize,
    }));
    return { path: model, meta, kind: 'int8', predict: async (x, n) => runner.predict(x, n), dispose() {} };
  }
  const modelJson = model.endsWith('.json') ? model : join(model, 'model.json');
  if (!existsSync(modelJson)) throw new UsageError(`--model: ${modelJson} does not exist`);
  const { ensureTfjs, specFromModelJson } = await import('../model/tfjs.js'); // tfjs on use, not at startup
  await ensureTfjs();
  const { spec, weights } = await specFromModelJson(modelJson);
  if (!weights) throw new UsageError(`--model: ${modelJson} has no weights manifest`);
  const meta = metaOf(join(modelJson, '..'), () => ({
    featureShape: spec.inputShape,
    numClasses: spec.loss === 'mse' ? 0 : spec.tensors![spec.tensors!.length - 1].shape[0],
  }));
  const trainer = await makeTrainer(spec);
  return {
    path: modelJson,
    meta,
    kind: trainer.kind,
    predict: (x, n) => trainer.predict(weights, x, n),
    dispose: () => trainer.dispose(),
  };
}

export async function runPredict(o: PredictOptions): Promise<Record<string, unknown>> {
  const model = await openModel(o.model);
  const meta = model.meta;
  let input: PredictInput;
  if (o.input === 'mnist') {
    const t = loadMnist().test;
    input = { n: t.n, x: t.x, labels: t.y as Int32Array };
  } else if (o.input.startsWith('idx:')) input = loadIdxInput(o.input.slice(4), meta);
  else if (o.input.startsWith('csv:')) input = loadCsvInput(csvInputFile(o.input, meta), meta);
  else throw new UsageError(`--input: expected mnist, idx:DIR or csv:FILE, got '${o.input}'`);
  if (o.limit !== undefined && o.limit < input.n) {
    const f = input.x.length / input.n;
    input = { n: o.limit, x: input.x.subarray(0, o.limit * f), labels: input.labels?.subarray(0, o.limit) };
  }
  try {
    const out = await model.predict(input.x, input.n);
    if (meta.numClasses === 0) {
      const values = Array.from(out);
      const mse = input.labels
        ? values.reduce((a, v, i) => a + (v - input.labels![i]) ** 2, 0) / values.length
        : undefined;
      return { n: input.n, predictions: values.map((value) => ({ value, predicted: value, decision: 'accept' })), mse };
    }
    const preds = decide(out, meta.numClasses, o.threshold);
    const s = summarizeDecisions(preds, input.labels);
    return {
      model: model.path,
      input: o.input,
      threshold: o.threshold,
      ...s,
      trainer: model.kind,
      // `predicted` is the model's answer (a class name when the model has them); `label` is its old name,
      // kept for one release because it read like the ground truth.
      predictions: preds.map((p) => {
        const predicted = meta.classNames?.[p.class] ?? p.class;
        return { ...p, predicted, label: predicted };
      }),
      ...(input.labels ? { actual: input.labels, classNames: meta.classNames } : {}),
    };
  } finally {
    model.dispose();
  }
}

interface PredictFlags extends PredictOptions {
  rows: number;
}

export function addPredictCommand(program: Command): void {
  program
    .command('predict')
    .description('apply a saved global model to new data, with a decision per example')
    .requiredOption('--model <dir>', 'a model folder written by --out (model/), a model.json or an int8 folder')
    .requiredOption('--input <spec>', 'mnist (its test set) | idx:DIR | csv:FILE (columns as in training)')
    .option('--threshold <p>', 'abstain when the top class probability is below this', floatArg(0, 1), 0)
    .option('--limit <n>', 'predict only the first N examples', intArg(1))
    .option('--rows <n>', 'rows of the table to print (without --json)', intArg(0), 20)
    .option('--json', 'print the result as JSON (with every prediction)')
    .addHelpText(
      'after',
      `
Examples:
  edgefed demo --out runs/demo && edgefed predict --model runs/demo/model --input mnist --threshold 0.9
  edgefed simulate --dataset 'csv:examples/industrial-fault/synthetic-pump-sensors.csv?label=fault&keep=machine_id' \\
    --partition natural:machine_id --nodes 8 --out runs/faults
  edgefed predict --model runs/faults/model --input 'csv:examples/industrial-fault/synthetic-pump-sensors.csv?label=fault&keep=machine_id' --json`,
    )
    .action(async (flags: PredictFlags) => {
      let r: Record<string, unknown>;
      try {
        r = await runPredict(flags);
      } catch (e) {
        throw e instanceof UsageError ? e : new UsageError((e as Error).message);
      }
      const { actual, classNames, ...data } = r as Record<string, unknown> &
        Pick<PredictReport, 'actual' | 'classNames'>;
      if (flags.json) process.stdout.write(`${JSON.stringify(data)}\n`);
      else
        process.stdout.write(
          formatPredictReport({ ...(data as unknown as PredictReport), actual, classNames }, flags.rows),
        );
    });
}
