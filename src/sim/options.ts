/**
 * The options of a simulated run: the simulation's view of the one run spec (engine/run-spec.ts), checked by
 * the shared combination rules (engine/run-rules.ts) and worded as command-line flags.
 */
import type { z } from 'zod';
import { describeIssues, flagName, simulationView } from '../engine/run-spec.js';
import { FLAG_WORDING, runIssues, simulationIssues } from '../engine/run-rules.js';
import { simRoundSize } from './heterogeneity-options.js';

export { maliciousCount } from '../engine/run-rules.js';

export const SimulationOptionsSchema = simulationView.superRefine((options, ctx) => {
  const issues = [
    ...runIssues(options, FLAG_WORDING, simRoundSize(options), options.nodes),
    ...simulationIssues(options),
  ];
  for (const issue of issues) ctx.addIssue({ code: 'custom', ...issue });
});

export type SimulationOptions = z.input<typeof SimulationOptionsSchema>;
export type ResolvedOptions = z.output<typeof SimulationOptionsSchema>;

/** Validates options; bad ones throw an Error with one line naming each option and its problem. */
export function resolveOptions(input: SimulationOptions): ResolvedOptions {
  const parsed = SimulationOptionsSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  throw new Error(describeIssues(parsed.error, flagName, 'options'));
}
