/**
 * `edgefed export`: a saved model (a folder written by --out, or a tfjs model.json) in another runtime's
 * format. `--format onnx` writes an ONNX file (model/onnx/export.ts) that ONNX Runtime (node, web,
 * gateways) runs with the engine's predictions.
 */
import type { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from './args.js';
import { exportOnnx } from '../model/onnx/export.js';

export const EXPORT_FORMATS = ['onnx'] as const;

export interface ExportOptions {
  model: string;
  format: string;
  out: string;
  /** Weights as int8 per output channel behind DequantizeLinear (QDQ, weight-only). */
  int8?: boolean;
}

/** Writes the export; returns what was written (for the command's summary line). */
export async function runExport(
  o: ExportOptions,
): Promise<{ out: string; bytes: number; inputShape: number[]; int8: boolean }> {
  if (!(EXPORT_FORMATS as readonly string[]).includes(o.format)) {
    throw new UsageError(`--format: '${o.format}' is not one of ${EXPORT_FORMATS.join(', ')}`);
  }
  const modelJson = o.model.endsWith('.json') ? o.model : join(o.model, 'model.json');
  const { ensureTfjs, specFromModelJson } = await import('../model/tfjs.js'); // tfjs on use, not at startup
  await ensureTfjs(); // reading model.json builds the tfjs model; this also keeps tfjs's console banner off
  const { spec, weights } = await specFromModelJson(modelJson);
  if (!weights) throw new UsageError(`${modelJson}: has no weights manifest, so there is nothing to export`);
  let bytes: Uint8Array;
  try {
    bytes = exportOnnx(spec, weights, { int8: o.int8 === true });
  } catch (e) {
    throw new UsageError(`${modelJson}: ${(e as Error).message}`);
  }
  try {
    writeFileSync(o.out, bytes);
  } catch (e) {
    throw new UsageError(`--out ${o.out}: cannot write (${(e as Error).message})`);
  }
  return { out: o.out, bytes: bytes.length, inputShape: spec.inputShape, int8: o.int8 === true };
}

export function addExportCommand(program: Command): void {
  program
    .command('export')
    .description(
      "write a saved model in another runtime's format (ONNX for ONNX Runtime on gateways, Jetsons, browsers)",
    )
    .requiredOption('--model <dir>', 'a model folder written by --out (model/) or a model.json')
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
  edgefed export --model runs/demo/model --format onnx --int8 --out mnist-int8.onnx`,
    )
    .action(async (flags: ExportOptions) => {
      const r = await runExport(flags);
      process.stdout.write(
        `wrote ${r.out} (${r.bytes} bytes, ONNX opset 17${r.int8 ? ', int8 weights (QDQ)' : ''}; ` +
          `input 'input' [batch, ${r.inputShape.join(', ')}], output 'output')\n`,
      );
    });
}
