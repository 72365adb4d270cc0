/** The industrial-fault example split by machine: one CSV per pump, as each deployed node would hold it. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadDatasetSpec } from '../../src/data/load.ts';

export const PUMP_EXAMPLE = 'examples/industrial-fault/synthetic-pump-sensors.csv';
/** The CSV options every pump dataset and node uses: the label column, and the machine id kept out of features. */
export const PUMP_OPTIONS = '?label=fault&keep=machine_id';
/** Feature columns of a pump row. */
export const PUMP_FEATURES = 6;

/** One machine's rows as its own CSV (header kept), optionally with a column renamed. */
export function machineFile(dir: string, machine: string, rename?: [string, string]): string {
  const lines = readFileSync(PUMP_EXAMPLE, 'utf8').trim().split('\n');
  const header = rename ? lines[0].replace(rename[0], rename[1]) : lines[0];
  const file = join(dir, `${machine}.csv`);
  writeFileSync(file, [header, ...lines.slice(1).filter((l) => l.startsWith(`${machine},`))].join('\n') + '\n');
  return file;
}

/**
 * The pooled training rows of the named machine files (as each node holds them, before scaling), with a naive
 * float64 reference: per feature its values, two-pass mean and population variance; the row count; label counts.
 */
export function pooledPumpRows(files: string[]) {
  const parts = files.map((f) => loadDatasetSpec(`csv:${f}${PUMP_OPTIONS}`, { standardize: false }).train);
  const columns = Array.from({ length: PUMP_FEATURES }, (_, j) =>
    parts.flatMap((d) => Array.from({ length: d.n }, (_, k) => d.x[k * PUMP_FEATURES + j])),
  );
  const mean = columns.map((v) => v.reduce((a, b) => a + b, 0) / v.length);
  const variance = columns.map((v, j) => v.reduce((a, b) => a + (b - mean[j]) ** 2, 0) / v.length);
  const labels = [0, 0, 0, 0];
  for (const d of parts) for (const y of d.y) labels[y]++;
  return { parts, columns, count: columns[0].length, mean, variance, labels };
}
