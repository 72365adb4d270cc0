/** Accuracy and loss per round as uPlot line charts (test = central evaluation, federated = nodes' own). */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { RoundView } from '../../src/coordinator/live-protocol.js';

interface SeriesDef {
  label: string;
  stroke: string;
  value: (r: RoundView) => number | null;
}

const ACCURACY: SeriesDef[] = [
  { label: 'test accuracy', stroke: '#2550b0', value: (r) => r.testAccuracy },
  { label: 'federated accuracy', stroke: '#2a8a4a', value: (r) => r.federatedAccuracy },
  { label: 'train accuracy', stroke: '#aa8822', value: (r) => r.trainAccuracy },
];
const LOSS: SeriesDef[] = [
  { label: 'test loss', stroke: '#2550b0', value: (r) => r.testLoss },
  { label: 'federated loss', stroke: '#2a8a4a', value: (r) => r.federatedLoss },
  { label: 'train loss', stroke: '#aa8822', value: (r) => r.trainLoss },
];

/** Rounds are whole numbers: axis ticks step by these. */
const ROUND_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000];

/** Null (a gap) for anything that is not a finite number: metrics that were not measured. */
const finiteOrNull = (v: number | null | undefined): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

export class RoundChart {
  private plot: uPlot | null = null;

  constructor(private readonly el: HTMLElement, private readonly defs: SeriesDef[], private readonly yRange?: [number, number]) {}

  /** Draws these rounds; data-points on the element says how many rounds have a test value. */
  update(rounds: RoundView[]): void {
    const data: uPlot.AlignedData = [rounds.map((r) => r.round), ...this.defs.map((d) => rounds.map((r) => finiteOrNull(d.value(r))))];
    this.el.dataset.points = String(rounds.filter((r) => finiteOrNull(this.defs[0].value(r)) !== null).length);
    if (!this.plot) {
      const opts: uPlot.Options = {
        width: Math.max(300, this.el.clientWidth), height: 220,
        scales: { x: { time: false }, ...(this.yRange ? { y: { range: this.yRange } } : {}) },
        axes: [{ label: 'round', incrs: ROUND_STEPS }, {}],
        series: [{ label: 'round' }, ...this.defs.map((d) => ({ label: d.label, stroke: d.stroke, width: 2, spanGaps: false, points: { show: true, size: 5 } }))],
      };
      this.plot = new uPlot(opts, data, this.el);
    } else {
      this.plot.setData(data);
    }
  }

  resize(): void {
    this.plot?.setSize({ width: Math.max(300, this.el.clientWidth), height: 220 });
  }
}

export const accuracyChart = (el: HTMLElement) => new RoundChart(el, ACCURACY, [0, 1]);
export const lossChart = (el: HTMLElement) => new RoundChart(el, LOSS);
