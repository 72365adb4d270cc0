/**
 * The data an edge node trains on, named on its command line: `mnist-partition:I/N[:SPEC]` (shard I of
 * MNIST's training set split N ways by a partition SPEC, default iid, seed 0: a stand-in for a device's
 * own data), `idx:DIR` or `csv:FILE` (its training split). 20% is held out, seeded by the node's name.
 */
import { loadDatasetSpec } from '../data/load.js';
import { loadMnist } from '../data/mnist.js';
import { subset } from '../data/types.js';
import { trainValidationSplit } from '../data/split.js';
import { parsePartitionSpec, partition, partitionReport } from '../core/partition.js';
import type { Dataset } from '../data/types.js';
import { Rng } from '../core/rng.js';
import type { LocalData } from './host.js';

export function loadNodeData(spec: string, name: string, validationFraction = 0.2, partitionSeed = 0): LocalData {
  const m = /^mnist-partition:(\d+)\/(\d+)(?::(.+))?$/.exec(spec);
  let train;
  if (m) {
    const [i, n] = [Number(m[1]), Number(m[2])];
    if (!(n >= 1 && i < n)) throw new Error(`--data ${spec}: need 0 <= I < N`);
    const all = loadMnist().train;
    const parts = partition(parsePartitionSpec(m[3] ?? 'iid'), { labels: all.y, numClasses: all.numClasses }, n, new Rng(partitionSeed).fork('partition'));
    train = subset(all, parts[i], `mnist:train#${i}/${n}`);
  } else if (spec.startsWith('idx:') || spec.startsWith('csv:') || spec === 'mnist') {
    train = loadDatasetSpec(spec).train;
  } else {
    throw new Error(`--data: expected mnist-partition:I/N, idx:DIR or csv:FILE, got '${spec}'`);
  }
  if (validationFraction <= 0) return { train, validation: subset(train, []) };
  return trainValidationSplit(train, validationFraction, new Rng(partitionSeed).fork(`split:${name}`));
}

/** Examples per class in a dataset (what a node shares with --share-labels, for the dashboard). */
export function labelCounts(d: Dataset): number[] {
  return partitionReport([Int32Array.from({ length: d.n }, (_, i) => i)], d.y, d.numClasses).nodes[0].labelHistogram;
}
