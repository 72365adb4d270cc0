/** What a partitioner needs of a dataset: labels, and the feature or id column a feature/natural spec names. */
import { featureSize, type Dataset } from '../data/types.js';
import { derivedImageFeature, type parsePartitionSpec, type partition } from '../core/partition.js';

export function partitionInput(data: Dataset, spec: ReturnType<typeof parsePartitionSpec>) {
  const input = { labels: data.y, numClasses: data.numClasses } as Parameters<typeof partition>[1];
  if (spec.kind === 'feature') {
    const col = data.columns?.indexOf(spec.name) ?? -1;
    if (col >= 0) {
      const f = featureSize(data);
      input.feature = Float64Array.from({ length: data.n }, (_, i) => data.x[i * f + col]);
    } else if (data.extra?.[spec.name]) {
      input.feature = data.extra[spec.name].map(Number);
    } else {
      input.feature = derivedImageFeature(data.x, featureSize(data), spec.name);
    }
  }
  if (spec.kind === 'natural') {
    const ids = data.extra?.[spec.column];
    if (!ids)
      throw new Error(
        `--partition natural:${spec.column}: the dataset has no kept column '${spec.column}' (for CSV add keep=${spec.column})`,
      );
    input.ids = ids;
  }
  return input;
}
