/**
 * The fields every run has, in one zod fragment used by simulation options (sim/options.ts) and deployed run
 * configs (coordinator/config.ts), with the text fields checked by their registries (strategies, codecs); and
 * the one way a failed parse becomes an error: every problem listed with its field path.
 */
import { z } from 'zod';
import { compressionForms, parseCompression } from '../core/compress-update.js';
import { parseStrategy, strategyHelp } from './strategies/registry.js';

/** A text field checked by its parser; the parser's message becomes the field's issue. */
export function specText(parse: (text: string) => unknown, fallback: string, description: string) {
  return z
    .string()
    .default(fallback)
    .superRefine((s, ctx) => {
      try {
        parse(s);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
      }
    })
    .describe(description);
}

export const runSpecFields = {
  strategy: specText(parseStrategy, 'fedavg', `how updates are fused: ${strategyHelp()}`),
  localEpochs: z.number().int().min(1).max(1000).default(1).describe('local epochs per round (E)'),
  batchSize: z.number().int().min(1).max(65536).default(32).describe('local batch size (B)'),
  optimizer: z.enum(['sgd', 'adam', 'momentum']).optional().describe("local optimizer (default: the model's own)"),
  lr: z.number().gt(0).lt(100).optional().describe('local learning rate'),
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 32 - 1)
    .default(1)
    .describe('seed for every random choice'),
  targetAccuracy: z.number().gt(0).lte(1).optional().describe('stop when central test accuracy reaches this'),
  evalFraction: z.number().min(0).lte(1).default(0).describe('fraction of nodes asked to evaluate each round'),
  limitTest: z.number().int().min(1).optional().describe('use only the first N test examples'),
  compression: specText(
    parseCompression,
    'none',
    `how nodes compress their updates: ${compressionForms()}, ` +
      'then optional ,ef=on|off ,delta=on|off ,rounding=nearest|stochastic',
  ),
};

/** How an error names a field: `--local-epochs` for the command line, `localEpochs` in a run config. */
export type FieldName = (path: readonly PropertyKey[]) => string;

export const flagName: FieldName = (path) =>
  `--${path
    .map(String)
    .join('.')
    .replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
export const configName: FieldName = (path) => path.map(String).join('.');

/** Every issue of a failed parse on one line, each with its field: `field: problem; other: problem`. */
export function describeIssues(error: z.ZodError, name: FieldName, where: string): string {
  return error.issues
    .flatMap((issue) => {
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((key) => `${name([...issue.path, key])}: unknown field in ${where}`);
      }
      return [`${issue.path.length ? name(issue.path) : where}: ${issue.message}`];
    })
    .join('; ');
}
