/**
 * `edgefed export`: a saved model (a folder written by --out, or a tfjs model.json) in another runtime's
 * format. `--format onnx` writes an ONNX file (model/onnx/export.ts) that ONNX Runtime (node, web,
 * gateways) runs with the engine's predictions.
 */
import type { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from './args.js';
import { ensureTfjs, specFromModelJson } from '../model/tfjs.js';
import { exportOnnx } from '../model/onnx/export.js';

export const EXPORT_FORMATS = ['onnx'] as const;

export interface ExportOptions {
  model: string;
  format: string;
  out: string;
}

/** Writes the export; returns what was written (for the command's summary line). */
export async function runExport(o: ExportOptions): Promise<{ out: string; bytes: number; inputShape: number[] }> {
  if (!(EXPORT_FORMATS as readonly string[]).includes(o.format)) {
    throw new UsageError(`--format: '${o.format}' is not one of ${EXPORT_FORMATS.join(', ')}`);
  }
  const modelJson = o.model.endsWith('.json') ? o.model : join(o.model, 'model.json');
  await ensureTfjs(); // reading model.json builds the tfjs model; this also keeps tfjs's console banner off
  const { spec, weights } = await specFromModelJson(modelJson);
  if (!weights) throw new UsageError(`${modelJson}: has no weights manifest, so there is nothing to export`);
  let bytes: Uint8Array;
  try {
    bytes = exportOnnx(spec, weights);
  } catch (e) {
    throw new UsageError(`${modelJson}: ${(e as Error).message}`);
  }
  try {
    writeFileSync(o.out, bytes);
  } catch (e) {
    throw new UsageError(`--out ${o.out}: cannot write (${(e as Error).message})`);
  }
  return { out: o.out, bytes: bytes.length, inputShape: spec.inputShape };
}

export function addExportCommand(program: Command): void {
  program.command('export')
    .description('write a saved model in another runtime\'s format (ONNX for ONNX Runtime on gateways, Jetsons, browsers)')
    .requiredOption('--model <dir>', 'a model folder written by --out (model/) or a model.json')
    .requiredOption('--out <file>', 'the file to write, e.g. model.onnx')
    .option('--format <name>', `output format: ${EXPORT_FORMATS.join(' | ')}`, 'onnx')
    .addHelpText('after', `
Example:
  edgefed export --model runs/demo/model --format onnx --out mnist.onnx`)
    .action(async (flags: ExportOptions) => {
      const r = await runExport(flags);
      process.stdout.write(`wrote ${r.out} (${r.bytes} bytes, ONNX opset 17; input 'input' [batch, ${r.inputShape.join(', ')}], output 'output')\n`);
    });
}
