/** FedMedian (Yin et al. 2018): the coordinate-wise median of the deltas. */
import { coordinateMedian } from '../../core/robust.js';
import { robustStrategy } from './robust-step.js';

export const fedmedian = robustStrategy({
  name: 'fedmedian',
  syntax: 'fedmedian',
  summary: 'coordinate-wise median of the updates (Byzantine-robust)',
  fuse: (ds) => coordinateMedian(ds),
});
