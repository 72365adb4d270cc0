/**
 * FedSGD: nodes send their mean loss gradient (one step's worth), the server averages the gradients by
 * examples and takes an SGD (or, with `adam`, an Adam) step.
 */
import { weightedAverage } from '../../core/aggregate.js';
import { makeServerOptimizer } from '../../core/server-opt.js';
import { defineStrategy, PER_UPDATE } from './define.js';

export const fedsgd = defineStrategy({
  name: 'fedsgd',
  syntax: 'fedsgd[:adam][,lr=X]',
  summary: 'server SGD (or Adam) step on the mean gradient',
  serverOpt: 'sgd',
  parse(args, common) {
    const word = args.takeWord(['adam', 'sgd']);
    return word === undefined ? common : { ...common, serverOpt: word as 'adam' | 'sgd' };
  },
  capabilities: () => ({ ...PER_UPDATE, updateMode: 'gradient' }),
  create(params, restore) {
    const opt = makeServerOptimizer(params.serverOpt, params.hyper, restore?.state);
    return {
      aggregate: (global, results) =>
        opt.step(
          global,
          weightedAverage(
            results.map((r) => r.vector),
            results.map((r) => r.numExamples),
          ),
        ),
      state: () => opt.state(),
    };
  },
});
