/**
 * FedPer (Arivazhagan et al. 2019) and FedRep (Collins et al. 2021): a shared body and a personal head. Each
 * node trains from the global body and its own head, keeps the head (core/personal-head.ts: the last `head`
 * layers, by default the last Dense) and sends back its body with the head's slots set to the global's, so the
 * head never leaves the node; the server fuses as FedAvg. Nodes report their personalised accuracy in federated
 * evaluation. FedPer trains body and head together; FedRep trains the head alone for `head-epochs` epochs (body
 * frozen), then the body for the run's local epochs (head frozen). Both refuse secure aggregation and
 * compression (not checked with the head's slots yet) and FedBuff. Ditto (Li et al. 2021) uploads a plain FedAvg
 * update and also trains a personal model per node (lambda/2 ||v - x||^2 pulls it toward the global x), which
 * answers the personalised evaluation; it refuses the same combinations (not tested with them yet).
 */
import type { StrategyArgs } from './args.js';
import { defineStrategy, MEAN_DELTA } from './define.js';
import { meanDeltaFusion } from './fedavg.js';

const headLayersOf = (args: StrategyArgs) => {
  const text = args.take('head');
  return text === undefined ? 1 : args.whole('head', text, 1);
};

const capabilities = () => ({ ...MEAN_DELTA, secureAggregation: false, compression: false });

export const fedper = defineStrategy({
  name: 'fedper',
  syntax: 'fedper[:head=LAYERS]',
  summary: 'shared body, a personal head kept on each node (Arivazhagan et al. 2019)',
  keys: ['head'],
  parse: (args, common) => ({ ...common, localState: 'fedper' as const, headLayers: headLayersOf(args) }),
  capabilities,
  create: meanDeltaFusion,
});

export const fedrep = defineStrategy({
  name: 'fedrep',
  syntax: 'fedrep[:head=LAYERS,head-epochs=E]',
  summary: 'personal head trained first, then the shared body (Collins et al. 2021)',
  keys: ['head', 'head-epochs'],
  parse(args, common) {
    const headLayers = headLayersOf(args);
    const text = args.take('head-epochs');
    // The paper trains the head for several epochs per round; 5 keeps a round's cost within a few body epochs.
    const headEpochs = text === undefined ? 5 : args.whole('head-epochs', text, 1);
    return { ...common, localState: 'fedrep' as const, headLayers, headEpochs };
  },
  capabilities,
  create: meanDeltaFusion,
});

export const ditto = defineStrategy({
  name: 'ditto',
  syntax: 'ditto[:lambda=L]',
  summary: 'FedAvg plus a personal model per node pulled toward the global (Li et al. 2021)',
  keys: ['lambda'],
  parse(args, common) {
    const text = args.take('lambda');
    // The paper tunes lambda in {0.05, 0.1, 0.2, 0.5, 1, 2}; 0.1 is among its most used.
    const personalMu = text === undefined ? 0.1 : args.number('lambda', text, 0);
    return { ...common, localState: 'ditto' as const, personalMu };
  },
  capabilities,
  create: meanDeltaFusion,
});
