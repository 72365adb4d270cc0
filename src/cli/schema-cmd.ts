/** `edgefed schema run|simulate`: the JSON Schema of a run config (or of simulation options), from the zod schemas. */
import type { Command } from 'commander';
import { z } from 'zod';
import { RunConfigSchema } from '../coordinator/config.js';
import { SimulationOptionsSchema } from '../sim/options.js';
import { UsageError } from './args.js';

const SCHEMAS: Record<string, z.ZodType> = { run: RunConfigSchema, simulate: SimulationOptionsSchema };

/** The JSON Schema of what a user writes (defaults optional); rules across fields are checked on parse only. */
export function jsonSchemaOf(kind: string): Record<string, unknown> {
  const schema = SCHEMAS[kind];
  if (!schema) throw new UsageError(`schema: unknown kind '${kind}' (one of ${Object.keys(SCHEMAS).join(', ')})`);
  return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}

export function addSchemaCommand(program: Command): void {
  program.command('schema')
    .description('print the JSON Schema of a run config (run) or of simulation options (simulate)')
    .argument('<kind>', 'run | simulate')
    .action((kind: string) => {
      process.stdout.write(`${JSON.stringify(jsonSchemaOf(kind), null, 2)}\n`);
    });
}
