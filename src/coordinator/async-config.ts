/** A deployed run's FedBuff settings (mode 'async'): defaults and the rules between the fields. */
import { checkFedBuffOptions } from '../core/fedbuff.js';

interface AsyncFields {
  mode?: 'sync' | 'async';
  minNodes?: number;
  strategy?: string;
  overSelect?: number;
  evalFraction?: number;
  bufferSize?: number;
  concurrency?: number;
  serverLr?: number;
}

/** concurrency defaults to minNodes, K to min(10, concurrency), the server learning rate to 1. */
export function asyncSettings(c: AsyncFields): { concurrency: number; bufferSize: number; serverLr: number } {
  const concurrency = c.concurrency ?? c.minNodes ?? 1;
  return { concurrency, bufferSize: c.bufferSize ?? Math.min(10, concurrency), serverLr: c.serverLr ?? 1 };
}

export function asyncRunIssues(c: AsyncFields): { path: string[]; message: string }[] {
  if (c.mode !== 'async') {
    return (['bufferSize', 'concurrency', 'serverLr'] as const).filter((k) => c[k] !== undefined).map((k) => ({ path: [k], message: 'applies to mode "async" only' }));
  }
  const issues: { path: string[]; message: string }[] = [];
  try {
    checkFedBuffOptions(asyncSettings(c));
  } catch (e) {
    issues.push({ path: ['concurrency'], message: (e as Error).message });
  }
  if ((c.strategy ?? 'fedavg').trim().toLowerCase() !== 'fedavg') issues.push({ path: ['strategy'], message: `mode "async" fuses with FedBuff; the strategy must be fedavg, got '${c.strategy}'` });
  if (c.overSelect) issues.push({ path: ['overSelect'], message: 'applies to mode "sync" only' });
  if (c.evalFraction) issues.push({ path: ['evalFraction'], message: 'applies to mode "sync" only (FedBuff evaluates centrally after each fusion)' });
  return issues;
}
