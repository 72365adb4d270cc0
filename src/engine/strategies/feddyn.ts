/**
 * FedDyn (Acar et al. 2021, "Federated Learning Based on Dynamic Regularization"): each node minimises
 * L_i(w) - <g_i, w> + alpha/2 ||w - x||^2 and keeps g_i between rounds; the server keeps h and moves to the
 * uniform mean of the local models minus h / alpha (core/control-variates.ts). The proximal term travels as
 * FedProx's mu (= alpha). Refuses secure aggregation (the step needs the uniform mean, not the example-weighted
 * one), compression (g_i follows the exact local model), FedBuff and work sized to speed.
 */
import { feddynServerStep } from '../../core/control-variates.js';
import { makeServerOptimizer } from '../../core/server-opt.js';
import { defineStrategy, PER_UPDATE } from './define.js';
import { vectorFromBase64, vectorToBase64 } from './vector-state.js';

/** The paper's choice for its vision benchmarks (alpha in {0.1, 0.01, 0.001}). */
export const DEFAULT_FEDDYN_ALPHA = 0.01;

export const feddyn = defineStrategy({
  name: 'feddyn',
  syntax: 'feddyn[:alpha=A]',
  summary: 'dynamic regularisation with node state (Acar et al. 2021)',
  keys: ['alpha'],
  parse(args, common) {
    const bare = args.takeBare();
    const named = args.take('alpha');
    const text = named ?? bare;
    const alpha = text === undefined ? DEFAULT_FEDDYN_ALPHA : args.number('alpha', text, 0);
    if (!(alpha > 0)) args.fail('feddyn needs alpha > 0, e.g. feddyn:alpha=0.01');
    return { ...common, proxMu: alpha, localState: 'feddyn' as const };
  },
  capabilities: () => ({ ...PER_UPDATE, compression: false }),
  create(p, restore) {
    // FedDyn takes its own server step: the optimizer only carries the checkpoint's state through.
    const opt = makeServerOptimizer(p.serverOpt, p.hyper, restore?.state);
    const saved = restore?.extra?.feddynH;
    let h: Float32Array | undefined;
    return {
      aggregate(global, results, context) {
        h ??=
          saved === undefined
            ? new Float32Array(global.length)
            : vectorFromBase64(saved, global.length, 'FedDyn server state h');
        const population = Math.max(context?.population ?? results.length, results.length);
        const step = feddynServerStep(
          global,
          h,
          results.map((r) => r.vector),
          p.proxMu,
          population,
        );
        h = step.h;
        return step.model;
      },
      state: () => opt.state(),
      extraState: () => (h ? { feddynH: vectorToBase64(h) } : saved === undefined ? {} : { feddynH: saved }),
    };
  },
});
