/**
 * A fusion strategy defined outside src/, through the public strategy API only: the unweighted mean of the
 * nodes' deltas, scaled by a server step eta (typed with zod). It logs every fusion so tests can see the
 * engine really ran it and what it returned.
 */
import { z } from 'zod';
import { defineStrategy, PER_UPDATE, type CommonParams } from '../../src/engine/strategies/index.js';

export interface FusionLog {
  round: number;
  nodeIds: number[];
  eta: number;
  /** The global model the fusion returned. */
  result: Float32Array;
}

export const scaledMeanLog: FusionLog[] = [];

export const scaledMean = defineStrategy<CommonParams & { eta: number }>({
  name: 'scaledmean',
  syntax: 'scaledmean[:eta=1]',
  summary: 'unweighted mean delta scaled by eta (a test strategy defined outside src/)',
  params: z.object({ eta: z.number().gt(0).lte(10).default(1) }),
  // The unweighted mean needs every single update, so secure aggregation cannot serve it.
  capabilities: () => PER_UPDATE,
  create: (p) => ({
    aggregate(global, results, context) {
      const out = new Float32Array(global);
      for (let i = 0; i < global.length; i++) {
        let sum = 0;
        for (const r of results) sum += r.vector[i] - global[i];
        out[i] = global[i] + (p.eta * sum) / results.length;
      }
      scaledMeanLog.push({
        round: context?.round ?? -1,
        nodeIds: results.map((r) => r.nodeId),
        eta: p.eta,
        result: out,
      });
      return out;
    },
  }),
});
