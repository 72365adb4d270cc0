/** Nodes with skewed data and a one-line engine for the tests of strategies with node state (SCAFFOLD, FedDyn). */
import { createHash } from 'node:crypto';
import { RoundEngine } from '../../src/engine/round-engine.js';
import { Strategy, parseStrategy } from '../../src/engine/strategy.js';
import type { LocalData } from '../../src/node/host.js';
import type { Dataset } from '../../src/data/types.js';
import { blobs, toyFederation, toyLayout } from './toy-federation.js';

export const LR = 0.1;
export const sgd = { name: 'sgd' as const, lr: LR };

/** Nodes whose data differ in size and label balance (drift for the control variates to correct). */
export function skewedNodes(sizes: readonly number[]): Map<number, LocalData> {
  return new Map(
    sizes.map((n, i) => {
      const d = blobs(n * 3, 10 + i);
      const keep: number[] = [];
      for (let r = 0; r < d.n && keep.length < n; r++) if (d.y[r] === i % 2 || r % 4 === 0) keep.push(r);
      const x = new Float32Array(keep.length * 4);
      const y = new Int32Array(keep.length);
      keep.forEach((r, k) => {
        x.set(d.x.subarray(r * 4, r * 4 + 4), k * 4);
        y[k] = d.y[r];
      });
      const train: Dataset = { ...d, n: keep.length, x, y };
      return [i, { train, validation: blobs(20, 200 + i) }];
    }),
  );
}

export function engine(
  nodes: Map<number, LocalData>,
  strategy: string,
  o: { rounds: number; batchSize: number; epochs: number; seed?: number },
) {
  const { transport, initial } = toyFederation(nodes, [...nodes.keys()]);
  return new RoundEngine({
    layout: toyLayout,
    strategy: new Strategy(parseStrategy(strategy)),
    transport,
    initial,
    seed: o.seed ?? 5,
    rounds: o.rounds,
    fraction: 1,
    minNodes: 1,
    evalFraction: 0,
    local: { epochs: o.epochs, batchSize: o.batchSize, optimizer: sgd },
  });
}

export const sha = (w: Float32Array) =>
  createHash('sha256')
    .update(Buffer.from(w.buffer, w.byteOffset, w.byteLength))
    .digest('hex');
