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

export function formatPredictReport(report: PredictReport, shown: number): string {
  const rows = report.predictions.slice(0, shown);
  const name = (c: number) => report.classNames?.[c] ?? String(c);
  const regression = rows.length > 0 && rows[0].value !== undefined;
  const header = regression ? ['row', 'predicted value', 'decision'] : ['row', 'predicted', 'confidence', 'decision'];
  if (report.actual) header.push('actual');
  const body = rows.map((p, i) => {
    const cells = regression
      ? [String(i), fixed(p.value, 4), p.decision]
      : [String(i), String(p.predicted), fixed(p.confidence, 4), p.decision];
    if (report.actual) cells.push(regression ? fixed(report.actual[i], 4) : name(report.actual[i]));
    return cells;
  });
  const lines = [table(header, body)];
  if (report.predictions.length > shown)
    lines.push(`... ${report.predictions.length - shown} more rows (--rows N shows more, --json prints all)`);
  lines.push('');
  if (regression) {
    lines.push(`${report.n} examples${report.mse !== undefined ? `, mean squared error ${fixed(report.mse, 4)}` : ''}`);
  } else {
    const share = (k: number | undefined) =>
      k === undefined || report.n === 0 ? '' : ` (${((100 * k) / report.n).toFixed(1)}%)`;
    lines.push(
      `${report.n} examples: ${report.accepted} accepted${share(report.accepted)}, ${report.abstained} abstained${share(report.abstained)} below confidence ${report.threshold}`,
    );
    if (report.accuracy !== undefined)
      lines.push(
        `accuracy ${fixed(report.accuracy, 4)} on all, ${fixed(report.acceptedAccuracy, 4)} on the accepted ones`,
      );
  }
  if (report.trainer) lines.push(`computed with the ${report.trainer} kernels`);
  return `${lines.join('\n')}\n`;
}
