/** A run's definition as the coordinator accepts it (REST body or --config file), validated with zod. */
import { z } from 'zod';
import { fedBuffFields } from '../engine/async-options.js';
import { parseStrategy } from '../engine/strategy.js';
import { DEFAULT_SECAGG } from '../engine/secure-round.js';
import { featureIssues } from '../engine/feature-rules.js';
import { parseCompression } from '../core/compress-update.js';
import { asyncRunIssues } from './async-config.js';
import { BUILTIN_MODELS } from '../model/spec.js';

export const RunConfigSchema = z.object({
  name: z.string().min(1).max(128).default('run'),
  /** Central evaluation data held by the coordinator (its test split is used). */
  evalDataset: z.string().min(1).default('mnist'),
  model: z.enum(BUILTIN_MODELS).default('mlp'),
  strategy: z.string().default('fedavg').refine((s) => { parseStrategy(s); return true; }),
  rounds: z.number().int().min(1).max(100000).default(10),
  fraction: z.number().gt(0).lte(1).default(1),
  minNodes: z.number().int().min(1).default(1),
  localEpochs: z.number().int().min(1).max(1000).default(1),
  batchSize: z.number().int().min(1).max(65536).default(32),
  optimizer: z.enum(['sgd', 'adam', 'momentum']).optional(),
  lr: z.number().gt(0).lt(100).optional(),
  seed: z.number().int().min(0).max(2 ** 32 - 1).default(1),
  targetAccuracy: z.number().gt(0).lte(1).optional(),
  evalFraction: z.number().min(0).lte(1).default(0),
  limitTest: z.number().int().min(1).optional(),
  /** Scheduling: a round's deadline, over-selection, which nodes qualify, work sized to speed. */
  roundTimeoutMs: z.number().int().min(100).max(24 * 3600 * 1000).default(10 * 60 * 1000),
  overSelect: z.number().min(0).max(10).default(0),
  selection: z.object({
    tags: z.record(z.string(), z.string()).default({}),
    minCores: z.number().int().min(0).optional(),
    minMemoryMb: z.number().min(0).optional(),
    minSamplesPerSecond: z.number().min(0).optional(),
  }).strict().default({ tags: {} }),
  /** With fednova or fedprox: cap each node's local steps so it finishes within this many seconds. */
  workSeconds: z.number().gt(0).max(24 * 3600).optional(),
  /** How long a round waits for minNodes eligible nodes before starting anyway (then it is skipped); a
   * coordinator shutting down ends the wait at once. Every duration here is bounded by 24 hours. */
  waitForNodesMs: z.number().int().min(0).max(24 * 3600 * 1000).default(60_000),
  /** Secure aggregation (secure-round.ts): the coordinator sees only the sum of masked updates. */
  secagg: z.object({
    clip: z.number().gt(0).lte(1e6).default(DEFAULT_SECAGG.clip),
    maxWeight: z.number().int().min(1).max(2 ** 24).default(DEFAULT_SECAGG.maxWeight),
  }).strict().optional(),
  /** How nodes compress their updates (same spec as `edgefed simulate --compression`). */
  compression: z.string().default('none').refine((s) => { parseCompression(s); return true; }),
  /** mode 'async': FedBuff (rounds = fusions); rules in async-config.ts. */
  ...fedBuffFields,
}).strict().superRefine((c, ctx) => {
  for (const issue of asyncRunIssues(c)) ctx.addIssue({ code: 'custom', ...issue });
  for (const issue of featureIssues({ ...c, secagg: c.secagg !== undefined })) ctx.addIssue({ code: 'custom', ...issue });
});

export type RunConfig = z.output<typeof RunConfigSchema>;

export function parseRunConfig(input: unknown): RunConfig {
  const r = RunConfigSchema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw new Error(`run config: ${issue.path.join('.') || 'body'}: ${issue.message}`);
}
