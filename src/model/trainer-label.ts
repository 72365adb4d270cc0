/**
 * A trainer described for reports and registries: its kind, kernels and, on native kernels, the OpenBLAS
 * core (the figure that explains a 3x speed difference between two machines). NODE-ONLY.
 */
import type { LocalTrainer } from './trainer.js';
import { nativeKernelsInfo } from '../nn/kernels-native.js';

export function trainerLabel(trainer: LocalTrainer): string {
  const kernels = (trainer as { kernelsName?: unknown }).kernelsName;
  if (typeof kernels !== 'string') return trainer.kind;
  if (!kernels.startsWith('native')) return `${trainer.kind}/${kernels}`;
  return `${trainer.kind}/${kernels}/${nativeKernelsInfo()?.selection.core ?? 'unknown core'}`;
}
