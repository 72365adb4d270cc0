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

/** One optimizer state array; `a` is read at every step, so its owner may re-take it (a wasm view after growth). */
export interface StateSlot {
  a: Float32Array;
}

/** How many state arrays of the weights' size an optimizer keeps (Adam: m and v; momentum: velocity). */
export function optimizerStateSlots(name: OptimizerName): number {
  return name === 'adam' ? 2 : name === 'momentum' ? 1 : 0;
}

export class FlatOptimizer {
  private readonly state: StateSlot[];
  private steps = 0;

  /**
   * `state`, when given, holds optimizerStateSlots(config.name) zero-filled arrays of `size` (e.g. inside
   * wasm memory, so the update kernel runs without copies); otherwise the optimizer allocates its own.
   */
  constructor(
    readonly config: OptimizerConfig,
    private readonly k: Kernels,
    size: number,
    state?: StateSlot[],
  ) {
    if (!(config.lr > 0) || !Number.isFinite(config.lr))
      throw new Error(`learning rate must be a positive number, got ${config.lr}`);
    const slots = optimizerStateSlots(config.name);
    if (state && (state.length !== slots || state.some((s) => s.a.length !== size))) {
      throw new Error(`optimizer ${config.name} needs ${slots} state arrays of ${size} values`);
    }
    this.state = state ?? Array.from({ length: slots }, () => ({ a: new Float32Array(size) }));
  }

  step(w: Float32Array, g: Float32Array): void {
    this.steps++;
    const c = this.config;
    if (c.name === 'adam') {
      const { beta1, beta2, epsilon } = adamSettings(c);
      this.k.adam(w, g, this.state[0].a, this.state[1].a, c.lr, beta1, beta2, epsilon, this.steps);
    } else {
      this.k.sgd(w, g, c.lr, momentumOf(c), c.name === 'momentum' ? this.state[0].a : null);
    }
  }
}

/** Adam's coefficients with the Keras defaults filled in. */
export function adamSettings(c: OptimizerConfig): { beta1: number; beta2: number; epsilon: number } {
  return { beta1: c.beta1 ?? 0.9, beta2: c.beta2 ?? 0.999, epsilon: c.epsilon ?? 1e-7 };
}

/** The momentum coefficient: 0 for plain SGD, else the configured one (Keras default 0.9). */
export function momentumOf(c: OptimizerConfig): number {
  return c.name === 'momentum' ? (c.momentum ?? 0.9) : 0;
}
