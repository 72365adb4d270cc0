/** A dataset in memory: row-major features, one row per example, and labels. */
export interface Dataset {
  /** Human-readable origin, e.g. "mnist:train" or a file path; used in errors and reports. */
  source: string;
  /** Number of examples. */
  n: number;
  /** Shape of one example's features, e.g. [28, 28, 1] for MNIST or [F] for tabular data. */
  featureShape: number[];
  /** n * prod(featureShape) values, example-major. */
  x: Float32Array;
  /** Class indices (classification) or targets (regression), one per example. */
  y: Int32Array | Float32Array;
  /** Number of classes for classification; 0 for regression targets. */
  numClasses: number;
  /** Feature column names for tabular data (CSV), in order. */
  columns?: string[];
  /** Extra per-example columns kept aside from the features (e.g. a device id for natural partitioning). */
  extra?: Record<string, (string | number)[]>;
}

export interface TrainTestData {
  train: Dataset;
  test: Dataset;
}

/** Bytes of features per example. */
export function featureSize(d: Pick<Dataset, 'featureShape'>): number {
  return d.featureShape.reduce((a, b) => a * b, 1);
}

/** A new dataset holding the given rows of d, in the order given. */
export function subset(d: Dataset, rows: ArrayLike<number>, source = d.source): Dataset {
  const f = featureSize(d);
  const x = new Float32Array(rows.length * f);
  const y = d.y instanceof Int32Array ? new Int32Array(rows.length) : new Float32Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    x.set(d.x.subarray(r * f, (r + 1) * f), i * f);
    y[i] = d.y[r];
  }
  const extra = d.extra
    ? Object.fromEntries(Object.entries(d.extra).map(([k, v]) => [k, Array.from(rows, (r) => v[r])]))
    : undefined;
  return { ...d, source, n: rows.length, x, y, extra };
}
