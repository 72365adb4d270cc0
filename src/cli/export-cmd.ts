/**
 * `edgefed export`: a saved model (a folder written by --out, or a tfjs model.json) in another runtime's
 * format. `--format onnx` writes an ONNX file (model/onnx/export.ts) that ONNX Runtime (node, web,
 * gateways) runs with the engine's predictions; an int8 model folder (`edgefed quantize`) is written in
 * QDQ form with its own int8 weights and calibrated activation scales (model/onnx/int8.ts).
 */
import type { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from './args.js';
import { exportOnnx } from '../model/onnx/export.js';
import { exportInt8Onnx } from '../model/onnx/int8.js';
import { INT8_MODEL_FILE, isInt8ModelDir, readInt8Model } from '../model/int8-files.js';

export const EXPORT_FORMATS = ['onnx'] as const;

export interface ExportOptions {
  model: string;
  format: string;
  out: string;
  /** Weights as int8 per output channel behind DequantizeLinear (QDQ, weight-only). */
  int8?: boolean;
}

export interface ExportResult {
  out: string;
  bytes: number;
  inputShape: number[];
  /** 'weights': a float model's weights stored as int8 (--int8); 'model': an int8 model folder, activations too. */
  int8: 'weights' | 'model' | null;
}

/** Writes the export; returns what was written (for the command's summary line). */
export async function runExport(o: ExportOptions): Promise<ExportResult> {
  if (!(EXPORT_FORMATS as readonly string[]).includes(o.format)) {
    throw new UsageError(`--format: '${o.format}' is not one of ${EXPORT_FORMATS.join(', ')}`);
  }
  const { bytes, inputShape, int8 } = isInt8ModelDir(o.model) ? int8Export(o.model) : await floatExport(o);
  try {
    writeFileSync(o.out, bytes);
  } catch (e) {
    throw new UsageError(`--out ${o.out}: cannot write (${(e as Error).message})`);
  }
  return { out: o.out, bytes: bytes.length, inputShape, int8 };
}

async function floatExport(o: ExportOptions): Promise<Omit<ExportResult, 'out' | 'bytes'> & { bytes: Uint8Array }> {
  const modelJson = o.model.endsWith('.json') ? o.model : join(o.model, 'model.json');
  const { ensureTfjs, specFromModelJson } = await import('../model/tfjs.js'); // tfjs on use, not at startup
  await ensureTfjs(); // reading model.json builds the tfjs model; this also keeps tfjs's console banner off
  try {
    const { spec, weights } = await specFromModelJson(modelJson);
    if (!weights) throw new Error(`${modelJson}: has no weights manifest, so there is nothing to export`);
    const int8 = o.int8 === true;
    return { bytes: exportOnnx(spec, weights, { int8 }), inputShape: spec.inputShape, int8: int8 ? 'weights' : null };
  } catch (e) {
    const message = (e as Error).message;
    throw new UsageError(message.startsWith(modelJson) ? message : `${modelJson}: ${message}`);
  }
}

function int8Export(dir: string): Omit<ExportResult, 'out' | 'bytes'> & { bytes: Uint8Array } {
  try {
    const { net } = readInt8Model(dir);
    return { bytes: exportInt8Onnx(net, 'int8'), inputShape: net.inputShape, int8: 'model' };
  } catch (e) {
    // readInt8Model names the file; a manifest missing whole sections fails as a TypeError while being read.
    const message =
      e instanceof TypeError ? `${INT8_MODEL_FILE} is not a complete int8 manifest` : (e as Error).message;
    throw new UsageError(message.startsWith(dir) ? message : `--model ${dir}: ${message}`);
  }
}

const INT8_NOTE = {
  none: '',
  weights: ', int8 weights (QDQ)',
  model: ', int8 model (QDQ: int8 weights, int32 biases, calibrated activation scales)',
};

export function addExportCommand(program: Command): void {
  program
    .command('export')
    .description(
      "write a saved model in another runtime's format (ONNX for ONNX Runtime on gateways, Jetsons, browsers)",
    )
    .requiredOption(
      '--model <dir>',
      'a model folder written by --out (model/), a model.json, or an int8 model folder from edgefed quantize',
    )
    .requiredOption('--out <file>', 'the file to write, e.g. model.onnx')
    .option('--format <name>', `output format: ${EXPORT_FORMATS.join(' | ')}`, 'onnx')
    .option(
      '--int8',
      'weights as int8 with one scale per output channel (QDQ: DequantizeLinear before each weight use), ~1/4 the size',
    )
    .addHelpText(
      'after',
      `
Example:
  edgefed export --model runs/demo/model --format onnx --out mnist.onnx
  edgefed export --model runs/demo/model --format onnx --int8 --out mnist-int8-weights.onnx
  edgefed export --model runs/demo/model-int8 --format onnx --out mnist-int8.onnx   (QDQ, calibrated scales)`,
    )
    .action(async (flags: ExportOptions) => {
      const r = await runExport(flags);
      process.stdout.write(
        `wrote ${r.out} (${r.bytes} bytes, ONNX opset 17${INT8_NOTE[r.int8 ?? 'none']}; ` +
          `input 'input' [batch, ${r.inputShape.join(', ')}], output 'output')\n`,
      );
    });
}
