/** Dataset specs as typed on the command line: `mnist`, `idx:DIR`, `csv:FILE?label=COL&test=0.2&keep=a,b`. */
import { readFileSync } from 'node:fs';
import { Rng, hashString } from '../core/rng.js';
import { parseCsv, type CsvDataset, type CsvOptions, type CsvTask } from './csv.js';
import { loadIdxDataset } from './idx.js';
import { loadMnist } from './mnist.js';
import { standardize, trainValidationSplit, type StandardizeStats } from './split.js';
import type { Dataset, TrainTestData } from './types.js';

export type LoadedData = TrainTestData & {
  /** One line for logs and reports. */
  description: string;
  /** CSV string classes, in class-index order. */
  classNames?: string[];
  /** CSV feature scaling fitted on the train split; apply it to any new data before inference. */
  standardization?: StandardizeStats;
};

export const DATASET_SPEC_FORMS = [
  'mnist',
  'idx:DIR',
  'csv:FILE[?label=COL&test=0.2&keep=a,b&task=classification|regression]',
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
export function loadDatasetSpec(spec: string): LoadedData {
  const colon = spec.indexOf(':');
  const scheme = colon < 0 ? spec : spec.slice(0, colon);
  const rest = colon < 0 ? '' : spec.slice(colon + 1);
  if (spec === 'mnist') {
    const d = loadMnist();
    return { ...d, description: `MNIST: ${summary(d.train, d.test)}` };
  }
  if (scheme === 'idx' && rest !== '') {
    const d = loadIdxDataset(rest);
    return { ...d, description: `IDX ${rest}: ${summary(d.train, d.test)}` };
  }
  if (scheme === 'csv' && rest !== '') return loadCsvSpec(spec, rest);
  throw new Error(`unknown dataset spec '${spec}'; accepted forms: ${DATASET_SPEC_FORMS.join(' | ')}`);
}

function loadCsvSpec(spec: string, rest: string): LoadedData {
  // The query starts at the first '?'; values are taken literally (no URL decoding).
  const q = rest.indexOf('?');
  const file = q < 0 ? rest : rest.slice(0, q);
  const opts: CsvOptions = {};
  let testFraction = DEFAULT_CSV_TEST_FRACTION;
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
        opts.keep = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
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
      default:
        throw new Error(`dataset spec '${spec}': unknown option '${key}' (accepted: label, test, keep, task)`);
    }
  }
  const text = readCsvText(file);
  const all = parseCsv(text, file, opts);
  const { train: tr, validation: te } = trainValidationSplit(all, testFraction, new Rng(hashString(text)));
  if (te.n === 0) {
    throw new Error(`${file}: ${all.n} data rows are too few to hold out a test fraction of ${testFraction}`);
  }
  const { train, others, stats } = standardize({ ...tr, source: `${file}#train` }, { ...te, source: `${file}#test` });
  const test = others[0];
  const target = all.task === 'classification' ? `class label '${all.labelColumn}'` : `regression target '${all.labelColumn}'`;
  const description =
    `CSV ${file}: ${summary(train, test)}; ${target}; features ${all.columns!.join(', ')}; ` +
    `test fraction ${testFraction} held out by file-content hash; features standardized with train statistics`;
  const out: LoadedData = { train, test, description, standardization: stats };
  if (all.classNames) out.classNames = all.classNames;
  return out;
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
