/** Bulyan (El Mhamdi et al. 2018): Krum selection, then a trimmed mean of the selected; needs n >= 4f + 3. */
import { bulyan as bulyanRule } from '../../core/robust.js';
import type { CommonParams } from './define.js';
import { readF, robustStrategy } from './robust-step.js';

export const bulyan = robustStrategy<CommonParams & { f: number }>({
  name: 'bulyan',
  syntax: 'bulyan:f=K',
  example: 'bulyan:f=1',
  keys: ['f'],
  summary: 'Krum selection, then a trimmed mean (Byzantine-robust)',
  parse: (args, common) => ({ ...common, f: readF(args) }),
  minUpdates: (p) => 4 * p.f + 3,
  fuse: (ds, p) => bulyanRule(ds, p.f),
});
