// Browser suite: what an operator does with finished runs. A coordinator process and two node processes on
// loopback run two real runs (a 55-round softmax regression and a 4-round MLP), and headless Chromium checks
// the dashboard: the empty state before anything exists, accuracy on an axis scaled to the data, loss on a log
// axis, series only where they have data, drag-to-zoom and reset, a timeline bounded to 50 rounds that scrolls
// for more, the node table after the runs end and after the feed drops, CSV/JSON downloads equal to the
// records, and two runs compared (both curves, configs side by side, the differing rows marked).
// Screenshots in test-artifacts/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import {
  ADMIN_TOKEN,
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

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ARTIFACTS = join(ROOT, 'test-artifacts');

interface Round {
  round: number;
  testAccuracy: number | null;
  testLoss: number | null;
  trainLoss?: number | null;
  federatedAccuracy: number | null;
  contributed: number[];
}
interface Run {
  id: number;
  status: string;
  rounds: Round[];
}

async function admin<T>(url: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { authorization: `Bearer ${ADMIN_TOKEN}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(
    url + path,
    body === undefined ? { headers } : { method: 'POST', headers, body: JSON.stringify(body) },
  );
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return (await r.json()) as T;
}

async function runToEnd(url: string, config: object): Promise<Run> {
  const { id } = await admin<{ id: number }>(url, '/v1/runs', config);
  return waitFor(
    `run ${id} to complete`,
    async () => {
      const run = await admin<Run>(url, `/v1/runs/${id}`);
      return run.status === 'completed' ? run : undefined;
    },
    240_000,
  );
}

const range = async (tab: Page, chart: string, key: 'x' | 'y') =>
  (await tab.getAttribute(chart, `data-${key}-range`))!.split(',').map(Number) as [number, number];

test('dashboard: empty state, scaled and zoomable charts, bounded timeline, downloads, run comparison', {
  skip: chromiumMissing,
  timeout: 420_000,
}, async () => {
  buildDashboard(true);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const procs: Proc[] = [startCoordinator(port, join(mkdtempSync(join(tmpdir(), 'edgefed-dash-cmp-')), 'c.db'))];
  let browser: Browser | null = null;
  try {
    await waitHealthy(url);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    const context = await browser.newContext({ viewport: { width: 1280, height: 1600 }, acceptDownloads: true });
    const tab = await context.newPage();
    await tab.goto(`${url}/dashboard/#token=${ADMIN_TOKEN}`);
    await tab.waitForSelector('#live-status[data-state="open"]');

    // Nothing exists yet: the page says what to do, and the events list has no stray "1.".
    await tab.waitForSelector('#empty-state:not([hidden])');
    assert.match((await tab.textContent('#empty-state')) ?? '', /edgefed node --coordinator/);
    mkdirSync(ARTIFACTS, { recursive: true });
    await tab.screenshot({ path: join(ARTIFACTS, 'dashboard-empty.png'), fullPage: true });

    procs.push(
      ...(await startNodesInOrder(
        url,
        [0, 1].map((i) => ({ data: `mnist-partition:${i}/40`, name: `cmp${i}` })),
      )),
    );
    const long = await runToEnd(url, {
      name: 'long-linear',
      model: 'linear',
      rounds: 55,
      minNodes: 2,
      limitTest: 500,
      lr: 0.05,
      optimizer: 'sgd',
      seed: 3,
    });
    const short = await runToEnd(url, {
      name: 'short-mlp',
      model: 'mlp',
      rounds: 4,
      minNodes: 2,
      limitTest: 500,
      seed: 4,
    });
    assert.equal(long.rounds.length, 55);

    // The page follows the newest run; open the long one.
    await tab.waitForSelector('#empty-state[hidden]', { state: 'attached' });
    await tab.click(`#runs li[data-run-id="${long.id}"]`);
    await tab.waitForFunction(() => Number(document.querySelector('#acc-chart')?.getAttribute('data-points')) === 55);

    // Accuracy axis scaled to the data, not fixed at 0..1, and containing every value.
    const accs = long.rounds.map((r) => r.testAccuracy!).filter((v) => v !== null);
    const [yMin, yMax] = await range(tab, '#acc-chart', 'y');
    assert.ok(yMin <= Math.min(...accs) && yMax >= Math.max(...accs), `y range ${yMin}..${yMax} holds the data`);
    assert.ok(
      yMax - yMin < 0.9,
      `y range ${yMin}..${yMax} is scaled to the data (accuracies ${Math.min(...accs)}..${Math.max(...accs)})`,
    );
    assert.equal(await tab.getAttribute('#loss-chart', 'data-scale'), 'log');
    // The log axis fits the losses too (within a factor 1.25 each side), not whole powers of ten around them.
    const losses = long.rounds.flatMap((r) => [r.testLoss, r.trainLoss]).filter((v): v is number => v != null);
    const [lossMin, lossMax] = await range(tab, '#loss-chart', 'y');
    assert.ok(lossMin <= Math.min(...losses) && lossMax >= Math.max(...losses), `loss axis ${lossMin}..${lossMax}`);
    assert.ok(lossMax <= Math.max(...losses) * 1.3, `loss axis ${lossMin}..${lossMax} fits ${Math.max(...losses)}`);
    // No federated evaluation in these runs: no federated series, not even in the legend.
    assert.ok(long.rounds.every((r) => r.federatedAccuracy === null));
    const series = (await tab.getAttribute('#acc-chart', 'data-series'))!.split('|');
    assert.ok(series.includes('test accuracy') && !series.includes('federated accuracy'), `series: ${series}`);
    assert.equal(await tab.locator('#acc-chart .u-legend').getByText('federated accuracy').count(), 0);

    // Drag across the middle of the plot zooms in on x; a double-click resets.
    const [x0, x1] = await range(tab, '#acc-chart', 'x');
    const over = (await tab.locator('#acc-chart .u-over').boundingBox())!;
    await tab.mouse.move(over.x + over.width * 0.3, over.y + over.height * 0.5);
    await tab.mouse.down();
    await tab.mouse.move(over.x + over.width * 0.6, over.y + over.height * 0.52, { steps: 8 });
    await tab.mouse.up();
    const [z0, z1] = await range(tab, '#acc-chart', 'x');
    assert.ok(z0 > x0 && z1 < x1, `zoomed x ${z0}..${z1} inside ${x0}..${x1}`);
    await tab.mouse.dblclick(over.x + over.width * 0.5, over.y + over.height * 0.5);
    assert.deepEqual(await range(tab, '#acc-chart', 'x'), [x0, x1]);

    // The timeline shows the newest 50 rounds and scrolls for the rest.
    assert.equal(await tab.getAttribute('#timeline', 'data-shown'), '50');
    assert.equal(await tab.locator('#timeline .row[data-round]').count(), 50);
    assert.equal(await tab.getAttribute('#timeline .row[data-round]:first-child', 'data-round'), '55');
    await tab.locator('#timeline').evaluate((el) => el.scrollTo(0, el.scrollHeight));
    await tab.waitForFunction(() => document.querySelector('#timeline')?.getAttribute('data-shown') === '55');

    // After the runs, each node's contribution count is what the coordinator committed.
    const nodes = await admin<{ nodes: { id: number; name: string; roundsContributed: number }[] }>(url, '/v1/nodes');
    for (const n of nodes.nodes) {
      const expected = [long, short].reduce(
        (sum, run) => sum + run.rounds.filter((r) => r.contributed.includes(n.id)).length,
        0,
      );
      assert.equal(n.roundsContributed, expected, `${n.name}: committed contributions`);
      await tab.waitForFunction(
        ([id, count]) =>
          document.querySelector(`#nodes tr[data-node-id="${id}"] td:nth-child(9)`)?.textContent === String(count),
        [n.id, expected] as const,
      );
    }

    // Downloads carry exactly the committed records.
    const [csvDownload] = await Promise.all([tab.waitForEvent('download'), tab.click('#download-csv')]);
    const csv = readFileSync((await csvDownload.path())!, 'utf8')
      .trimEnd()
      .split('\r\n');
    assert.equal(csv.length, 56);
    assert.equal(Number(csv[55].split(',')[1]), long.rounds[54].testAccuracy);
    const [jsonDownload] = await Promise.all([tab.waitForEvent('download'), tab.click('#download-json')]);
    const json = JSON.parse(readFileSync((await jsonDownload.path())!, 'utf8')) as {
      run: { id: number };
      rounds: Round[];
    };
    assert.equal(json.run.id, long.id);
    assert.deepEqual(
      json.rounds.map((r) => r.testAccuracy),
      long.rounds.map((r) => r.testAccuracy),
    );

    // Compare the two runs: both curves, configs side by side with the differing rows marked.
    await tab.check(`#runs li[data-run-id="${long.id}"] input.compare`);
    await tab.check(`#runs li[data-run-id="${short.id}"] input.compare`);
    await tab.waitForSelector(`#compare-section[data-runs="${long.id},${short.id}"]:not([hidden])`);
    const compared = (await tab.getAttribute('#compare-chart', 'data-series'))!.split('|');
    assert.deepEqual(compared, [`#${long.id} test accuracy`, `#${short.id} test accuracy`]);
    for (const key of ['model', 'rounds', 'name', 'seed']) {
      assert.equal(
        await tab.getAttribute(`#compare-table tr[data-key="${key}"]`, 'class'),
        'differs',
        `${key} differs`,
      );
    }
    assert.equal(await tab.getAttribute('#compare-table tr[data-key="minNodes"]', 'class'), '', 'minNodes is the same');
    await tab.screenshot({ path: join(ARTIFACTS, 'dashboard-compare.png'), fullPage: true });

    // With the coordinator gone the page no longer claims the nodes are online.
    killAll(procs);
    await tab.waitForSelector('#live-status[data-state="closed"]');
    assert.equal(await tab.locator('#nodes tr[data-status="online"]').count(), 0);
    assert.equal(await tab.locator('#nodes tr[data-status="unknown"]').count(), 2);
  } finally {
    await browser?.close();
    killAll(procs);
  }
});
