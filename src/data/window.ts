/**
 * Sliding windows over time series in a table (the `window` transform of CSV dataset specs): each
 * example is `window` consecutive rows of one series ([window, 1 + F]: the target's past values, then
 * the F feature columns) and its label the target `horizon` rows after the window's last row. Rows are
 * grouped by a key column (a sensor id) and taken in file order within a series, so no window mixes two
 * sensors. Windows are listed time-major: every series' first window, then every series' second, ...
 *
 * The held-out test set is the last `testFraction` of each series' rows (a chronological split: a
 * random split would put overlapping windows on both sides); windows are cut within each part, so a
 * test window reads only test-period rows. Features and the target are standardized with statistics of
 * the training part's rows; `targetStats` turns errors back into the target's own unit.
 *
 * BROWSER-SAFE: pure, imports no Node modules.
 */
import { featureSize, type Dataset } from './types.js';
import type { StandardizeStats } from './split.js';

export interface WindowOptions {
  /** Rows per input window (>= 1). */
  window: number;
  /** Rows from the window's last row to the predicted one (>= 1; 1 = the next row). */
  horizon: number;
  /** Key column in `table.extra` that names each row's series; without it the table is one series. */
  key?: string;
  /** Fraction of each series' rows (its last ones) held out as the test period. */
  testFraction: number;
}

export interface WindowedData {
  train: Dataset;
  test: Dataset;
  /** Per-column scaling of [target, ...features], fitted on training-period rows. */
  featureStats: StandardizeStats;
  /** The target's scaling (labels are (value - mean) / std). */
  targetStats: { mean: number; std: number };
  /** Number of series (distinct key values). */
  series: number;
}

/**
 * Windows of `table` (a regression table: y the target column, x the feature columns, `target` its
 * name for messages). Throws, naming the table, when an option is out of range or a part has no window.
 */
export function windowSeries(table: Dataset, target: string, opts: WindowOptions): WindowedData {
  const name = table.source;
  const { window, horizon, key, testFraction } = opts;
  if (!(Number.isInteger(window) && window >= 1))
    throw new Error(`${name}: window must be a whole number >= 1, got ${window}`);
  if (!(Number.isInteger(horizon) && horizon >= 1))
    throw new Error(`${name}: horizon must be a whole number >= 1, got ${horizon}`);
  if (!(testFraction > 0 && testFraction < 1))
    throw new Error(`${name}: test fraction must be in (0, 1), got ${testFraction}`);
  if (table.numClasses > 0)
    throw new Error(
      `${name}: window needs a numeric target; '${target}' was read as class labels (add task=regression)`,
    );
  const keys = key === undefined ? null : table.extra?.[key];
  if (key !== undefined && !keys) throw new Error(`${name}: key column '${key}' is not among the kept columns`);
  const groups = new Map<string, number[]>();
  for (let r = 0; r < table.n; r++) {
    const k = keys ? String(keys[r]) : '';
    let rows = groups.get(k);
    if (!rows) groups.set(k, (rows = []));
    rows.push(r);
  }
  const trainParts: number[][] = [];
  const testParts: number[][] = [];
  for (const rows of groups.values()) {
    const nTest = Math.round(rows.length * testFraction);
    trainParts.push(rows.slice(0, rows.length - nTest));
    testParts.push(rows.slice(rows.length - nTest));
  }
  const stats = columnStats(table, trainParts.flat());
  const targetStats = { mean: stats.mean[0], std: stats.std[0] > 0 ? stats.std[0] : 1 };
  const span = window + horizon;
  const count = (parts: number[][]) => parts.reduce((a, p) => a + Math.max(0, p.length - span + 1), 0);
  const shortest = Math.min(...testParts.map((p) => p.length));
  for (const [what, parts] of [
    ['training', trainParts],
    ['test', testParts],
  ] as const) {
    if (count(parts) === 0) {
      throw new Error(
        `${name}: no ${what} window: every series' ${what} period is shorter than window + horizon = ${span} rows ` +
          `(shortest test period ${shortest} rows); use a smaller window or more rows per series`,
      );
    }
  }
  const make = (parts: number[][], part: string) =>
    cut(table, target, parts, stats, targetStats, opts, `${name}#${part}`);
  return {
    train: make(trainParts, 'train'),
    test: make(testParts, 'test'),
    featureStats: stats,
    targetStats,
    series: groups.size,
  };
}

/** Mean and population std of [target, ...features] over the given rows (float64, two passes). */
function columnStats(table: Dataset, rows: number[]): StandardizeStats {
  const F = featureSize(table);
  const cols = 1 + F;
  const value = (r: number, c: number) => (c === 0 ? table.y[r] : table.x[r * F + c - 1]);
  const mean = new Array<number>(cols).fill(0);
  const std = new Array<number>(cols).fill(0);
  for (const r of rows) for (let c = 0; c < cols; c++) mean[c] += value(r, c);
  for (let c = 0; c < cols; c++) mean[c] /= Math.max(1, rows.length);
  for (const r of rows) for (let c = 0; c < cols; c++) std[c] += (value(r, c) - mean[c]) ** 2;
  for (let c = 0; c < cols; c++) std[c] = Math.sqrt(std[c] / Math.max(1, rows.length));
  return { mean, std };
}

function cut(
  table: Dataset,
  target: string,
  parts: number[][],
  stats: StandardizeStats,
  targetStats: { mean: number; std: number },
  opts: WindowOptions,
  source: string,
): Dataset {
  const { window, horizon } = opts;
  const F = featureSize(table);
  const cols = 1 + F;
  const inv = stats.std.map((s) => (s > 0 ? 1 / s : 1));
  const starts: [number[], number][] = [];
  // Time-major (step 0 of every series, then step 1, ...): the first N windows cover every series, as a
  // time-ordered table would, so a cut like --limit-train keeps all sensors.
  const longest = Math.max(0, ...parts.map((p) => p.length));
  for (let t = 0; t + window + horizon <= longest; t++) {
    for (const p of parts) if (t + window + horizon <= p.length) starts.push([p, t]);
  }
  const n = starts.length;
  const x = new Float32Array(n * window * cols);
  const y = new Float32Array(n);
  const extraCols = Object.keys(table.extra ?? {});
  const extra: Record<string, (string | number)[]> = Object.fromEntries(extraCols.map((c) => [c, new Array(n)]));
  starts.forEach(([p, t], i) => {
    for (let s = 0; s < window; s++) {
      const r = p[t + s];
      const outBase = (i * window + s) * cols;
      x[outBase] = (table.y[r] - stats.mean[0]) * inv[0];
      for (let c = 1; c < cols; c++) x[outBase + c] = (table.x[r * F + c - 1] - stats.mean[c]) * inv[c];
    }
    const predicted = p[t + window + horizon - 1];
    y[i] = (table.y[predicted] - targetStats.mean) / targetStats.std;
    // Kept columns (the series key, a timestamp) describe the predicted row.
    for (const c of extraCols) extra[c][i] = table.extra![c][predicted];
  });
  const out: Dataset = {
    source,
    n,
    featureShape: [window, cols],
    x,
    y,
    numClasses: 0,
    columns: [target, ...(table.columns ?? [])],
  };
  if (extraCols.length > 0) out.extra = extra;
  return out;
}
