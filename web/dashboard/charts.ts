/**
 * Line charts over rounds (uPlot). Axes scale to the data (a run that moves from 0.92 to 0.98 fills the
 * chart instead of looking flat); drag selects a region to zoom into, double-click zooms back out. A series
 * appears, legend included, only once it has a value: `edgefed up` never fills the federated series, and an
 * empty legend entry reads like a broken chart.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { RoundView } from '../../src/coordinator/live-protocol.js';

export interface Series {
  label: string;
  stroke: string;
  /** One value per x; null where nothing was measured. */
  values: (number | null)[];
}

export interface ChartOptions {
  /** 'accuracy' keeps the padded range inside [0, 1]; 'log' draws a log-10 axis (loss). */
  scale: 'accuracy' | 'log' | 'linear';
  xLabel?: string;
}

/** Rounds are whole numbers: axis ticks step by these. */
const ROUND_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000];
const HEIGHT = 220;

/** Null (a gap) for anything that is not a finite number: metrics that were not measured. */
export const finiteOrNull = (v: number | null | undefined): number | null =>
  typeof v === 'number' && Number.isFinite(v) ? v : null;

/** A range around the data with 8% padding, never outside [0, 1] for accuracies. */
export function accuracyRange(min: number | null, max: number | null): [number, number] {
  if (min === null || max === null) return [0, 1];
  const span = Math.max(max - min, 0.01);
  return [Math.max(0, min - span * 0.08), Math.min(1, max + span * 0.08)];
}

/**
 * A log-10 range around the data, padded by a factor of 1.25: uPlot's own widens a range that spans a decade to
 * whole powers of ten, which can leave half the panel empty.
 */
export function logRange(min: number | null, max: number | null): [number, number] {
  if (min === null || max === null || !(min > 0) || !(max > 0)) return [0.1, 10];
  return [min / 1.25, max * 1.25];
}

export class LineChart {
  private plot: uPlot | null = null;
  private shownLabels = '';

  constructor(
    private readonly el: HTMLElement,
    private readonly options: ChartOptions,
  ) {}

  /** Draws these series; data-points says how many x have a value in the first series given. */
  update(x: number[], series: Series[]): void {
    const shown = series.filter((s) => s.values.some((v) => v !== null));
    this.el.dataset.points = String(series[0]?.values.filter((v) => v !== null).length ?? 0);
    this.el.dataset.series = shown.map((s) => s.label).join('|');
    const data: uPlot.AlignedData = [x, ...shown.map((s) => s.values)];
    const labels = shown.map((s) => `${s.label}:${s.stroke}`).join('|');
    if (this.plot && labels === this.shownLabels) {
      this.plot.setData(data);
      return;
    }
    this.plot?.destroy();
    this.shownLabels = labels;
    this.plot = new uPlot(this.plotOptions(shown), data, this.el);
  }

  resize(): void {
    this.plot?.setSize({ width: this.width(), height: HEIGHT });
  }

  private width(): number {
    return Math.max(300, this.el.clientWidth);
  }

  private plotOptions(shown: Series[]): uPlot.Options {
    const y: uPlot.Scale =
      this.options.scale === 'log'
        ? { distr: 3, log: 10, range: (_u, min, max) => logRange(min, max) }
        : this.options.scale === 'accuracy'
          ? { range: (_u, min, max) => accuracyRange(min, max) }
          : {};
    this.el.dataset.scale = this.options.scale;
    // The drawn ranges, for people's tools and the browser tests: what the axes show after a zoom.
    const showRange = (u: uPlot, key: string) => {
      const { min, max } = u.scales[key];
      if (min !== undefined && max !== undefined) this.el.dataset[`${key}Range`] = `${min},${max}`;
    };
    return {
      width: this.width(),
      height: HEIGHT,
      hooks: { setScale: [showRange] },
      cursor: { drag: { x: true, y: true, uni: 30 } },
      scales: { x: { time: false }, y },
      axes: [{ label: this.options.xLabel ?? 'round', incrs: ROUND_STEPS }, {}],
      series: [
        { label: this.options.xLabel ?? 'round' },
        ...shown.map((s) => ({
          label: s.label,
          stroke: s.stroke,
          width: 2,
          spanGaps: false,
          points: { show: true, size: 5 },
        })),
      ],
    };
  }
}

interface MetricDef {
  label: string;
  stroke: string;
  value: (r: RoundView) => number | null;
}

const ACCURACY: MetricDef[] = [
  { label: 'test accuracy', stroke: '#2550b0', value: (r) => r.testAccuracy },
  { label: 'federated accuracy', stroke: '#2a8a4a', value: (r) => r.federatedAccuracy },
  { label: 'train accuracy', stroke: '#aa8822', value: (r) => r.trainAccuracy },
  // Personalised runs only: a series without data is not drawn (LineChart keeps the series that have values).
  { label: 'personalised mean', stroke: '#8e44ad', value: (r) => r.personalizedAccuracyMean ?? null },
  { label: 'personalised P10', stroke: '#c0392b', value: (r) => r.personalizedAccuracyP10 ?? null },
  { label: 'personalised min', stroke: '#16a0a0', value: (r) => r.personalizedAccuracyMin ?? null },
];
const LOSS: MetricDef[] = [
  { label: 'test loss', stroke: '#2550b0', value: (r) => r.testLoss },
  { label: 'federated loss', stroke: '#2a8a4a', value: (r) => r.federatedLoss },
  { label: 'train loss', stroke: '#aa8822', value: (r) => r.trainLoss },
];

/** A run's accuracy or loss curves. Loss is drawn on a log axis, so it keeps moving visibly late in a run. */
export class RoundChart {
  private readonly chart: LineChart;

  constructor(
    el: HTMLElement,
    private readonly defs: MetricDef[],
    scale: ChartOptions['scale'],
  ) {
    this.chart = new LineChart(el, { scale });
  }

  update(rounds: RoundView[]): void {
    const positive = (v: number | null) => (this.defs === LOSS && v !== null && v <= 0 ? null : v);
    this.chart.update(
      rounds.map((r) => r.round),
      this.defs.map((d) => ({
        label: d.label,
        stroke: d.stroke,
        values: rounds.map((r) => positive(finiteOrNull(d.value(r)))),
      })),
    );
  }

  resize(): void {
    this.chart.resize();
  }
}

export const accuracyChart = (el: HTMLElement) => new RoundChart(el, ACCURACY, 'accuracy');
export const lossChart = (el: HTMLElement) => new RoundChart(el, LOSS, 'log');

/** Colours for compared runs, in the order they were picked. */
export const COMPARE_COLOURS = ['#2550b0', '#c0392b', '#2a8a4a', '#8e44ad', '#d08a1a', '#16a0a0', '#555'];
