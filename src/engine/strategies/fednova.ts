/**
 * FedNova (Wang et al. 2020): each node's delta normalised by its local steps before the weighted mean,
 * so nodes that ran more steps do not pull the model further (works with work sized to node speed).
 */
import { fedNova } from '../../core/aggregate.js';
import { makeServerOptimizer } from '../../core/server-opt.js';
import { defineStrategy, PER_UPDATE } from './define.js';

export const fednova = defineStrategy({
  name: 'fednova',
  syntax: 'fednova',
  summary: "deltas normalised by each node's local steps (Wang et al. 2020)",
  capabilities: () => ({ ...PER_UPDATE, sizedWork: true }),
  create(params, restore) {
    // No server step: the optimizer only carries the checkpoint's state through unchanged.
    const opt = makeServerOptimizer(params.serverOpt, params.hyper, restore?.state);
    return {
      aggregate: (global, results) =>
        fedNova(
          global,
          results.map((r) => r.vector),
          results.map((r) => r.numExamples),
          results.map((r) => r.steps),
        ),
      state: () => opt.state(),
    };
  },
});
