/** FedTrimmedAvg (Yin et al. 2018): per coordinate, the mean after dropping the beta fraction at each end. */
import { trimmedMean } from '../../core/robust.js';
import type { CommonParams } from './define.js';
import { robustStrategy } from './robust-step.js';

/** FedTrimmedAvg's default fraction trimmed from each side (Flower's default). */
export const DEFAULT_TRIM_BETA = 0.2;

export const fedtrimmedavg = robustStrategy<CommonParams & { beta: number }>({
  name: 'fedtrimmedavg',
  syntax: 'fedtrimmedavg[:beta=0.2]',
  keys: ['beta'],
  summary: 'coordinate-wise mean without the beta fraction at each end (Byzantine-robust)',
  parse(args, common) {
    const text = args.take('beta');
    const beta = text === undefined ? DEFAULT_TRIM_BETA : args.number('beta', text, 0);
    if (!(beta < 0.5)) args.fail(`beta (fraction trimmed from each side) must be in [0, 0.5), got '${text}'`);
    return { ...common, beta };
  },
  fuse: (ds, p) => trimmedMean(ds, p.beta),
});
