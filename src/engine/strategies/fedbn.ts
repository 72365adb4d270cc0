/**
 * FedBN (Li et al. 2021, "FedBN: Federated Learning on Non-IID Features via Local Batch Normalization"): every
 * BatchNormalization layer (gamma, beta, moving mean and variance) stays on its node, the rest is averaged as
 * FedAvg. Each node trains from the global weights with its own normalisation layers (core/batchnorm-slots.ts
 * picks their slots), keeps them, and sends its model back with those slots set to the global's, so they never
 * leave the node; it reports its personalised accuracy in federated evaluation, as FedPer does. Models without
 * BatchNormalization are refused (run-rules.ts for the built-ins, the node for a model.json); secure
 * aggregation, compression and FedBuff are refused as for FedPer.
 */
import { defineStrategy, MEAN_DELTA } from './define.js';
import { meanDeltaFusion } from './fedavg.js';

export const fedbn = defineStrategy({
  name: 'fedbn',
  syntax: 'fedbn',
  summary: 'FedAvg with every BatchNormalization layer kept on its node (Li et al. 2021)',
  keys: [],
  parse: (_args, common) => ({ ...common, localState: 'fedbn' as const }),
  capabilities: () => ({ ...MEAN_DELTA, secureAggregation: false, compression: false, needsBatchNorm: true }),
  create: meanDeltaFusion,
});
