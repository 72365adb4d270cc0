/**
 * EngineTrainer for dense-only models whose every plain step (SGD, momentum or Adam, without FedProx, a gradient
 * shift or frozen ranges) runs on a DenseTeam when the batch size is at least TEAM_MIN_ROWS: the step split
 * tensor-parallel over k native threads (src/nn/dense-team.ts). Steps it cannot take that way (and evaluation,
 * prediction, gradient()) run on this thread as EngineTrainer runs them. A given k gives the same bits every run;
 * the results differ from one thread's by float rounding at most (bench/node-cores.ts and team-trainer.test.ts
 * compare them). NODE-ONLY.
 */
import { EngineTrainer } from './engine-trainer.js';
import { asDenseNet, type ModelSpec } from './spec.js';
import type { BatchResult, DenseNetSpec } from '../nn/dense.js';
import type { Kernels } from '../nn/kernels.js';
import type { OptimizerConfig } from '../nn/optimizer.js';
import type { Dataset } from '../data/types.js';
import type { TrainConfig, TrainOutcome, WeightRange } from './trainer.js';
import { DenseTeam, denseTeamUnsupportedReason } from '../nn/dense-team.js';

/** The dense network of `spec` when it is dense-only, else null. */
function denseOf(spec: ModelSpec | DenseNetSpec): DenseNetSpec | null {
  return 'inputShape' in spec ? asDenseNet(spec) : spec;
}

/** Why `spec` on `kernels` cannot train on a dense team, or null when it can. */
export function teamUnsupportedReason(spec: ModelSpec | DenseNetSpec, kernels: Kernels): string | null {
  if (kernels.name !== 'native-openblas') return `the dense team needs the native kernels, not '${kernels.name}'`;
  const dense = denseOf(spec);
  if (!dense) return 'the model is not dense-only (Flatten + Dense layers)';
  return denseTeamUnsupportedReason(dense);
}

/**
 * Training with smaller batches runs on this thread, as EngineTrainer runs it: the gemms are too small to pay for
 * the team's barriers. Measured on idle cores (2 threads against 1, one epoch): the 2NN at B=10 0.85x, the MLP at B=10
 * 0.96-1.03x; the MLP at B=32 1.2-1.4x. The rule depends only on the batch, so a given k still gives the same bits.
 */
export const TEAM_MIN_ROWS = 32;

export class TeamEngineTrainer extends EngineTrainer {
  private readonly team: DenseTeam;

  constructor(spec: ModelSpec | DenseNetSpec, kernels: Kernels, threads: number) {
    const reason = teamUnsupportedReason(spec, kernels);
    if (reason !== null)
      throw new Error(`cannot train ${'name' in spec ? spec.name : 'the model'} on a team: ${reason}`);
    super(spec, kernels);
    this.team = new DenseTeam(denseOf(spec)!, threads);
  }

  /** Whether the current train() call's steps go to the team (its batch size is at least TEAM_MIN_ROWS). */
  private onTeam = true;

  /**
   * EngineTrainer.train, with every step of the call on the team or every step on this thread, by the batch size: a
   * run must not mix them, since this thread's optimizer counts its own steps (Adam's bias correction).
   */
  override async train(
    global: Float32Array,
    data: Dataset,
    cfg: TrainConfig,
    shift?: Float32Array,
    frozen?: readonly WeightRange[],
  ): Promise<TrainOutcome> {
    this.onTeam = cfg.batchSize >= TEAM_MIN_ROWS;
    try {
      return await super.train(global, data, cfg, shift, frozen);
    } finally {
      this.onTeam = true;
    }
  }

  /** The team's thread count (this thread included). */
  get threads(): number {
    return this.team.threads;
  }

  /** DenseTeam.profile: CPU time per team thread (benchmarks). */
  profile(on: boolean): { stepSeconds: number; waitSeconds: number }[] {
    return this.team.profile(on);
  }

  protected override fusedStep(
    w: Float32Array,
    x: Float32Array,
    y: Int32Array | Float32Array,
    m: number,
    opt: OptimizerConfig,
    state: readonly Float32Array[],
    step: number,
    rows?: Int32Array,
  ): BatchResult | null {
    if (!this.onTeam) return super.fusedStep(w, x, y, m, opt, state, step);
    return this.team.step(w, x, y, m, opt, step, state, rows);
  }

  /** The team's threads gather the batch, each its part, so the batch never moves between cores. */
  protected override fusedStepGathers(): boolean {
    return this.onTeam;
  }

  override dispose(): void {
    this.team.close();
    super.dispose();
  }
}
