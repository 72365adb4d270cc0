/**
 * The FedAvg family: the example-weighted mean delta, applied by a server optimizer (Reddi et al. 2021):
 * fedavg, fedavgm, fedadam, fedyogi, fedadagrad; fedprox adds a proximal term mu to local training.
 * `clip=NORM` clips each delta to that L2 norm before the mean (then single updates are needed).
 */
import { averageDelta, deltas, weightedAverage } from '../../core/aggregate.js';
import { clipUpdates } from '../../core/robust.js';
import { makeServerOptimizer, type ServerOptName } from '../../core/server-opt.js';
import {
  defineStrategy,
  MEAN_DELTA,
  type CommonParams,
  type Fusion,
  type Restore,
  type StrategyDefinition,
} from './define.js';

/** The FedAvg-family fusion with the params' server optimizer (also the step other strategies wrap). */
export function meanDeltaFusion(params: CommonParams, restore?: Restore): Fusion {
  const opt = makeServerOptimizer(params.serverOpt, params.hyper, restore?.state);
  return {
    aggregate(global, results) {
      const vectors = results.map((r) => r.vector);
      const weights = results.map((r) => r.numExamples);
      if (params.clip === undefined) return opt.step(global, averageDelta(global, vectors, weights));
      return opt.step(global, weightedAverage(clipUpdates(deltas(global, vectors), params.clip), weights));
    },
    applyMeanDelta: (global, meanDelta) => opt.step(global, meanDelta),
    state: () => opt.state(),
    fusesMeanDelta: params.clip === undefined,
  };
}

function member(name: string, serverOpt: ServerOptName, summary: string): StrategyDefinition {
  return defineStrategy({
    name,
    serverOpt,
    syntax: name,
    summary,
    clip: true,
    capabilities: (params) => ({
      ...MEAN_DELTA,
      needsIndividualUpdates: params.clip !== undefined,
      secureAggregation: params.clip === undefined,
      // FedBuff brings its own server step, so only plain FedAvg (no hyper-parameters, no clip) fits it.
      async: name === 'fedavg' && params.clip === undefined && Object.keys(params.hyper).length === 0,
    }),
    create: meanDeltaFusion,
  });
}

export const fedavg = member('fedavg', 'fedavg', 'example-weighted mean of the updates (McMahan et al. 2017)');
export const fedavgm = member('fedavgm', 'fedavgm', 'FedAvg with server momentum (eta, beta)');
export const fedadam = member('fedadam', 'fedadam', 'FedAvg with an Adam server step (eta, beta1, beta2, tau)');
export const fedyogi = member('fedyogi', 'fedyogi', 'FedAvg with a Yogi server step (eta, beta1, beta2, tau)');
export const fedadagrad = member('fedadagrad', 'fedadagrad', 'FedAvg with an Adagrad server step (eta, beta1, tau)');

export const fedprox = defineStrategy({
  name: 'fedprox',
  syntax: 'fedprox:MU',
  example: 'fedprox:0.01',
  summary: 'FedAvg with a proximal term mu in local training (Li et al. 2020)',
  clip: true,
  keys: ['mu'],
  parse(args, common) {
    // A bare number is mu (`fedprox:0.01`).
    const bare = args.takeBare();
    const named = args.take('mu');
    let proxMu = bare === undefined ? 0 : args.number('mu', bare, 0);
    if (named !== undefined) proxMu = args.number('mu', named, 0);
    if (!(proxMu > 0)) args.fail('fedprox needs mu > 0, e.g. fedprox:0.01');
    return { ...common, proxMu };
  },
  capabilities: (p) => ({
    ...MEAN_DELTA,
    needsIndividualUpdates: p.clip !== undefined,
    secureAggregation: p.clip === undefined,
    sizedWork: true,
  }),
  create: meanDeltaFusion,
});
