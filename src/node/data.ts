/**
 * The data an edge node trains on, named on its command line: `mnist-partition:I/N[:SPEC]` (shard I of
 * MNIST's training set split N ways by a partition SPEC, default iid, seed 0: a stand-in for a device's
 * own data), `idx:DIR` or `csv:FILE` (its training split). 20% is held out, seeded by the node's name.
 */
import { loadDatasetSpec } from '../data/load.js';
import { loadMnist } from '../data/mnist.js';
import { subset, type Dataset } from '../data/types.js';
import { parsePartitionSpec, partition } from '../core/partition.js';
import { Rng } from '../core/rng.js';
import type { LocalData } from './host.js';
import { csvRowsData, holdOutValidation, type ShardSpec } from './local-data.js';

export { labelCounts } from './local-data.js';

/** Shard I of MNIST's training set split N ways (what `mnist-partition:I/N` trains on, and the browser node fetches). */
export function mnistShard(shard: ShardSpec, partitionSeed = 0): Dataset {
  const all = loadMnist().train;
  const parts = partition(
    parsePartitionSpec(shard.partition),
    { labels: all.y, numClasses: all.numClasses },
    shard.count,
    new Rng(partitionSeed).fork('partition'),
  );
  return subset(all, parts[shard.index], `mnist:train#${shard.index}/${shard.count}`);
}

export function loadNodeData(spec: string, name: string, validationFraction = 0.2, partitionSeed = 0): LocalData {
  const m = /^mnist-partition:(\d+)\/(\d+)(?::(.+))?$/.exec(spec);
  let train;
  if (m) {
    const [i, n] = [Number(m[1]), Number(m[2])];
    if (!(n >= 1 && i < n)) throw new Error(`--data ${spec}: need 0 <= I < N`);
    train = mnistShard({ index: i, count: n, partition: m[3] ?? 'iid' }, partitionSeed);
  } else if (spec.startsWith('csv:')) {
    // Raw rows kept for analytics and a run's own statistics; by default scaled with this node's.
    const loaded = loadDatasetSpec(spec, { standardize: false });
    if (loaded.standardization)
      train = loaded.train; // windows: the loader scaled them already
    else return csvRowsData(loaded.train, name, validationFraction, partitionSeed);
  } else if (spec.startsWith('idx:') || spec === 'mnist' || spec === 'fashion-mnist') {
    train = loadDatasetSpec(spec).train;
  } else {
    throw new Error(`--data: expected mnist-partition:I/N, mnist, fashion-mnist, idx:DIR or csv:FILE, got '${spec}'`);
  }
  return holdOutValidation(train, name, validationFraction, partitionSeed);
}
