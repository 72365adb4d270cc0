// Sliding windows over time series (window.ts, the csv `window` transform): against a naive per-series
// loop, the never-cross-a-series invariant as a property, the chronological split, train-only scaling,
// natural:KEY partitioning of the windows, and the bad cases.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { windowSeries } from './window.js';
import { loadDatasetSpec } from './load.js';
import type { Dataset } from './types.js';
import { parsePartitionSpec, partition } from '../core/partition.js';
import { Rng } from '../core/rng.js';

/** Rows of interleaved series: feature `row` is the row index, target `flow` = 10 * series + step. */
function table(lengths: number[]): Dataset {
  const rows: { key: string; row: number; flow: number }[] = [];
  const cursor = lengths.map(() => 0);
  let remaining = lengths.reduce((a, b) => a + b, 0);
  let s = 0;
  while (remaining > 0) {
    if (cursor[s] < lengths[s]) {
      rows.push({ key: `s${s}`, row: rows.length, flow: 10 * s + cursor[s]++ });
      remaining--;
    }
    s = (s + 1) % lengths.length;
  }
  return {
    source: 't.csv',
    n: rows.length,
    featureShape: [1],
    x: Float32Array.from(rows, (r) => r.row),
    y: Float32Array.from(rows, (r) => r.flow),
    numClasses: 0,
    columns: ['row'],
    extra: { sensor: rows.map((r) => r.key) },
  };
}

/** Undoes the scaling of column c of window i, step s. */
const raw = (d: Dataset, stats: { mean: number[]; std: number[] }, i: number, s: number, c: number) => {
  const cols = d.featureShape[1];
  return d.x[(i * d.featureShape[0] + s) * cols + c] * stats.std[c] + stats.mean[c];
};

describe('windowSeries', () => {
  it('matches a naive per-series loop: consecutive rows of one series, target horizon rows after the window', () => {
    const t = table([30, 21, 25]);
    const w = windowSeries(t, 'flow', { window: 3, horizon: 2, key: 'sensor', testFraction: 0.25 });
    assert.equal(w.series, 3);
    assert.deepEqual(w.train.featureShape, [3, 2]);
    assert.deepEqual(w.train.columns, ['flow', 'row']);
    // naive: per series (file order), first n - round(n/4) rows train, the rest test; windows inside each part
    // listed time-major: by step within the series, then by series
    const found = { train: [] as number[][], test: [] as number[][] };
    for (const [s, n] of [30, 21, 25].entries()) {
      const rows = Array.from({ length: t.n }, (_, r) => r).filter((r) => t.extra!.sensor[r] === `s${s}`);
      const nTest = Math.round(n * 0.25);
      for (const [part, p] of [
        ['train', rows.slice(0, n - nTest)],
        ['test', rows.slice(n - nTest)],
      ] as const) {
        for (let i = 0; i + 5 <= p.length; i++) found[part].push([i, s, ...p.slice(i, i + 3), p[i + 4]]);
      }
    }
    const timeMajor = (a: number[], b: number[]) => a[0] - b[0] || a[1] - b[1];
    const expected = {
      train: found.train.sort(timeMajor).map((e) => e.slice(2)),
      test: found.test.sort(timeMajor).map((e) => e.slice(2)),
    };
    for (const part of ['train', 'test'] as const) {
      const d = w[part];
      assert.equal(d.n, expected[part].length, part);
      for (let i = 0; i < d.n; i++) {
        const [r0, r1, r2, target] = expected[part][i];
        const got = [0, 1, 2].map((s) => Math.round(raw(d, w.featureStats, i, s, 1)));
        assert.deepEqual(got, [r0, r1, r2], `${part} window ${i}`);
        assert.ok(Math.abs(raw(d, w.featureStats, i, 2, 0) - t.y[r2]) < 1e-4, "column 0 is the target's past value");
        assert.ok(Math.abs(d.y[i] * w.targetStats.std + w.targetStats.mean - t.y[target]) < 1e-4);
        assert.equal(d.extra!.sensor[i], t.extra!.sensor[target]);
      }
    }
  });

  it('scales with statistics of training-period rows only', () => {
    const t = table([20, 20]);
    const w = windowSeries(t, 'flow', { window: 2, horizon: 1, key: 'sensor', testFraction: 0.5 });
    // training rows: steps 0..9 of each series, so flow mean (0..9 and 10..19) = 9.5, and row ids 0..19 -> mean 9.5
    assert.ok(Math.abs(w.targetStats.mean - 9.5) < 1e-12);
    assert.ok(Math.abs(w.featureStats.mean[1] - 9.5) < 1e-12);
    const trainMean = w.train.x.reduce((a, v) => a + v, 0) / w.train.x.length;
    assert.ok(Math.abs(trainMean) < 0.5, 'train features are about centred');
  });

  it('property: no window mixes two series or skips a row, and every test window is later than every train window', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 12, max: 30 }), { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 2 }),
        (lengths, window, horizon) => {
          const t = table(lengths);
          const w = windowSeries(t, 'flow', { window, horizon, key: 'sensor', testFraction: 0.4 });
          const lastTrainRow = new Map<string, number>();
          for (const part of ['train', 'test'] as const) {
            const d = w[part];
            for (let i = 0; i < d.n; i++) {
              const rows = Array.from({ length: window }, (_, s) => Math.round(raw(d, w.featureStats, i, s, 1)));
              const keys = new Set(rows.map((r) => t.extra!.sensor[r]));
              if (keys.size !== 1) return false;
              const key = [...keys][0] as string;
              // consecutive steps of that series: flow rises by exactly 1 per step
              for (let s = 1; s < window; s++) if (t.y[rows[s]] - t.y[rows[s - 1]] !== 1) return false;
              const targetStep = Math.round(d.y[i] * w.targetStats.std + w.targetStats.mean);
              if (targetStep - t.y[rows[window - 1]] !== horizon) return false;
              if (part === 'train') lastTrainRow.set(key, Math.max(lastTrainRow.get(key) ?? -1, targetStep));
              else if (targetStep - (window + horizon) < (lastTrainRow.get(key) ?? -1)) return false;
            }
          }
          return true;
        },
      ),
      { seed: 7, numRuns: 60 },
    );
  });

  it('refuses bad options and too-short series, naming the table', () => {
    const t = table([10, 10]);
    const base = { window: 3, horizon: 1, key: 'sensor', testFraction: 0.2 };
    assert.throws(
      () => windowSeries(t, 'flow', { ...base, window: 0 }),
      /t\.csv: window must be a whole number >= 1, got 0/,
    );
    assert.throws(() => windowSeries(t, 'flow', { ...base, horizon: 1.5 }), /horizon must be a whole number >= 1/);
    assert.throws(
      () => windowSeries(t, 'flow', { ...base, key: 'site' }),
      /key column 'site' is not among the kept columns/,
    );
    assert.throws(
      () => windowSeries(t, 'flow', { ...base, window: 2 }),
      /no test window: every series' test period is shorter than window \+ horizon = 3 rows/,
    );
    assert.throws(() => windowSeries({ ...t, numClasses: 3 }, 'flow', base), /needs a numeric target/);
  });
});

describe('csv window spec', () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-window-'));
  const file = join(dir, 'loops.csv');
  const lines = ['time,sensor,hour,flow'];
  for (let t = 0; t < 40; t++)
    for (const s of ['a', 'b', 'c', 'd']) lines.push(`${t},${s},${t % 24},${100 * (s.charCodeAt(0) - 96) + t}`);
  writeFileSync(file, lines.join('\n') + '\n');

  it('loads windows per sensor that natural:sensor partitions by series', () => {
    try {
      const d = loadDatasetSpec(`csv:${file}?window=6&horizon=1&target=flow&key=sensor&keep=time&test=0.25`);
      assert.deepEqual(d.train.featureShape, [6, 2]);
      assert.equal(d.train.n, 4 * (30 - 6));
      assert.equal(d.test.n, 4 * (10 - 6));
      assert.ok(d.targetScale && d.targetScale.std > 0);
      assert.match(d.description, /windows of 6 rows over 4 series \(by 'sensor'\)/);
      const parts = partition(
        parsePartitionSpec('natural:sensor'),
        { labels: d.train.y, numClasses: 0, ids: d.train.extra!.sensor },
        2,
        new Rng(1),
      );
      const sensorsOf = parts.map((p) => new Set(Array.from(p, (i) => d.train.extra!.sensor[i])));
      assert.deepEqual(
        sensorsOf.map((s) => [...s].sort()),
        [
          ['a', 'c'],
          ['b', 'd'],
        ],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a window spec without a target, with a label, or with a bad window, listing every problem', () => {
    assert.throws(
      () => loadDatasetSpec(`csv:${file}?window=6&label=flow`),
      /window=.*target=COL is missing; label is not used with window/,
    );
    assert.throws(() => loadDatasetSpec(`csv:${file}?target=flow`), /window=N is missing/);
    assert.throws(
      () => loadDatasetSpec(`csv:${file}?window=x&target=flow`),
      /window must be a whole number >= 1, got 'x'/,
    );
    assert.throws(
      () => loadDatasetSpec(`csv:${file}?window=6&target=flow&horizon=0`),
      /horizon must be a whole number >= 1, got '0'/,
    );
  });
});
