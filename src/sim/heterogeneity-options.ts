/**
 * The rules tying the heterogeneity options together (virtual clock, deadline, over-selection, FedBuff);
 * kept apart from options.ts so that schema stays a list of fields.
 */
import { sampleCount } from '../core/sampling.js';

interface HeterogeneityFields {
  nodes?: number;
  fraction?: number;
  minNodes?: number;
  strategy?: string;
  profile?: string;
  deadline?: number;
  overSelect?: number;
  evalFraction?: number;
  mode?: 'sync' | 'async';
  bufferSize?: number;
  concurrency?: number;
  serverLr?: number;
}

/** FedBuff's defaults: as many nodes training as a synchronous round samples, and K = min(10, that). */
export function fedBuffDefaults(o: HeterogeneityFields): { concurrency: number; bufferSize: number } {
  const concurrency = o.concurrency ?? sampleCount(o.nodes ?? 10, o.fraction ?? 1, o.minNodes ?? 1);
  return { concurrency, bufferSize: o.bufferSize ?? Math.min(10, concurrency) };
}

/** Problems with the combination, each naming its option; empty when the options agree. */
export function heterogeneityIssues(o: HeterogeneityFields): { path: string[]; message: string }[] {
  const issues: { path: string[]; message: string }[] = [];
  if (o.mode === 'async') {
    const { concurrency, bufferSize } = fedBuffDefaults(o);
    if (concurrency < bufferSize) issues.push({ path: ['concurrency'], message: `must be >= the buffer size K = ${bufferSize} (nodes training at once), got ${concurrency}` });
    if (concurrency > (o.nodes ?? 10)) issues.push({ path: ['concurrency'], message: `${concurrency} nodes training at once, but there are only ${o.nodes ?? 10} nodes` });
    if ((o.strategy ?? 'fedavg').trim().toLowerCase() !== 'fedavg') issues.push({ path: ['strategy'], message: `--mode async fuses with FedBuff; use --strategy fedavg (got '${o.strategy}')` });
    if (o.deadline !== undefined) issues.push({ path: ['deadline'], message: 'applies to --mode sync only (async runs have no rounds to close)' });
    if (o.overSelect !== undefined) issues.push({ path: ['overSelect'], message: 'applies to --mode sync only' });
    if (o.evalFraction) issues.push({ path: ['evalFraction'], message: 'applies to --mode sync only (FedBuff evaluates centrally after each fusion)' });
  } else {
    for (const key of ['bufferSize', 'concurrency', 'serverLr'] as const) {
      if (o[key] !== undefined) issues.push({ path: [key], message: 'applies to --mode async only' });
    }
  }
  return issues;
}
