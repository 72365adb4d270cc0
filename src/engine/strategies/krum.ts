/**
 * Krum and Multi-Krum (Blanchard et al. 2017): the update (or the mean of the m updates) closest to its
 * n - f - 2 nearest neighbours. Both need n >= 2f + 3 updates in a round.
 */
import { krum as krumRule, multiKrum } from '../../core/robust.js';
import type { CommonParams } from './define.js';
import { readF, robustStrategy } from './robust-step.js';

export const krum = robustStrategy<CommonParams & { f: number }>({
  name: 'krum',
  syntax: 'krum:f=K',
  example: 'krum:f=1',
  keys: ['f'],
  summary: 'the update nearest its neighbours, tolerating f Byzantine nodes',
  parse: (args, common) => ({ ...common, f: readF(args) }),
  minUpdates: (p) => 2 * p.f + 3,
  fuse: (ds, p) => krumRule(ds, p.f),
});

export const multikrum = robustStrategy<CommonParams & { f: number; m?: number }>({
  name: 'multikrum',
  syntax: 'multikrum:f=K[,m=M]',
  example: 'multikrum:f=1',
  keys: ['f', 'm'],
  summary: 'mean of the m best-scored updates by Krum (default n - f)',
  parse(args, common) {
    const m = args.take('m');
    const f = readF(args);
    return m === undefined ? { ...common, f } : { ...common, f, m: args.whole('m', m, 1) };
  },
  minUpdates: (p) => Math.max(2 * p.f + 3, p.m ?? 1),
  fuse: (ds, p) => multiKrum(ds, p.f, p.m),
});
