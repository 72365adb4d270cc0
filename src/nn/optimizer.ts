/** Local optimizers over flat buffers; state lives beside the weights so one kernel call steps the whole model. */
import type { Kernels } from './kernels.js';

export type OptimizerName = 'sgd' | 'adam' | 'momentum';

export interface OptimizerConfig {
  name: OptimizerName;
  lr: number;
  /** Momentum coefficient for 'momentum' (default 0.9). */
  momentum?: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
}

/** Keras defaults, so a model trained here and one trained by tfjs from the same config match. */
export const DEFAULT_LR: Record<OptimizerName, number> = { sgd: 0.01, momentum: 0.01, adam: 0.001 };

export class FlatOptimizer {
  private m: Float32Array | null = null;
  private v: Float32Array | null = null;
  private steps = 0;

  constructor(readonly config: OptimizerConfig, private readonly k: Kernels, size: number) {
    if (!(config.lr > 0) || !Number.isFinite(config.lr)) throw new Error(`learning rate must be a positive number, got ${config.lr}`);
    if (config.name === 'adam') {
      this.m = new Float32Array(size);
      this.v = new Float32Array(size);
    } else if (config.name === 'momentum') {
      this.m = new Float32Array(size);
    }
  }

  step(w: Float32Array, g: Float32Array): void {
    this.steps++;
    const c = this.config;
    if (c.name === 'adam') {
      this.k.adam(w, g, this.m!, this.v!, c.lr, c.beta1 ?? 0.9, c.beta2 ?? 0.999, c.epsilon ?? 1e-7, this.steps);
    } else {
      this.k.sgd(w, g, c.lr, c.name === 'momentum' ? (c.momentum ?? 0.9) : 0, this.m);
    }
  }
}
