/** The industrial-fault example split by machine: one CSV per pump, as each deployed node would hold it. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

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
