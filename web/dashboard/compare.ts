/**
 * Run comparison: the runs an operator ticks in the run list, their test accuracy overlaid on one chart and
 * their configs side by side, rows that differ marked (as TensorBoard and W&B compare runs).
 */
import type { RoundView, RunView } from '../../src/coordinator/live-protocol.js';
import { COMPARE_COLOURS, finiteOrNull, LineChart } from './charts.js';
import { h } from './dom.js';
import { compareConfigs } from './records.js';

export interface ComparedRun {
  run: RunView;
  rounds: RoundView[];
}

export class ComparePanel {
  private readonly chart: LineChart;

  constructor(
    private readonly section: HTMLElement,
    chartEl: HTMLElement,
    private readonly table: HTMLElement,
  ) {
    this.chart = new LineChart(chartEl, { scale: 'accuracy' });
  }

  render(runs: ComparedRun[]): void {
    this.section.hidden = runs.length === 0;
    this.section.dataset.runs = runs.map((c) => c.run.id).join(',');
    if (runs.length === 0) return;
    const x = [...new Set(runs.flatMap((c) => c.rounds.map((r) => r.round)))].sort((a, b) => a - b);
    this.chart.update(
      x,
      runs.map((c, i) => {
        const byRound = new Map(c.rounds.map((r) => [r.round, finiteOrNull(r.testAccuracy)]));
        return {
          label: `#${c.run.id} test accuracy`,
          stroke: COMPARE_COLOURS[i % COMPARE_COLOURS.length],
          values: x.map((n) => byRound.get(n) ?? null),
        };
      }),
    );
    const rows = compareConfigs(runs.map((c) => ({ ...(c.run.config as object), seed: c.run.seed })));
    const best = (c: ComparedRun) => Math.max(...c.rounds.map((r) => finiteOrNull(r.testAccuracy) ?? -Infinity));
    this.table.replaceChildren(
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', {}, 'config'),
          ...runs.map((c, i) =>
            h('th', { style: `color:${COMPARE_COLOURS[i % COMPARE_COLOURS.length]}` }, `run #${c.run.id}`),
          ),
        ),
      ),
      h(
        'tbody',
        {},
        h(
          'tr',
          { class: 'summary' },
          h('td', {}, 'status, rounds'),
          ...runs.map((c) => h('td', {}, `${c.run.status}, ${c.rounds.length}`)),
        ),
        h(
          'tr',
          { class: 'summary' },
          h('td', {}, 'best test accuracy'),
          ...runs.map((c) => h('td', { class: 'num' }, Number.isFinite(best(c)) ? best(c).toFixed(4) : '–')),
        ),
        ...rows.map((r) =>
          h(
            'tr',
            { class: r.differs ? 'differs' : '', 'data-key': r.key },
            h('td', {}, r.key),
            ...r.values.map((v) => h('td', {}, v ?? '–')),
          ),
        ),
      ),
    );
  }

  resize(): void {
    this.chart.resize();
  }
}
