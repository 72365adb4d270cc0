/** A small dependency-free SVG line chart of accuracy and loss by round, for run reports. */
export function accuracyLossSvg(rounds: number[], accuracy: number[], loss: number[], title: string): string {
  const W = 640,
    H = 360,
    L = 56,
    R = 56,
    T = 36,
    B = 44;
  const pw = W - L - R,
    ph = H - T - B;
  const maxRound = Math.max(1, ...rounds);
  const x = (r: number) =>
    L + (rounds.length === 1 ? pw / 2 : ((r - rounds[0]) / Math.max(1, maxRound - rounds[0])) * pw);
  const finiteLoss = loss.filter(Number.isFinite);
  const maxLoss = Math.max(1e-9, ...finiteLoss);
  const yAcc = (a: number) => T + (1 - a) * ph;
  const yLoss = (l: number) => T + (1 - l / maxLoss) * ph;
  const path = (ys: number[], f: (v: number) => number) =>
    ys
      .map((v, i) => (Number.isFinite(v) ? `${i === 0 ? 'M' : 'L'}${x(rounds[i]).toFixed(1)},${f(v).toFixed(1)}` : ''))
      .join(' ');
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  const esc = (s: string) =>
    s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>
${ticks.map((t) => `<line x1="${L}" x2="${W - R}" y1="${yAcc(t)}" y2="${yAcc(t)}" stroke="#ddd"/><text x="${L - 6}" y="${yAcc(t) + 4}" text-anchor="end" fill="#1f77b4">${t.toFixed(2)}</text><text x="${W - R + 6}" y="${yAcc(t) + 4}" fill="#d62728">${(maxLoss * t).toPrecision(2)}</text>`).join('\n')}
<line x1="${L}" x2="${W - R}" y1="${T + ph}" y2="${T + ph}" stroke="#333"/>
<text x="${L}" y="${H - 12}">round ${rounds[0] ?? 1}</text><text x="${W - R}" y="${H - 12}" text-anchor="end">round ${maxRound}</text>
<path d="${path(accuracy, yAcc)}" fill="none" stroke="#1f77b4" stroke-width="2"/>
<path d="${path(loss, yLoss)}" fill="none" stroke="#d62728" stroke-width="2" stroke-dasharray="5,3"/>
<text x="${L + 8}" y="${T + 14}" fill="#1f77b4">test accuracy (left)</text>
<text x="${L + 8}" y="${T + 30}" fill="#d62728">test loss (right)</text>
</svg>
`;
}
