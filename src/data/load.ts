/** Dataset specs as typed on the command line: `mnist`, `fashion-mnist`, `idx:DIR`, `csv:FILE?label=COL&test=0.2&keep=a,b`. */
import { readFileSync } from 'node:fs';
import { Rng, hashString } from '../core/rng.js';
import { parseCsv, type CsvDataset, type CsvOptions, type CsvTask } from './csv.js';
import { loadIdxDataset } from './idx.js';
import { loadMnist } from './mnist.js';
import { loadFashionMnist } from './fashion-mnist.js';
import { standardize, trainValidationSplit, type StandardizeStats } from './split.js';
import type { Dataset, TrainTestData } from './types.js';
import { windowSeries, type WindowOptions } from './window.js';

export type LoadedData = TrainTestData & {
  /** One line for logs and reports. */
  description: string;
  /** CSV string classes, in class-index order. */
  classNames?: string[];
  /** CSV feature scaling fitted on the train split; apply it to any new data before inference. */
  standardization?: StandardizeStats;
  /** Where the statistics came from when a run chose (simulation's --standardize): central, node or federated. */
  standardizedWith?: string;
  /** Windowed time series: labels are (target - mean) / std; errors times std are in the target's unit. */
  targetScale?: { mean: number; std: number };
};

export const DATASET_SPEC_FORMS = [
  'mnist',
  'fashion-mnist',
  'idx:DIR',
  'csv:FILE[?label=COL&test=0.2&keep=a,b&task=classification|regression]',
  'csv:FILE?window=24&horizon=1&target=COL[&key=SERIES_COL&keep=a,b&test=0.2]',
] as const;

/** Default fraction of CSV rows held out as the test set. */
export const DEFAULT_CSV_TEST_FRACTION = 0.2;

function summary(train: Dataset, test: Dataset): string {
  const kind = train.numClasses > 0 ? `${train.numClasses} classes` : 'regression';
  return `${train.n} train / ${test.n} test, features [${train.featureShape.join(', ')}], ${kind}`;
}

/**
 * Load the dataset a spec names. For CSV files, which have no separate test file, a fraction of
 * rows (default 0.2) is held out as the test set with a seed taken from a hash of the file's
 * contents: the test set is the same for every run seed (so results are comparable across runs)
 * and changes only when the data changes. Features are then standardized with train statistics.
 */
export function loadDatasetSpec(spec: string, options: { standardize?: boolean } = {}): LoadedData {
  const colon = spec.indexOf(':');
  const scheme = colon < 0 ? spec : spec.slice(0, colon);
  const rest = colon < 0 ? '' : spec.slice(colon + 1);
  if (spec === 'mnist') {
    const d = loadMnist();
    return { ...d, description: `MNIST: ${summary(d.train, d.test)}` };
  }
  if (spec === 'fashion-mnist') {
    const d = loadFashionMnist();
    return { ...d, description: `Fashion-MNIST: ${summary(d.train, d.test)}` };
  }
  if (scheme === 'idx' && rest !== '') {
    const d = loadIdxDataset(rest);
    return { ...d, description: `IDX ${rest}: ${summary(d.train, d.test)}` };
  }
  if (scheme === 'csv' && rest !== '') return loadCsvSpec(spec, rest, options.standardize ?? true);
  throw new Error(`unknown dataset spec '${spec}'; accepted forms: ${DATASET_SPEC_FORMS.join(' | ')}`);
}

function loadCsvSpec(spec: string, rest: string, scale: boolean): LoadedData {
  // The query starts at the first '?'; values are taken literally (no URL decoding).
  const q = rest.indexOf('?');
  const file = q < 0 ? rest : rest.slice(0, q);
  const opts: CsvOptions = {};
  let testFraction = DEFAULT_CSV_TEST_FRACTION;
  const windowed: Partial<WindowOptions> & { target?: string } = {};
  const whole = (key: string, value: string): number => {
    const v = value.trim() === '' ? NaN : Number(value);
    if (!(Number.isInteger(v) && v >= 1))
      throw new Error(`dataset spec '${spec}': ${key} must be a whole number >= 1, got '${value}'`);
    return v;
  };
  for (const part of q < 0 ? [] : rest.slice(q + 1).split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    switch (key) {
      case 'label':
        opts.label = value;
        break;
      case 'keep':
        opts.keep = value
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '');
        break;
      case 'task':
        if (value !== 'classification' && value !== 'regression') {
          throw new Error(`dataset spec '${spec}': task must be classification or regression, got '${value}'`);
        }
        opts.task = value as CsvTask;
        break;
      case 'test':
        testFraction = value.trim() === '' ? NaN : Number(value);
        if (!(testFraction > 0 && testFraction < 1)) {
          throw new Error(`dataset spec '${spec}': test must be a fraction in (0, 1), got '${value}'`);
        }
        break;
      case 'window':
      case 'horizon':
        windowed[key] = whole(key, value);
        break;
      case 'target':
      case 'key':
        if (value.trim() === '') throw new Error(`dataset spec '${spec}': ${key} needs a column name`);
        windowed[key] = value.trim();
        break;
      default:
        throw new Error(
          `dataset spec '${spec}': unknown option '${key}' (accepted: label, test, keep, task, window, horizon, target, key)`,
        );
    }
  }
  if (Object.keys(windowed).length > 0) return loadWindowedCsv(spec, file, opts, windowed, testFraction);
  const text = readCsvText(file);
  const all = parseCsv(text, file, opts);
  const { train: tr, validation: te } = trainValidationSplit(all, testFraction, new Rng(hashString(text)));
  if (te.n === 0) {
    throw new Error(`${file}: ${all.n} data rows are too few to hold out a test fraction of ${testFraction}`);
  }
  const named = { train: { ...tr, source: `${file}#train` }, test: { ...te, source: `${file}#test` } };
  if (!scale) {
    const raw = `CSV ${file}: ${summary(tr, te)}; features ${all.columns!.join(', ')}; raw values (not standardized)`;
    return { ...named, description: raw, ...(all.classNames ? { classNames: all.classNames } : {}) };
  }
  const { train, others, stats } = standardize(named.train, named.test);
  const test = others[0];
  const target =
    all.task === 'classification' ? `class label '${all.labelColumn}'` : `regression target '${all.labelColumn}'`;
  const description =
    `CSV ${file}: ${summary(train, test)}; ${target}; features ${all.columns!.join(', ')}; ` +
    `test fraction ${testFraction} held out by file-content hash; features standardized with train statistics`;
  const out: LoadedData = { train, test, description, standardization: stats };
  if (all.classNames) out.classNames = all.classNames;
  return out;
}

/** A CSV of time series cut into sliding windows per series (window.ts): regression on the target column. */
function loadWindowedCsv(
  spec: string,
  file: string,
  opts: CsvOptions,
  w: Partial<WindowOptions> & { target?: string },
  testFraction: number,
): LoadedData {
  const problems: string[] = [];
  if (w.window === undefined) problems.push('window=N is missing');
  if (w.target === undefined) problems.push('target=COL is missing');
  if (opts.label !== undefined) problems.push('label is not used with window (the target column is the label)');
  if (opts.task === 'classification') problems.push('windows forecast a numeric target: task must be regression');
  if (problems.length > 0) throw new Error(`dataset spec '${spec}': ${problems.join('; ')}`);
  const keep = [...(opts.keep ?? [])];
  if (w.key !== undefined && !keep.includes(w.key)) keep.push(w.key);
  const table = parseCsv(readCsvText(file), file, { label: w.target, task: 'regression', keep });
  const d = windowSeries(table, w.target!, { window: w.window!, horizon: w.horizon ?? 1, key: w.key, testFraction });
  const description =
    `CSV ${file} in windows of ${w.window} rows over ${d.series} series${w.key ? ` (by '${w.key}')` : ''}: ` +
    `${summary(d.train, d.test)}; forecast '${w.target}' ${w.horizon ?? 1} row(s) ahead; last ${testFraction} of each series ` +
    'held out; features and target standardized with train-period statistics';
  return { train: d.train, test: d.test, description, standardization: d.featureStats, targetScale: d.targetStats };
}

function readCsvText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: cannot read CSV file: ${(e as Error).message}`);
  }
}

/** Read a UTF-8 CSV file and parse it (see parseCsv in csv.ts, which stays browser-safe); errors name the path. */
export function loadCsv(path: string, opts: CsvOptions = {}): CsvDataset {
  return parseCsv(readCsvText(path), path, opts);
}
