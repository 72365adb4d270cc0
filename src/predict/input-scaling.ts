/**
 * Raw feature rows in, scaled as the model was trained: the one place a prediction's input is standardised,
 * shared by node serving, the coordinator's POST /v1/predict and `edgefed predict --input csv:` so the three
 * answer alike on the same raw rows. Also what a response says about it (`scaling`).
 */
import { applyStandardize, type StandardizeStats } from '../data/split.js';
import { PredictError } from './request.js';

/** CSV feature columns and the statistics that scale them: (x - mean) / std per column (std 0: only centred). */
export interface InputScaling {
  columns: string[];
  stats: StandardizeStats;
}

/**
 * Whose statistics scaled the input: the federation's (carried by a federated-standardised run's model version),
 * the serving node's own training split's, or none (the features go in as the model takes them).
 */
export type ScalingSource = 'federated' | 'node' | 'none';

export const SCALING_WORDS: Readonly<Record<ScalingSource, string>> = {
  federated: "raw values, standardized with the federation's statistics the model version carries",
  node: "raw values, standardized with the node's training statistics",
  none: 'none: features as the model takes them',
};

/** The `scaling` field of a prediction's response: whose statistics, and the values used. */
export interface ScalingReport {
  statistics: ScalingSource;
  columns?: string[];
  mean?: number[];
  std?: number[];
}

export function scalingReport(statistics: ScalingSource, scaling: InputScaling | undefined): ScalingReport {
  return {
    statistics,
    ...(scaling ? { columns: scaling.columns, mean: scaling.stats.mean, std: scaling.stats.std } : {}),
  };
}

/**
 * `n` raw rows of `featureSize` float32 values scaled with `scaling` (a new array; none: `x` itself). A scaling
 * whose columns do not match the model's input is a PredictError ('scaling_mismatch'), nothing is scaled.
 */
export function scaleRows(x: Float32Array, n: number, featureSize: number, scaling?: InputScaling): Float32Array {
  if (!scaling) return x;
  const cols = scaling.columns.length;
  if (cols !== featureSize || scaling.stats.mean.length !== cols || scaling.stats.std.length !== cols)
    throw new PredictError(
      'scaling_mismatch',
      `the input scaling has ${cols} feature columns (${scaling.stats.mean.length} means, ` +
        `${scaling.stats.std.length} stds), the model takes ${featureSize}`,
    );
  if (x.length !== n * featureSize)
    throw new PredictError('bad_shape', `${x.length} values are not ${n} rows of ${featureSize} features`);
  const rows = { source: 'request', n, featureShape: [featureSize], x, y: new Float32Array(0), numClasses: 0 };
  return applyStandardize(rows, scaling.stats).x;
}
