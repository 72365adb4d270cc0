/**
 * Post-training quantisation of a float model on sample data (the node's own, or a dataset named on the
 * command line): picks the calibration samples, checks they fit the model and builds the int8 network.
 */
import { int8UnsupportedReason, quantizeNet, type Int8Net } from '../core/int8-net.js';
import type { Dataset } from '../data/types.js';
import type { ModelSpec } from './spec.js';

/** Calibration samples used when none is named: enough for stable min/max ranges, cheap on a small device. */
export const DEFAULT_CALIBRATION_SAMPLES = 1000;

/** Up to `limit` rows spread evenly over the dataset (a CSV's rows are often grouped by site or by time). */
export function calibrationRows(n: number, limit: number): number[] {
  const k = Math.min(n, limit);
  return Array.from({ length: k }, (_, i) => Math.floor((i * n) / k));
}

/** Why this model cannot be quantised with this data, or null (the error names what to change). */
export function quantizeInputProblem(
  spec: ModelSpec,
  data: Pick<Dataset, 'n' | 'featureShape' | 'source'>,
): string | null {
  const reason = int8UnsupportedReason(spec.inputShape, spec.layers);
  if (reason) return `the model cannot be quantised: ${reason}`;
  if (data.n === 0) return `${data.source}: the calibration set is empty (int8 activation ranges need samples)`;
  const want = spec.inputShape.reduce((a, b) => a * b, 1);
  const have = data.featureShape.reduce((a, b) => a * b, 1);
  if (want !== have)
    return (
      `${data.source}: samples have shape [${data.featureShape.join(', ')}] (${have} values), the model takes ` +
      `[${spec.inputShape.join(', ')}] (${want}); calibrate on the data the model was trained on`
    );
  return null;
}

export function quantizeModel(
  spec: ModelSpec,
  weights: Float32Array,
  data: Dataset,
  limit = DEFAULT_CALIBRATION_SAMPLES,
): { net: Int8Net; samples: number } {
  const problem = quantizeInputProblem(spec, data);
  if (problem) throw new Error(problem);
  const rows = calibrationRows(data.n, limit);
  const size = spec.inputShape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(rows.length * size);
  rows.forEach((r, i) => x.set(data.x.subarray(r * size, (r + 1) * size), i * size));
  const net = quantizeNet({
    inputShape: spec.inputShape,
    layers: spec.layers,
    weights,
    calibration: x,
    calibrationSamples: rows.length,
  });
  return { net, samples: rows.length };
}
