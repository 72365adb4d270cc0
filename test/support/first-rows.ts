/** The first rows of a data set, the fixture most model tests train and evaluate on. */
import { type Dataset, subset } from '../../src/data/types.js';

export function firstRows(data: Dataset, count: number, source: string): Dataset {
  return subset(
    data,
    Array.from({ length: count }, (_, i) => i),
    source,
  );
}
