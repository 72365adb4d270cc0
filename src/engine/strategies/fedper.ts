/**
 * FedPer (Arivazhagan et al. 2019): a shared body and a personal head. Each node trains the whole model from
 * the global body and its own head, keeps the head (core/personal-head.ts: the last `head` layers, by default
 * the last Dense) and sends back its body with the head's slots set to the global's, so the head never leaves
 * the node; the server fuses as FedAvg. Nodes report their personalised accuracy in federated evaluation.
 * Refuses secure aggregation and compression (not checked with the head's slots yet) and FedBuff.
 */
import { defineStrategy, MEAN_DELTA } from './define.js';
import { meanDeltaFusion } from './fedavg.js';

export const fedper = defineStrategy({
  name: 'fedper', syntax: 'fedper[:head=LAYERS]', summary: 'shared body, a personal head kept on each node (Arivazhagan et al. 2019)',
  keys: ['head'],
  parse(args, common) {
    const text = args.take('head');
    const headLayers = text === undefined ? 1 : args.whole('head', text, 1);
    return { ...common, localState: 'fedper' as const, headLayers };
  },
  capabilities: () => ({ ...MEAN_DELTA, secureAggregation: false, compression: false }),
  create: meanDeltaFusion,
});
