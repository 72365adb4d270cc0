/**
 * DenseNet's training step (forward, loss, backward and the optimizer update) split over a persistent team of
 * native threads, tensor parallel: each thread takes its slice of every layer's columns or rows (native/dense-team.cc
 * says how), so nothing is summed across threads and a given thread count gives the same bits every run. Plain SGD
 * is folded into the weight-gradient gemm as DenseNet.sgdStep does; momentum and Adam step each thread's own weights
 * with FlatOptimizer's formulas. The team's threads sleep between steps once a short spin ends; close() joins them
 * (and they end with the process or worker thread anyway). NODE-ONLY: it needs the native addon.
 */
import { nativeDenseTeam, type DenseTeamAddon } from './kernels-native.js';
import { denseTensorSpecs, denseUnsupportedReason, type BatchResult, type DenseNetSpec } from './dense.js';
import { adamSettings, momentumOf, optimizerStateSlots, type OptimizerConfig } from './optimizer.js';

const ACTIVATION_CODES = { linear: 'l', relu: 'r', sigmoid: 's', tanh: 't', softmax: 'x' } as const;

/** Why `spec` cannot train on a dense team here, or null when it can. */
export function denseTeamUnsupportedReason(spec: DenseNetSpec): string | null {
  const reason = denseUnsupportedReason(spec);
  if (reason !== null) return reason;
  if (!nativeDenseTeam()) return 'the native kernels (with the dense team) are not loaded';
  return null;
}

export class DenseTeam {
  readonly numParams: number;
  private readonly addon: DenseTeamAddon;
  private readonly team: object;
  private closed = false;

  constructor(
    readonly spec: DenseNetSpec,
    readonly threads: number,
  ) {
    if (!(Number.isInteger(threads) && threads >= 1 && threads <= 256))
      throw new RangeError(`dense team threads must be a whole number from 1 to 256, got ${String(threads)}`);
    const reason = denseTeamUnsupportedReason(spec);
    if (reason !== null) throw new Error(`dense team cannot train this model: ${reason}`);
    this.addon = nativeDenseTeam()!;
    this.numParams = denseTensorSpecs(spec).reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    this.team = this.addon.denseTeam(
      threads,
      spec.inputSize,
      Int32Array.from(spec.layers, (l) => l.units),
      spec.layers.map((l) => ACTIVATION_CODES[l.activation]).join(''),
      spec.loss === 'mse' ? 'mse' : 'xent',
    );
  }

  /**
   * One optimizer step over a batch of m examples: w is updated in place, `state` holds the optimizer's
   * optimizerStateSlots arrays (zero at the run's start), `step` counts this run's steps from 1 (Adam's bias
   * correction). Returns the batch's summed loss and correct count. Checks everything before it writes anything.
   * With `rows` (m row indices), x is a whole data set and the batch is those rows of it, which the team's threads
   * gather, each the part it reads: the batch then never moves between cores.
   */
  step(
    w: Float32Array,
    x: Float32Array,
    y: Int32Array | Float32Array,
    m: number,
    opt: OptimizerConfig,
    step: number,
    state: readonly Float32Array[],
    rows?: Int32Array,
  ): BatchResult {
    if (state.length !== optimizerStateSlots(opt.name))
      throw new Error(`optimizer ${opt.name} needs ${optimizerStateSlots(opt.name)} state arrays, got ${state.length}`);
    const { beta1, beta2, epsilon } = adamSettings(opt);
    const a = opt.name === 'adam' ? beta1 : momentumOf(opt);
    return this.addon.denseTeamStep(
      this.team,
      w,
      x,
      y,
      m,
      opt.name,
      opt.lr,
      a,
      beta2,
      epsilon,
      step,
      state[0] ?? null,
      state[1] ?? null,
      rows ?? null,
    );
  }

  /**
   * Starts (clearing the counts) or stops counting each thread's CPU time, and returns the counts so far: per thread
   * (this one first) the CPU seconds inside steps and the part of them spent waiting at barriers. For benchmarks.
   */
  profile(on: boolean): { stepSeconds: number; waitSeconds: number }[] {
    const c = this.addon.denseTeamProfile(this.team, on);
    return Array.from({ length: c.length / 2 }, (_, i) => ({
      stepSeconds: c[2 * i] / 1e9,
      waitSeconds: c[2 * i + 1] / 1e9,
    }));
  }

  /** Stops and joins the team's threads; later steps throw. Closing twice is fine. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.addon.denseTeamClose(this.team);
  }
}
