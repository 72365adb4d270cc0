/**
 * A run's round records as files to download (CSV for spreadsheets, JSON for scripts), and a run's config
 * flattened to dotted keys so runs can be compared side by side. Pure: no DOM, tested under Node.
 */
import type { RoundView } from '../../src/coordinator/live-protocol.js';

const CSV_COLUMNS: (keyof RoundView)[] = [
  'round',
  'testAccuracy',
  'testLoss',
  'federatedAccuracy',
  'federatedLoss',
  'trainAccuracy',
  'trainLoss',
  'fused',
  'selected',
  'contributed',
  'failures',
  'bytesSent',
  'bytesReceived',
  'seconds',
];

/** RFC 4180 quoting: a field with a comma, quote or line break is quoted, quotes doubled. */
function csvField(v: unknown): string {
  const text =
    v === null || v === undefined
      ? ''
      : Array.isArray(v)
        ? v.every((x) => typeof x === 'number')
          ? v.join(' ')
          : JSON.stringify(v)
        : String(v);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Columns only some runs have: present in the CSV when a round of the run has a value for them. */
const OPTIONAL_COLUMNS: (keyof RoundView)[] = [
  'personalizedAccuracyMean',
  'personalizedAccuracyP10',
  'personalizedAccuracyMin',
];

export function roundsCsv(rounds: RoundView[]): string {
  const present = OPTIONAL_COLUMNS.filter((c) => rounds.some((r) => typeof r[c] === 'number'));
  const columns = [...CSV_COLUMNS, ...present];
  const lines = [columns.join(',')];
  for (const r of rounds) lines.push(columns.map((c) => csvField(r[c])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

export function roundsJson(
  run: { id: number; config: unknown; seed: number; status: string },
  rounds: RoundView[],
): string {
  return `${JSON.stringify({ run: { id: run.id, config: run.config, seed: run.seed, status: run.status }, rounds }, null, 2)}\n`;
}

/** {a: {b: 1}, c: [1, 2]} -> {'a.b': '1', c: '[1,2]'}: one row per leaf in the comparison table. */
export function flattenConfig(config: unknown, prefix = '', out: Record<string, string> = {}): Record<string, string> {
  if (config !== null && typeof config === 'object' && !Array.isArray(config)) {
    for (const [k, v] of Object.entries(config)) flattenConfig(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) {
    out[prefix] = typeof config === 'string' ? config : JSON.stringify(config);
  }
  return out;
}

export interface ConfigRow {
  key: string;
  values: (string | undefined)[];
  differs: boolean;
}

/** Every key any compared run sets, sorted, differing rows flagged (a key one run lacks differs). */
export function compareConfigs(configs: unknown[]): ConfigRow[] {
  const flat = configs.map((c) => flattenConfig(c));
  const keys = [...new Set(flat.flatMap((f) => Object.keys(f)))].sort();
  return keys.map((key) => {
    const values = flat.map((f) => f[key]);
    return { key, values, differs: values.some((v) => v !== values[0]) };
  });
}
