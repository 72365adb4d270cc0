/**
 * A run's definition as the coordinator accepts it (REST body or --config file): the deployed run's view of the
 * one run spec (engine/run-spec.ts), checked by the shared combination rules (engine/run-rules.ts).
 */
import type { z } from 'zod';
import { configName, deploymentView, describeIssues } from '../engine/run-spec.js';
import { CONFIG_WORDING, runIssues } from '../engine/run-rules.js';

export const RunConfigSchema = deploymentView.superRefine((config, ctx) => {
  for (const issue of runIssues({ ...config, secagg: config.secagg !== undefined }, CONFIG_WORDING, config.minNodes))
    ctx.addIssue({ code: 'custom', ...issue });
});

export type RunConfig = z.output<typeof RunConfigSchema>;

/** `where` names the source in errors (a file, the request body); every problem is listed with its field. */
export function parseRunConfig(input: unknown, where = 'the run config'): RunConfig {
  const parsed = RunConfigSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  throw new Error(`run config: ${describeIssues(parsed.error, configName, where)}`);
}
