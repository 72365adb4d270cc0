/**
 * A node's data once loaded, the same way in Node.js (data.ts) and in a browser tab (web/node/): the
 * validation hold-out seeded by the node's name, the MNIST shard spec, a user's CSV text. BROWSER-SAFE.
 */
import { Rng } from '../core/rng.js';
import { parseCsv, type CsvOptions } from '../data/csv.js';
import { applyStandardize, standardizeStats, trainValidationSplit, type StandardizeStats } from '../data/split.js';
import type { FeatureStandardization } from '../net/node-protocol.js';
import { subset, type Dataset } from '../data/types.js';
import { partitionReport } from '../core/partition.js';
import type { LocalData } from './host.js';

export const DEFAULT_VALIDATION_FRACTION = 0.2;

/** Holds out a validation fraction of `train`, seeded by the node's name (so a node's split is stable). */
export function holdOutValidation(
  train: Dataset,
  name: string,
  validationFraction = DEFAULT_VALIDATION_FRACTION,
  partitionSeed = 0,
): LocalData {
  if (validationFraction <= 0) return { train, validation: subset(train, []) };
  return trainValidationSplit(train, validationFraction, new Rng(partitionSeed).fork(`split:${name}`));
}

export interface ShardSpec {
  index: number;
  count: number;
  /** A partition spec (core/partition.ts), e.g. iid or dirichlet:0.5. */
  partition: string;
}

/** 'I/N[:PARTITION]' (shard I of N, partition default iid); throws a one-line Error naming `what`. */
export function parseShardSpec(text: string, what: string): ShardSpec {
  const m = /^(\d{1,6})\/(\d{1,6})(?::(.+))?$/.exec(text);
  if (!m) throw new Error(`${what}: expected I/N[:PARTITION], got '${text}'`);
  const [index, count] = [Number(m[1]), Number(m[2])];
  if (!(count >= 1 && index < count)) throw new Error(`${what}: need 0 <= I < N, got '${text}'`);
  return { index, count, partition: m[3] ?? 'iid' };
}

/** A user's CSV file as a node's data: parsed (csv.ts), features standardized, validation held out. */
export function csvLocalData(text: string, fileName: string, name: string, opts: CsvOptions = {}): LocalData {
  return csvRowsData(parseCsv(text, fileName, opts), name);
}

/**
 * A node's raw CSV rows as its data: scaled with its own statistics, or with a run's (`scaledWith`, a
 * federated-standardised run) over the same rows, since the validation hold-out depends only on the name.
 */
export function csvRowsData(
  raw: Dataset,
  name: string,
  validationFraction = DEFAULT_VALIDATION_FRACTION,
  partitionSeed = 0,
): LocalData {
  const scaled = (stats: StandardizeStats): LocalData => ({
    ...holdOutValidation(applyStandardize(raw, stats), name, validationFraction, partitionSeed),
    raw,
    scaledWith,
  });
  const scaledWith = (stats: FeatureStandardization): LocalData => {
    const own = raw.columns ?? [];
    if (own.length !== stats.columns.length || own.some((c, j) => c !== stats.columns[j]))
      throw new Error(
        `the run scales the feature columns ${stats.columns.join(', ')}; this node's CSV ${raw.source} has ` +
          `${own.join(', ')}: give the node a file with the run's columns`,
      );
    return scaled(stats);
  };
  return scaled(standardizeStats(raw));
}

/** Examples per class in a dataset (what a node shares with --share-labels, for the dashboard). */
export function labelCounts(d: Dataset): number[] {
  return partitionReport([Int32Array.from({ length: d.n }, (_, i) => i)], d.y, d.numClasses).nodes[0].labelHistogram;
}
