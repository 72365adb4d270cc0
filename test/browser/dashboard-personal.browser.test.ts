// Browser suite: a personalised run on the dashboard. A coordinator process and two node processes on loopback
// run a real FedPer run (every node evaluates every round, so the records carry the personalised accuracy) and a
// FedAvg run (no personalised accuracy); headless Chromium shows the personalised mean, P10 and min as accuracy
// series and as a summary line equal to the last record for the first, and neither for the second, and the CSV
// download has the personalised columns only for the first. Screenshot: test-artifacts/dashboard-personal.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import {
  ADMIN_TOKEN,
  api,
  freePort,
  killAll,
  startCoordinator,
  startNodesInOrder,
  waitFor,
  waitHealthy,
  type Proc,
} from '../deploy-harness.js';
import { buildDashboard } from '../support/dashboard.js';
import { CHROMIUM, CHROMIUM_ARGS, chromiumMissing } from './serve.js';

const ARTIFACTS = join(fileURLToPath(new URL('../../', import.meta.url)), 'test-artifacts');

interface Run {
  id: number;
  status: string;
  rounds: {
    round: number;
    personalizedAccuracyMean?: number;
    personalizedAccuracyP10?: number;
    personalizedAccuracyMin?: number;
  }[];
}

async function runToEnd(url: string, config: object): Promise<Run> {
  const { status, json } = await api<{ id: number }>(url, '/v1/runs', config);
  assert.equal(status, 201, JSON.stringify(json));
  return waitFor(
    `run ${json.id} to complete`,
    async () => {
      const run = (await api<Run>(url, `/v1/runs/${json.id}`)).json;
      return run.status === 'completed' ? run : undefined;
    },
    240_000,
  );
}

test('dashboard: personalised accuracy (mean, P10, min) shown for a personalised run only', {
  skip: chromiumMissing,
  timeout: 420_000,
}, async () => {
  buildDashboard();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const procs: Proc[] = [startCoordinator(port, join(mkdtempSync(join(tmpdir(), 'edgefed-dash-pers-')), 'c.db'))];
  let browser: Browser | null = null;
  try {
    await waitHealthy(url);
    procs.push(
      ...(await startNodesInOrder(
        url,
        [0, 1].map((i) => ({
          data: `mnist-partition:${i}/40`,
          name: `pers${i}`,
          extra: ['--state-dir', mkdtempSync(join(tmpdir(), 'edgefed-pers-state-'))],
        })),
      )),
    );
    const common = { model: 'mlp', minNodes: 2, limitTest: 300, seed: 5, evalFraction: 1 };
    const personal = await runToEnd(url, { ...common, name: 'fedper', strategy: 'fedper', rounds: 4 });
    const plain = await runToEnd(url, { ...common, name: 'fedavg', strategy: 'fedavg', rounds: 2 });
    const last = personal.rounds.at(-1)!;
    assert.equal(typeof last.personalizedAccuracyMean, 'number', 'the FedPer records carry personalised accuracy');
    assert.equal(plain.rounds.at(-1)!.personalizedAccuracyMean, undefined);

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    const context = await browser.newContext({ viewport: { width: 1280, height: 1400 }, acceptDownloads: true });
    const tab = await context.newPage();
    await tab.goto(`${url}/dashboard/#token=${ADMIN_TOKEN}`);
    await tab.waitForSelector('#live-status[data-state="open"]');

    await tab.click(`#runs li[data-run-id="${personal.id}"]`);
    await tab.waitForSelector('#acc-chart[data-points="4"]');
    const series = (await tab.getAttribute('#acc-chart', 'data-series'))!.split('|');
    for (const s of ['personalised mean', 'personalised P10', 'personalised min'])
      assert.ok(series.includes(s), `${s} in ${series.join(', ')}`);
    await tab.waitForSelector('#personal-summary:not([hidden])');
    const shown = async (label: string) => tab.textContent(`#personal-summary b[data-personal="${label}"]`);
    assert.equal(await shown('mean'), last.personalizedAccuracyMean!.toFixed(4));
    assert.equal(await shown('P10'), last.personalizedAccuracyP10!.toFixed(4));
    assert.equal(await shown('min'), last.personalizedAccuracyMin!.toFixed(4));
    const [download] = await Promise.all([tab.waitForEvent('download'), tab.click('#download-csv')]);
    const header = readFileSync((await download.path())!, 'utf8')
      .split('\r\n')[0]
      .split(',');
    assert.deepEqual(header.slice(-3), [
      'personalizedAccuracyMean',
      'personalizedAccuracyP10',
      'personalizedAccuracyMin',
    ]);
    mkdirSync(ARTIFACTS, { recursive: true });
    await tab.screenshot({ path: join(ARTIFACTS, 'dashboard-personal.png'), fullPage: true });

    await tab.click(`#runs li[data-run-id="${plain.id}"]`);
    await tab.waitForSelector('#acc-chart[data-points="2"]');
    const plainSeries = (await tab.getAttribute('#acc-chart', 'data-series'))!.split('|');
    assert.ok(!plainSeries.some((s) => s.startsWith('personalised')), plainSeries.join(', '));
    await tab.waitForSelector('#personal-summary[hidden]', { state: 'attached' });
    const [plainDownload] = await Promise.all([tab.waitForEvent('download'), tab.click('#download-csv')]);
    const plainHeader = readFileSync((await plainDownload.path())!, 'utf8').split('\r\n')[0];
    assert.doesNotMatch(plainHeader, /personalized/);
  } finally {
    await browser?.close();
    killAll(procs);
  }
});
