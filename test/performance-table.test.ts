/** scripts/performance-table.mjs: README's Performance table comes from bench/results, environment beside each figure. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
// @ts-expect-error: a plain .mjs script without type declarations
import { END, START, renderTable, withTable } from '../scripts/performance-table.mjs';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

test("README's Performance table is the one the results files render (run node scripts/performance-table.mjs)", () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  assert.equal(withTable(readme, renderTable()), readme);
});

test('each figure names its environment, and the environment lines carry the kernels, the OpenBLAS core and the load', () => {
  const dir = mkdtempSync(join(tmpdir(), 'perf-table-'));
  const pace = {
    bench: 'noniid-pace',
    rounds: 5,
    seed: 1,
    lr: 0.1,
    env: {
      cpu: 'Test CPU (avx2)',
      cores: 2,
      openblas_core: 'Haswell',
      openblas_coretype_env: null,
      load_average_start: [1.5, 1, 0.5],
      load_average_end: [2, 1, 0.5],
    },
    rows: [
      { side: 'NumPy', workers: 1, trainer: 'numpy', seconds_per_round: 0.2, cpu_seconds_per_round: 0.2, load_1min: 1 },
      {
        side: 'EdgeFed, 1 worker',
        workers: 1,
        trainer: 'engine',
        seconds_per_round: 0.1,
        cpu_seconds_per_round: 0.15,
        load_1min: 1.2,
      },
      {
        side: 'EdgeFed, 2 workers',
        workers: 2,
        trainer: 'engine',
        seconds_per_round: 0.07,
        cpu_seconds_per_round: 0.16,
        load_1min: 1.3,
      },
    ],
    numpy_seconds_per_round: 0.2,
    numpy_cpu_seconds_per_round: 0.2,
    targets: { one_worker: 0.7, every_core: 0.45 },
    finished_at: '2026-12-07T06:00:00.000Z',
    git_commit: 'abcdef0123456789',
    machine: { kernels: 'native-openblas' },
  };
  writeFileSync(join(dir, 'noniid-pace.json'), JSON.stringify(pace));
  const table: string = renderTable(dir);
  assert.match(table, /EdgeFed, 1 worker: seconds per round vs NumPy \(load 1\.2\) \| 0\.50x \| <= 0\.7x \| E2 \|/);
  assert.match(table, /EdgeFed, 2 workers: seconds per round vs NumPy \(load 1\.3\) \| 0\.35x \| <= 0\.45x \| E2 \|/);
  assert.match(table, /EdgeFed, 1 worker: CPU-seconds per round vs NumPy \| 0\.75x/);
  assert.match(
    table,
    /- E2: Test CPU \(avx2\), 2 cores, kernels native-openblas, OpenBLAS core Haswell, OPENBLAS_CORETYPE unset; load 1\.50 \/ 1\.00 \/ 0\.50/,
  );
  assert.match(table, /2026-12-07, abcdef012345/);
});

test('no results, a broken results file and a README without markers each get a clear answer', () => {
  const empty = mkdtempSync(join(tmpdir(), 'perf-table-'));
  assert.match(renderTable(empty), /No benchmark results/);
  writeFileSync(join(empty, 'train.json'), '{ not json');
  assert.throws(() => renderTable(empty), /train\.json is not valid JSON .*re-run its benchmark/);
  assert.throws(() => withTable('# README\n## Performance\n', 'x'), /no performance table markers/);
  assert.equal(withTable(`a\n${START}\nold\n${END}\nb`, 'new'), `a\n${START}\nnew\n${END}\nb`);
});
