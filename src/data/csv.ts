/**
 * CSV loader for tabular sensor data: a header row, numeric feature columns, one label column and
 * optional columns kept aside (ids, timestamps) in Dataset.extra.
 *
 * Parsing follows RFC 4180 (quoted fields with commas, newlines and doubled quotes; CRLF or LF),
 * skips blank lines and a UTF-8 BOM. Errors name the file and the 1-based physical line number.
 */
import type { Dataset } from './types.js';

export type CsvTask = 'classification' | 'regression';

export interface CsvOptions {
  /** Label column name; default: the last column. */
  label?: string;
  /**
   * Default: classification if every label is an integer >= 0 with at most 100 distinct values,
   * or if any label is not a number (string classes); otherwise regression.
   */
  task?: CsvTask;
  /** Columns kept aside in Dataset.extra (as strings) instead of being features. */
  keep?: string[];
}

export type CsvDataset = Dataset & {
  /** Class names in class-index order, when labels were not already class indices. */
  classNames?: string[];
  labelColumn: string;
  task: CsvTask;
};

/** Label sets with more distinct integer values than this are regression targets by default. */
export const MAX_AUTO_CLASSES = 100;
/**
 * Integer labels are used as class indices directly only up to this value; beyond it (e.g. labels
 * 0 and 40000) they are mapped to dense indices so the model does not get 40001 outputs.
 */
export const MAX_DIRECT_CLASS_INDEX = 999;

interface CsvRecord {
  line: number;
  fields: string[];
}

const QUOTE = 34;
const COMMA = 44;
const LF = 10;
const CR = 13;

/** Split CSV text into records of raw string fields; blank lines are dropped. */
export function splitCsvRecords(text: string, nameForErrors: string): CsvRecord[] {
  const n = text.length;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  const records: CsvRecord[] = [];
  while (i < n) {
    const recLine = line;
    const fields: string[] = [];
    let sawQuote = false;
    for (;;) {
      let field: string;
      if (text.charCodeAt(i) === QUOTE) {
        sawQuote = true;
        const openLine = line;
        i++;
        let start = i;
        field = '';
        for (;;) {
          if (i >= n) throw new Error(`${nameForErrors} line ${openLine}: quoted field is never closed`);
          const c = text.charCodeAt(i);
          if (c === QUOTE) {
            if (text.charCodeAt(i + 1) === QUOTE) {
              field += text.slice(start, i + 1);
              i += 2;
              start = i;
              continue;
            }
            field += text.slice(start, i);
            i++;
            break;
          }
          if (c === LF || (c === CR && text.charCodeAt(i + 1) !== LF)) line++;
          i++;
        }
        if (i < n) {
          const c = text.charCodeAt(i);
          if (c !== COMMA && c !== LF && c !== CR) {
            throw new Error(
              `${nameForErrors} line ${line}: unexpected character '${text[i]}' after a closing quote (a quote inside a field must be doubled)`,
            );
          }
        }
      } else {
        const start = i;
        while (i < n) {
          const c = text.charCodeAt(i);
          if (c === COMMA || c === LF || c === CR) break;
          i++;
        }
        field = text.slice(start, i);
      }
      fields.push(field);
      if (i >= n) break;
      const c = text.charCodeAt(i);
      if (c === COMMA) {
        i++;
        continue;
      }
      // End of record: CRLF, LF, or a lone CR.
      i += c === CR && text.charCodeAt(i + 1) === LF ? 2 : 1;
      line++;
      break;
    }
    const blank = !sawQuote && fields.length === 1 && fields[0].trim() === '';
    if (!blank) records.push({ line: recLine, fields });
  }
  return records;
}

const NUMBER_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const FLOAT32_MAX = 3.4028234663852886e38;

/** A finite number, or a reason it is not one. Stricter than Number(): '' and '0x1f' are rejected. */
function parseNumber(raw: string): number | string {
  const s = raw.trim();
  if (s === '') return 'is empty (missing values are not supported)';
  if (!NUMBER_RE.test(s)) return 'is not a number';
  const v = Number(s);
  if (!Number.isFinite(v) || Math.abs(v) > FLOAT32_MAX) return 'is out of float32 range';
  return v;
}

function quoteList(names: readonly string[]): string {
  return names.map((c) => `'${c}'`).join(', ');
}

/** Parse CSV text into a Dataset; `nameForErrors` (usually the path) starts every error message. */
export function parseCsv(text: string, nameForErrors: string, opts: CsvOptions = {}): CsvDataset {
  const name = nameForErrors;
  if (opts.task !== undefined && opts.task !== 'classification' && opts.task !== 'regression') {
    throw new Error(`${name}: task must be 'classification' or 'regression', got '${String(opts.task)}'`);
  }
  const records = splitCsvRecords(text, name);
  if (records.length === 0) throw new Error(`${name}: file is empty (a header row is required)`);
  const [headerRec, ...rows] = records;
  const header = headerRec.fields.map((h) => h.trim());
  const seen = new Map<string, number>();
  header.forEach((h, j) => {
    if (h === '') throw new Error(`${name} line ${headerRec.line}: header column ${j + 1} has no name`);
    if (seen.has(h)) throw new Error(`${name} line ${headerRec.line}: column name '${h}' appears twice in the header`);
    seen.set(h, j);
  });
  if (rows.length === 0) throw new Error(`${name}: no data rows after the header on line ${headerRec.line}`);

  const labelName = opts.label ?? header[header.length - 1];
  const labelCol = seen.get(labelName);
  if (labelCol === undefined)
    throw new Error(`${name}: label column '${labelName}' not found; columns are ${quoteList(header)}`);
  const keep = [...new Set(opts.keep ?? [])];
  for (const k of keep) {
    if (!seen.has(k)) throw new Error(`${name}: keep column '${k}' not found; columns are ${quoteList(header)}`);
    if (k === labelName) throw new Error(`${name}: column '${k}' cannot be both the label and a kept column`);
  }
  const keepSet = new Set(keep);
  const featureCols = header.map((_, j) => j).filter((j) => j !== labelCol && !keepSet.has(header[j]));
  if (featureCols.length === 0) throw new Error(`${name}: no feature columns left after the label and kept columns`);

  const n = rows.length;
  const F = featureCols.length;
  const x = new Float32Array(n * F);
  for (let r = 0; r < n; r++) {
    const { line, fields } = rows[r];
    if (fields.length !== header.length) {
      throw new Error(
        `${name} line ${line}: expected ${header.length} fields as in the header, found ${fields.length}`,
      );
    }
    for (let j = 0; j < F; j++) {
      const raw = fields[featureCols[j]];
      const v = parseNumber(raw);
      if (typeof v === 'string')
        throw new Error(`${name} line ${line}: column '${header[featureCols[j]]}' value '${raw}' ${v}`);
      x[r * F + j] = v;
    }
  }

  const { y, numClasses, classNames, task } = parseLabels(rows, labelCol, labelName, name, opts.task);
  const extra =
    keep.length > 0
      ? Object.fromEntries(keep.map((k) => [k, rows.map((r) => r.fields[seen.get(k)!].trim())]))
      : undefined;
  const ds: CsvDataset = {
    source: name,
    n,
    featureShape: [F],
    x,
    y,
    numClasses,
    columns: featureCols.map((j) => header[j]),
    labelColumn: labelName,
    task,
  };
  if (extra) ds.extra = extra;
  if (classNames) ds.classNames = classNames;
  return ds;
}

function parseLabels(
  rows: CsvRecord[],
  col: number,
  labelName: string,
  name: string,
  requested: CsvTask | undefined,
): { y: Int32Array | Float32Array; numClasses: number; classNames?: string[]; task: CsvTask } {
  const n = rows.length;
  const raw = rows.map((r) => r.fields[col].trim());
  const nums = raw.map(parseNumber);
  const allNumeric = nums.every((v) => typeof v === 'number');
  const values = nums as number[];
  const allIndices = allNumeric && values.every((v) => Number.isInteger(v) && v >= 0);
  let task = requested;
  if (task === undefined) {
    if (!allNumeric) task = 'classification';
    else task = allIndices && new Set(values).size <= MAX_AUTO_CLASSES ? 'classification' : 'regression';
  }

  if (task === 'regression') {
    const bad = nums.findIndex((v) => typeof v === 'string');
    if (bad >= 0) {
      throw new Error(
        `${name} line ${rows[bad].line}: label column '${labelName}' value '${raw[bad]}' ${nums[bad] as string} (task is regression)`,
      );
    }
    return { y: Float32Array.from(values), numClasses: 0, task };
  }

  const empty = raw.indexOf('');
  if (empty >= 0) throw new Error(`${name} line ${rows[empty].line}: label column '${labelName}' is empty`);
  const y = new Int32Array(n);
  if (allIndices) {
    const max = values.reduce((a, b) => Math.max(a, b), 0);
    if (max <= MAX_DIRECT_CLASS_INDEX) {
      y.set(values);
      return { y, numClasses: max + 1, task };
    }
  }
  let classNames: string[];
  if (allNumeric) {
    // Numeric classes that are not small indices (e.g. -1/1): dense indices in numeric order.
    const distinct = [...new Set(values)].sort((a, b) => a - b);
    const index = new Map(distinct.map((v, i) => [v, i]));
    for (let i = 0; i < n; i++) y[i] = index.get(values[i])!;
    classNames = distinct.map(String);
  } else {
    // Code-unit order, so the mapping does not depend on the machine's locale.
    classNames = [...new Set(raw)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const index = new Map(classNames.map((v, i) => [v, i]));
    for (let i = 0; i < n; i++) y[i] = index.get(raw[i])!;
  }
  return { y, numClasses: classNames.length, classNames, task };
}
