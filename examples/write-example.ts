/** What both example generators share: CSV text per site, and the command line `[OUT.csv] [--per-site DIR]`. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface SiteCsv {
  /** Every site's rows under one header. */
  all: string;
  /** One CSV per site, each with the header. */
  parts: string[];
}

export function siteCsv(header: string, rowsBySite: string[][]): SiteCsv {
  return {
    all: [header, ...rowsBySite.flat()].join('\n') + '\n',
    parts: rowsBySite.map((rows) => [header, ...rows].join('\n') + '\n'),
  };
}

/** Writes the CSV (and with --per-site DIR, one file per site named partName(i)). */
export function writeExampleFiles(
  argv: string[],
  defaultOut: string,
  data: SiteCsv & { partName: (i: number) => string },
): void {
  const dirFlag = argv.indexOf('--per-site');
  const out = argv.find((a, i) => !a.startsWith('--') && i !== dirFlag + 1) ?? defaultOut;
  writeFileSync(out, data.all);
  process.stderr.write(`wrote ${out} (SYNTHETIC, ${data.all.trim().split('\n').length - 1} rows)\n`);
  if (dirFlag < 0) return;
  const dir = argv[dirFlag + 1];
  if (!dir) throw new Error('--per-site needs a folder');
  mkdirSync(dir, { recursive: true });
  data.parts.forEach((text, i) => writeFileSync(join(dir, data.partName(i)), text));
  process.stderr.write(`wrote ${data.parts.length} per-site files to ${dir}\n`);
}
