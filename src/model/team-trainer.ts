/**
 * EngineTrainer for dense-only models whose every plain step (SGD, momentum or Adam, without FedProx, a gradient
 * shift or frozen ranges) runs on a DenseTeam: the step split tensor-parallel over k native threads
 * (src/nn/dense-team.ts). Steps it cannot take that way (and evaluation, prediction, gradient()) run on this thread
 * as EngineTrainer runs them. A given k gives the same bits every run; the results differ from one thread's by
 * float rounding at most (bench/node-cores.ts and team-trainer.test.ts compare them). NODE-ONLY.
 */
import { EngineTrainer } from './engine-trainer.js';
import { asDenseNet, type ModelSpec } from './spec.js';
import type { BatchResult, DenseNetSpec } from '../nn/dense.js';
import type { Kernels } from '../nn/kernels.js';
import type { OptimizerConfig } from '../nn/optimizer.js';
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

export class TeamEngineTrainer extends EngineTrainer {
  private readonly team: DenseTeam;

  constructor(spec: ModelSpec | DenseNetSpec, kernels: Kernels, threads: number) {
    const reason = teamUnsupportedReason(spec, kernels);
    if (reason !== null)
      throw new Error(`cannot train ${'name' in spec ? spec.name : 'the model'} on a team: ${reason}`);
    super(spec, kernels);
    this.team = new DenseTeam(denseOf(spec)!, threads);
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
  ): BatchResult {
    return this.team.step(w, x, y, m, opt, step, state);
  }

  override dispose(): void {
    this.team.close();
    super.dispose();
  }
}
