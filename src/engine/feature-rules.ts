/**
 * Run features that do not compose, one set of rules for simulation options (sim/options.ts) and deployed run
 * configs (coordinator/config.ts), each issue naming the field to change.
 */
import { parseCompression } from '../core/compress-update.js';
import { parseStrategy } from './strategy.js';
import { checkSecAggStrategy } from './secure-round.js';

export interface FeatureChoice {
  secagg: boolean;
  compression: string;
  mode: 'sync' | 'async';
  overSelect?: number;
  strategy: string;
}

export interface FeatureIssue {
  path: string[];
  message: string;
}

export function featureIssues(c: FeatureChoice): FeatureIssue[] {
  const issues: FeatureIssue[] = [];
  let compressing = false;
  try {
    compressing = parseCompression(c.compression).kind !== 'none';
  } catch {
    // the compression field's own check reports a bad spec
  }
  if (compressing && c.secagg) issues.push({ path: ['compression'], message: 'secure aggregation sends fixed-point masked updates: compression does not apply' });
  if (compressing && c.mode === 'async') issues.push({ path: ['compression'], message: 'compressed updates work with synchronous rounds, not FedBuff (mode async) yet' });
  if ((c.overSelect ?? 0) > 0 && dpStrategy(c.strategy)) {
    // Keeping the first k answers of an over-selected sample makes who is fused depend on the other nodes:
    // not the Poisson sampling the accountant bounds, so refused rather than accounted with a guess.
    issues.push({ path: ['overSelect'], message: 'dpfedavg samples nodes by Poisson sampling and fuses every answer; over-selection does not apply: leave it out' });
  }
  if (!c.secagg) return issues;
  // The secure round is one synchronous protocol over every selected node's replies.
  if (c.mode === 'async') issues.push({ path: ['secagg'], message: 'works with synchronous rounds only, not mode async' });
  if ((c.overSelect ?? 0) > 0) issues.push({ path: ['secagg'], message: 'does not combine with over-selection: every selected node is part of the masked sum' });
  try {
    const s = parseStrategy(c.strategy);
    checkSecAggStrategy(s.name, s.clip);
  } catch (e) {
    issues.push({ path: ['strategy'], message: (e as Error).message });
  }
  return issues;
}

function dpStrategy(text: string): boolean {
  try {
    return parseStrategy(text).name === 'dpfedavg';
  } catch {
    return false; // the strategy field's own check reports a bad spec
  }
}
