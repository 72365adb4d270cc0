/**
 * `edgefed predict`'s report for people: a table of the first rows (row, predicted class, confidence,
 * decision, and the true label where the input has one) and a summary line. `--json` prints the data instead.
 */
export interface PredictionRow {
  predicted: string | number;
  confidence?: number;
  value?: number;
  decision: string;
}

export interface PredictReport {
  n: number;
  threshold?: number;
  accepted?: number;
  abstained?: number;
  accuracy?: number;
  acceptedAccuracy?: number;
  mse?: number;
  trainer?: string;
  predictions: PredictionRow[];
  /** The true labels of the rows, when the input has them (shown beside each prediction). */
  actual?: ArrayLike<number>;
  classNames?: string[];
}

const fixed = (v: number | undefined, digits: number) =>
  typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '–';

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 || /^[\d.–-]+$/.test(c) ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function formatPredictReport(r: PredictReport, shown: number): string {
  const rows = r.predictions.slice(0, shown);
  const name = (c: number) => r.classNames?.[c] ?? String(c);
  const regression = rows.length > 0 && rows[0].value !== undefined;
  const header = regression ? ['row', 'predicted value', 'decision'] : ['row', 'predicted', 'confidence', 'decision'];
  if (r.actual) header.push('actual');
  const body = rows.map((p, i) => {
    const cells = regression
      ? [String(i), fixed(p.value, 4), p.decision]
      : [String(i), String(p.predicted), fixed(p.confidence, 4), p.decision];
    if (r.actual) cells.push(regression ? fixed(r.actual[i], 4) : name(r.actual[i]));
    return cells;
  });
  const lines = [table(header, body)];
  if (r.predictions.length > shown)
    lines.push(`... ${r.predictions.length - shown} more rows (--rows N shows more, --json prints all)`);
  lines.push('');
  if (regression) {
    lines.push(`${r.n} examples${r.mse !== undefined ? `, mean squared error ${fixed(r.mse, 4)}` : ''}`);
  } else {
    const share = (k: number | undefined) =>
      k === undefined || r.n === 0 ? '' : ` (${((100 * k) / r.n).toFixed(1)}%)`;
    lines.push(
      `${r.n} examples: ${r.accepted} accepted${share(r.accepted)}, ${r.abstained} abstained${share(r.abstained)} below confidence ${r.threshold}`,
    );
    if (r.accuracy !== undefined)
      lines.push(`accuracy ${fixed(r.accuracy, 4)} on all, ${fixed(r.acceptedAccuracy, 4)} on the accepted ones`);
  }
  if (r.trainer) lines.push(`computed with the ${r.trainer} kernels`);
  return `${lines.join('\n')}\n`;
}
