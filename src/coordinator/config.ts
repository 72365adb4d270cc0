/** A run's definition as the coordinator accepts it (REST body or --config file), validated with zod. */
import { z } from 'zod';
import { fedBuffFields } from '../engine/async-options.js';
import { configName, describeIssues, runSpecFields } from '../engine/run-spec.js';
import { DEFAULT_SECAGG } from '../engine/secure-round.js';
import { CONFIG_WORDING, runIssues } from '../engine/run-rules.js';
import { BUILTIN_MODELS } from '../model/spec.js';

export const RunConfigSchema = z
  .object({
    name: z.string().min(1).max(128).default('run').describe('a name for people (dashboard, listings)'),
    /** Central evaluation data held by the coordinator (its test split is used). */
    evalDataset: z
      .string()
      .min(1)
      .default('mnist')
      .describe(
        'central evaluation data: mnist or a dataset the coordinator registered (--dataset NAME=SPEC); never a path',
      ),
    model: z.enum(BUILTIN_MODELS).default('mlp').describe('the model every node trains'),
    rounds: z.number().int().min(1).max(100000).default(10).describe('rounds to run (fusions in async mode)'),
    /** Strategy, local training, seed, target, evaluation, compression: the fields every run has. */
    ...runSpecFields,
    fraction: z.number().gt(0).lte(1).default(1).describe('share of eligible nodes asked to train each round'),
    minNodes: z.number().int().min(1).default(1).describe('nodes a round needs before it starts'),
    /** Scheduling: a round's deadline, over-selection, which nodes qualify, work sized to speed. */
    roundTimeoutMs: z
      .number()
      .int()
      .min(100)
      .max(24 * 3600 * 1000)
      .default(10 * 60 * 1000)
      .describe("a round's deadline in ms: later replies are recorded as late, never fused"),
    overSelect: z
      .number()
      .min(0)
      .max(10)
      .default(0)
      .describe('ask (1 + overSelect) times the nodes needed and fuse the first that answer'),
    selection: z
      .object({
        tags: z.record(z.string(), z.string()).default({}),
        minCores: z.number().int().min(0).optional(),
        minMemoryMb: z.number().min(0).optional(),
        minSamplesPerSecond: z.number().min(0).optional(),
      })
      .strict()
      .default({ tags: {} }),
    /** With a strategy that allows sized work (fednova, fedprox): cap each node's local steps to this many seconds. */
    workSeconds: z
      .number()
      .gt(0)
      .max(24 * 3600)
      .optional(),
    /** How long a round waits for minNodes eligible nodes before starting anyway (then it is skipped); a
     * coordinator shutting down ends the wait at once. Every duration here is bounded by 24 hours. */
    waitForNodesMs: z
      .number()
      .int()
      .min(0)
      .max(24 * 3600 * 1000)
      .default(60_000)
      .describe('how long a round waits for minNodes eligible nodes (ms)'),
    /** Secure aggregation (secure-round.ts): the coordinator sees only the sum of masked updates. */
    secagg: z
      .object({
        clip: z.number().gt(0).lte(1e6).default(DEFAULT_SECAGG.clip),
        maxWeight: z
          .number()
          .int()
          .min(1)
          .max(2 ** 24)
          .default(DEFAULT_SECAGG.maxWeight),
      })
      .strict()
      .optional(),
    /** mode 'async': FedBuff (rounds = fusions); rules in async-config.ts. */
    ...fedBuffFields,
  })
  .strict()
  .superRefine((c, ctx) => {
    for (const issue of runIssues({ ...c, secagg: c.secagg !== undefined }, CONFIG_WORDING, c.minNodes)) {
      ctx.addIssue({ code: 'custom', ...issue });
    }
  });

export type RunConfig = z.output<typeof RunConfigSchema>;

/** `where` names the source in errors (a file, the request body); every problem is listed with its field. */
export function parseRunConfig(input: unknown, where = 'the run config'): RunConfig {
  const r = RunConfigSchema.safeParse(input);
  if (r.success) return r.data;
  throw new Error(`run config: ${describeIssues(r.error, configName, where)}`);
}
