/**
 * `edgefed quantize`: post-training int8 quantisation of a saved float model for serving on small devices.
 * Weights get one int8 scale per output channel; activations one scale per tensor, from the min and max
 * seen on calibration data (the node's own data, named as a dataset spec). The int8 folder is written only
 * when everything checked out (model, data, shapes), under a temporary name renamed into place.
 */
import type { Command } from 'commander';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { UsageError } from './args.js';
import { weightsSha256 } from '../model/hash.js';
import { DEFAULT_CALIBRATION_SAMPLES, quantizeInputProblem, quantizeModel } from '../model/quantize-model.js';
import { int8ModelFiles, isInt8ModelDir, writeInt8Files, type Int8ByteAccount } from '../model/int8-files.js';
import { loadDatasetSpec, DATASET_SPEC_FORMS } from '../data/load.js';
import { loadMnist } from '../data/mnist.js';
import { mnistShard } from '../node/data.js';
import type { Dataset } from '../data/types.js';

export interface QuantizeOptions {
  model: string;
  calibration: string;
  out?: string;
}

export interface QuantizeResult {
  out: string;
  calibrationSamples: number;
  bytes: Int8ByteAccount;
}

/** `SPEC[?limit=N]` (or `...&limit=N` in a CSV spec's query): the spec without `limit`, and the limit. */
function splitLimit(spec: string): { spec: string; limit: number } {
  const q = spec.indexOf('?');
  if (q < 0) return { spec, limit: DEFAULT_CALIBRATION_SAMPLES };
  let limit = DEFAULT_CALIBRATION_SAMPLES;
  const kept: string[] = [];
  for (const part of spec.slice(q + 1).split('&')) {
    if (!part.startsWith('limit=')) {
      if (part !== '') kept.push(part);
      continue;
    }
    limit = Number(part.slice(6));
    if (!(Number.isInteger(limit) && limit >= 1))
      throw new UsageError(`--calibration ${spec}: limit must be a whole number >= 1, got '${part.slice(6)}'`);
  }
  return { spec: kept.length ? `${spec.slice(0, q)}?${kept.join('&')}` : spec.slice(0, q), limit };
}

const CALIBRATION_FORMS = ['mnist:train', 'mnist:test', 'mnist-partition:I/N', ...DATASET_SPEC_FORMS];

/** The calibration samples a spec names: the training split of a dataset spec (as the model was trained on). */
export function loadCalibration(raw: string): { data: Dataset; limit: number } {
  const { spec, limit } = splitLimit(raw);
  const shard = /^mnist-partition:(\d+)\/(\d+)(?::(.+))?$/.exec(spec);
  try {
    if (spec === 'mnist' || spec === 'mnist:train') return { data: loadMnist().train, limit };
    if (spec === 'mnist:test') return { data: loadMnist().test, limit };
    if (shard) {
      const [index, count] = [Number(shard[1]), Number(shard[2])];
      if (!(count >= 1 && index < count)) throw new Error(`need 0 <= I < N`);
      return { data: mnistShard({ index, count, partition: shard[3] ?? 'iid' }), limit };
    }
    if (spec.startsWith('idx:') || spec.startsWith('csv:')) return { data: loadDatasetSpec(spec).train, limit };
  } catch (e) {
    throw new UsageError(`--calibration ${raw}: ${(e as Error).message}`);
  }
  throw new UsageError(`--calibration: '${raw}' is not one of ${CALIBRATION_FORMS.join(' | ')} (add ?limit=N)`);
}

function checkOut(out: string): void {
  if (!existsSync(out)) {
    if (!existsSync(dirname(out))) throw new UsageError(`--out ${out}: its parent folder does not exist`);
    return;
  }
  if (!statSync(out).isDirectory() || readdirSync(out).length > 0)
    throw new UsageError(`--out ${out}: exists and is not an empty folder; name a new one`);
}

export async function runQuantize(options: QuantizeOptions): Promise<QuantizeResult> {
  const dir = resolve(options.model);
  if (!existsSync(dir)) throw new UsageError(`--model ${options.model}: no such folder`);
  if (isInt8ModelDir(dir)) throw new UsageError(`--model ${options.model}: is already an int8 model (int8-model.json)`);
  const modelJson = join(dir, 'model.json');
  if (!statSync(dir).isDirectory() || !existsSync(modelJson))
    throw new UsageError(
      `--model ${options.model}: not a model folder (no model.json); give the model/ folder of a run (simulate --out)`,
    );
  const out = resolve(options.out ?? `${dir.replace(/\/+$/, '')}-int8`);
  checkOut(out);
  const { ensureTfjs, specFromModelJson } = await import('../model/tfjs.js'); // tfjs on use, not at startup
  await ensureTfjs();
  let loaded;
  try {
    loaded = await specFromModelJson(modelJson);
  } catch (e) {
    throw new UsageError(`--model ${options.model}: ${(e as Error).message}`);
  }
  const { spec, weights } = loaded;
  if (!weights)
    throw new UsageError(`--model ${options.model}: model.json has no weights manifest: nothing to quantise`);
  const { data, limit } = loadCalibration(options.calibration);
  const problem = quantizeInputProblem(spec, data);
  if (problem) throw new UsageError(`--calibration ${options.calibration}: ${problem}`);
  const { net, samples } = quantizeModel(spec, weights, data, limit);
  const files = int8ModelFiles(net, {
    model: options.model,
    floatSha256: weightsSha256(weights),
    floatParameters: weights.length,
    loss: spec.loss,
    calibration: { data: options.calibration, samples, method: 'min/max per tensor, widened to include 0' },
  });
  const tmp = mkdtempSync(join(dirname(out), `.${basename(out)}-`));
  try {
    writeInt8Files(tmp, files);
    if (existsSync(join(dir, 'edgefed.json'))) copyFileSync(join(dir, 'edgefed.json'), join(tmp, 'edgefed.json'));
    if (existsSync(out)) rmSync(out, { recursive: true }); // checked empty above
    renameSync(tmp, out);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw new UsageError(`--out ${out}: cannot write (${(e as Error).message})`);
  }
  return { out, calibrationSamples: samples, bytes: files.manifest.bytes };
}

export function addQuantizeCommand(program: Command): void {
  program
    .command('quantize')
    .description('post-training int8 quantisation of a saved model, calibrated on sample data, for int8 serving')
    .requiredOption('--model <dir>', 'a model folder written by --out (model/ with model.json)')
    .requiredOption(
      '--calibration <data>',
      `samples to measure activation ranges on: ${CALIBRATION_FORMS.join(' | ')}, optionally ?limit=N ` +
        `(default ${DEFAULT_CALIBRATION_SAMPLES}, spread over the data)`,
    )
    .option('--out <dir>', 'the int8 model folder to write (default: the model folder with -int8 appended)')
    .option('--json', 'print the result as one JSON object')
    .addHelpText(
      'after',
      `
Examples:
  edgefed quantize --model runs/demo/model --calibration 'mnist:train?limit=1000'
  edgefed quantize --model runs/faults/model --calibration 'csv:examples/industrial-fault/synthetic-pump-sensors.csv?label=fault&keep=machine_id'
Supported layers: Dense, Conv2D, MaxPool2D, Flatten, Dropout (hidden activations relu or linear).`,
    )
    .action(async (flags: QuantizeOptions & { json?: boolean }) => {
      const result = await runQuantize(flags);
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(result)}\n`);
        return;
      }
      const byteAccount = result.bytes;
      process.stdout.write(
        `wrote ${result.out} (int8, calibrated on ${result.calibrationSamples} samples): ${byteAccount.storedTotal} bytes stored ` +
          `(${(byteAccount.storedRatio * 100).toFixed(2)}% of the float weights' ${byteAccount.floatWeightBytes}), ${byteAccount.rawTotal} in ` +
          `memory (${(byteAccount.rawRatio * 100).toFixed(2)}%: int8 kernels ${byteAccount.int8KernelBytes}, int32 biases ` +
          `${byteAccount.int32BiasBytes}, scales ${byteAccount.float32ScaleBytes + byteAccount.activationParamBytes})\n`,
      );
    });
}
