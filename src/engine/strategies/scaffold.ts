/**
 * SCAFFOLD (Karimireddy et al. 2020) with option II control variates: each node's local gradients are
 * corrected by c - c_i, its control c_i follows its drift, and it uploads the control delta beside its model
 * (twice the upload of FedAvg). The model step is FedAvg's (example-weighted mean delta through the server
 * optimizer, `eta=` the global step size); the control is c += sum(dc_i) / N over all N nodes.
 * Refuses: secure aggregation (the control deltas would need a second masked sum), compression (the control
 * delta travels as float32), FedBuff (the control assumes synchronous rounds), work sized to speed.
 */
import { averageDelta } from '../../core/aggregate.js';
import { scaffoldServerControl } from '../../core/control-variates.js';
import { makeServerOptimizer } from '../../core/server-opt.js';
import { defineStrategy, PER_UPDATE } from './define.js';
import { vectorFromBase64, vectorToBase64 } from './vector-state.js';

export const scaffold = defineStrategy({
  name: 'scaffold',
  syntax: 'scaffold',
  summary: "control variates correct each node's drift (Karimireddy et al. 2020)",
  parse: (_args, common) => ({ ...common, localState: 'scaffold' as const }),
  capabilities: () => ({ ...PER_UPDATE, compression: false }),
  create(p, restore) {
    const opt = makeServerOptimizer(p.serverOpt, p.hyper, restore?.state);
    const saved = restore?.extra?.scaffoldControl;
    let control: Float32Array | undefined;
    const controlOf = (size: number): Float32Array => {
      control ??=
        saved === undefined ? new Float32Array(size) : vectorFromBase64(saved, size, 'SCAFFOLD server control');
      return control;
    };
    return {
      control: controlOf,
      aggregate(global, results, context) {
        const missing = results.filter((r) => !r.controlDelta).map((r) => r.nodeId);
        if (missing.length > 0) throw new Error(`SCAFFOLD: node(s) ${missing.join(', ')} sent no control delta`);
        const population = context?.population ?? results.length;
        control = scaffoldServerControl(
          controlOf(global.length),
          results.map((r) => r.controlDelta!),
          Math.max(population, results.length),
        );
        return opt.step(
          global,
          averageDelta(
            global,
            results.map((r) => r.vector),
            results.map((r) => r.numExamples),
          ),
        );
      },
      state: () => opt.state(),
      extraState: () =>
        control ? { scaffoldControl: vectorToBase64(control) } : saved === undefined ? {} : { scaffoldControl: saved },
    };
  },
});
