/**
 * Inputs for prediction: an IDX folder (images, labels optional) or a CSV file whose columns are matched
 * by name to the columns the model was trained on, scaled with the training statistics saved beside it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { idxCandidateNames, readIdx } from '../data/idx.js';
import { splitCsvRecords } from '../data/csv.js';
import type { StandardizeStats } from '../data/split.js';
import { scaleRows } from './input-scaling.js';

export interface ModelMeta {
  featureShape: number[];
  numClasses: number;
  columns?: string[];
  classNames?: string[];
  labelColumn?: string;
  standardization?: StandardizeStats;
}

export interface PredictInput {
  n: number;
  x: Float32Array;
  labels?: Int32Array;
}

function findFirst(dir: string, names: string[]): string | undefined {
  const files = new Set(readdirSync(dir));
  return names.map((n) => (files.has(n) ? join(dir, n) : undefined)).find(Boolean);
}

export function loadIdxInput(dir: string, meta: ModelMeta): PredictInput {
  let imagesPath: string | undefined;
  let labelsPath: string | undefined;
  try {
    imagesPath = findFirst(dir, idxCandidateNames('test images')) ?? findFirst(dir, idxCandidateNames('train images'));
    labelsPath = imagesPath?.includes('train')
      ? findFirst(dir, idxCandidateNames('train labels'))
      : findFirst(dir, idxCandidateNames('test labels'));
  } catch (e) {
    throw new Error(`--input idx:${dir}: cannot read the folder (${(e as Error).message})`);
  }
  if (!imagesPath)
    throw new Error(
      `--input idx:${dir}: no IDX images file (looked for ${idxCandidateNames('test images')[0]}, ${idxCandidateNames('train images')[0]}, ...)`,
    );
  const images = readIdx(imagesPath);
  const per = images.dims.slice(1).reduce((a, b) => a * b, 1);
  const want = meta.featureShape.reduce((a, b) => a * b, 1);
  if (per !== want) throw new Error(`${imagesPath}: examples have ${per} values, the model takes ${want}`);
  const scale = images.dtype === 'uint8' ? 1 / 255 : 1;
  const x = new Float32Array(images.data.length);
  for (let i = 0; i < x.length; i++) x[i] = images.data[i] * scale;
  let labels: Int32Array | undefined;
  if (labelsPath) {
    const l = readIdx(labelsPath);
    if (l.dims.length !== 1 || l.dims[0] !== images.dims[0])
      throw new Error(`${labelsPath}: ${l.dims[0]} labels for ${images.dims[0]} images`);
    labels = Int32Array.from(l.data as ArrayLike<number>);
  }
  return { n: images.dims[0], x, labels };
}

export function loadCsvInput(path: string, meta: ModelMeta): PredictInput {
  if (!meta.columns) throw new Error(`--input csv:${path}: the model was not trained on CSV columns`);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: cannot read CSV file: ${(e as Error).message}`);
  }
  const [header, ...rows] = splitCsvRecords(text, path);
  if (!header) throw new Error(`${path}: empty file`);
  const index = new Map(header.fields.map((h, i) => [h.trim(), i]));
  const cols = meta.columns.map((c) => {
    const i = index.get(c);
    if (i === undefined) throw new Error(`${path}: column '${c}' the model needs is missing`);
    return i;
  });
  const labelCol = meta.labelColumn !== undefined ? index.get(meta.labelColumn) : undefined;
  const f = cols.length;
  const x = new Float32Array(rows.length * f);
  const labels = labelCol !== undefined ? new Int32Array(rows.length) : undefined;
  rows.forEach((r, i) => {
    if (r.fields.length !== header.fields.length)
      throw new Error(`${path} line ${r.line}: ${r.fields.length} fields, the header has ${header.fields.length}`);
    cols.forEach((c, j) => {
      const v = Number(r.fields[c]);
      if (r.fields[c].trim() === '' || !Number.isFinite(v))
        throw new Error(`${path} line ${r.line}: column '${meta.columns![j]}' value '${r.fields[c]}' is not a number`);
      x[i * f + j] = v;
    });
    if (labels && labelCol !== undefined) {
      const raw = r.fields[labelCol].trim();
      const k = meta.classNames ? meta.classNames.indexOf(raw) : Number(raw);
      if (!(k >= 0) || !Number.isInteger(k))
        throw new Error(`${path} line ${r.line}: label '${raw}' is not a class the model knows`);
      labels[i] = k;
    }
  });
  // Scaled as node serving and the coordinator scale raw rows, so all three answer alike.
  const scaling = meta.standardization && { columns: meta.columns, stats: meta.standardization };
  return { n: rows.length, x: scaleRows(x, rows.length, f, scaling), labels };
}
