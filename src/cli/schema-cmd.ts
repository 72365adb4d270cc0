/** `edgefed schema run|simulate`: the JSON Schema of a run config (or of simulation options), from the zod schemas. */
import type { Command } from 'commander';
import { z } from 'zod';
import { RunConfigSchema } from '../coordinator/config.js';
import { SimulationOptionsSchema } from '../sim/options.js';
import { UsageError } from './args.js';
import { exampleRunConfig } from './example-config.js';

const SCHEMAS: Record<string, z.ZodType> = { run: RunConfigSchema, simulate: SimulationOptionsSchema };

/** The JSON Schema of what a user writes (defaults optional); rules across fields are checked on parse only. */
export function jsonSchemaOf(kind: string): Record<string, unknown> {
  const schema = SCHEMAS[kind];
  if (!schema) throw new UsageError(`schema: unknown kind '${kind}' (one of ${Object.keys(SCHEMAS).join(', ')})`);
  return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}

export function addSchemaCommand(program: Command): void {
  program
    .command('schema')
    .description('print the JSON Schema of a run config (run) or of simulation options (simulate)')
    .argument('<kind>', 'run | simulate')
    .option('--example', 'print an example with every field commented (JSON with // comments) instead')
    .action((kind: string, f: { example?: boolean }) => {
      const schema = jsonSchemaOf(kind);
      process.stdout.write(
        f.example
          ? exampleRunConfig(
              schema,
              `EdgeFed ${kind === 'run' ? 'run config (POST /v1/runs or --config FILE)' : 'simulation options'}`,
            )
          : `${JSON.stringify(schema, null, 2)}\n`,
      );
    });
}
