// Browser suite: the dashboard during a real run. A coordinator process and three node processes (real
// MNIST shards, signed frames) on loopback; headless Chromium opens /dashboard/ before any node joins,
// and must see, pushed over the live feed alone, the node table fill with the three nodes and the
// accuracy chart grow to at least two rounds. Saves test-artifacts/dashboard.png.
// Needs /usr/bin/chromium (apt-get install chromium); skipped with a message when it is absent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
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
  waitHealthy,
  type Proc,
} from '../deploy-harness.js';
import { buildDashboard } from '../support/dashboard.js';
import { CHROMIUM, CHROMIUM_ARGS, chromiumMissing } from './serve.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ARTIFACTS = join(ROOT, 'test-artifacts');
const NODES = 3;
const ROUNDS = 4;

const skip = chromiumMissing;

test('the dashboard shows a live run: the node table fills and the accuracy chart grows', {
  skip,
  timeout: 300_000,
}, async () => {
  buildDashboard();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const procs: Proc[] = [startCoordinator(port, join(mkdtempSync(join(tmpdir(), 'edgefed-dashb-')), 'c.db'))];
  let browser: Browser | null = null;
  const consoleLines: string[] = [];
  try {
    await waitHealthy(url);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    const tab = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
    tab.on('console', (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
    tab.on('pageerror', (e) => consoleLines.push(`[pageerror] ${e.message}`));
    await tab.goto(`${url}/dashboard/#token=${ADMIN_TOKEN}`);
    await tab.waitForSelector('#live-status[data-state="open"]', { timeout: 30_000 });
    // Nothing yet: whatever appears from here on arrived over the live feed.
    assert.equal(await tab.locator('#nodes tbody tr[data-node-id]').count(), 0);
    assert.equal(await tab.getAttribute('#acc-chart', 'data-points'), '0');

    procs.push(
      ...(await startNodesInOrder(
        url,
        Array.from({ length: NODES }, (_, i) => ({
          data: `mnist-partition:${i}/12`,
          name: `dash${i}`,
          extra: ['--tags', `site=s${i}`, ...(i < 2 ? ['--share-labels'] : [])],
        })),
      )),
    );
    await tab.waitForFunction(
      (n) => document.querySelectorAll('#nodes tbody tr[data-node-id][data-online="true"]').length === n,
      NODES,
      { timeout: 30_000 },
    );

    const created = await api<{ id: number }>(url, '/v1/runs', {
      name: 'dashboard',
      model: 'mlp',
      rounds: ROUNDS,
      minNodes: NODES,
      limitTest: 1000,
      seed: 5,
    });
    assert.equal(created.status, 201);
    const seen: number[] = [];
    await tab.waitForFunction(
      () => Number(document.querySelector('#acc-chart')?.getAttribute('data-points')) >= 1,
      undefined,
      { timeout: 120_000, polling: 100 },
    );
    seen.push(Number(await tab.getAttribute('#acc-chart', 'data-points')));
    await tab.waitForFunction(
      () => Number(document.querySelector('#acc-chart')?.getAttribute('data-points')) >= 2,
      undefined,
      { timeout: 120_000, polling: 100 },
    );
    seen.push(Number(await tab.getAttribute('#acc-chart', 'data-points')));
    console.log(`accuracy chart points seen: ${seen.join(' -> ')}`);

    mkdirSync(ARTIFACTS, { recursive: true });
    await tab.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });

    assert.ok((await tab.locator('#acc-chart canvas').count()) >= 1, 'uPlot drew a canvas');
    const rows = await tab.locator('#nodes tbody tr[data-node-id]').allTextContents();
    assert.equal(rows.length, NODES);
    for (let i = 0; i < NODES; i++)
      assert.ok(
        rows.some((r) => r.includes(`dash${i}`) && r.includes(`site=s${i}`)),
        `node dash${i} in the table: ${rows.join(' | ')}`,
      );
    assert.equal(
      await tab.locator('#histograms figure[data-node-id]').count(),
      2,
      'two nodes share their label counts',
    );
    assert.ok(
      (await tab.locator('#timeline .row[data-round]').count()) >= 2,
      'the timeline lists the committed rounds',
    );
    assert.ok((await tab.locator('#timeline .chip.ok').count()) >= NODES, 'contributors appear in the timeline');
    assert.equal(await tab.locator('#runs li[data-run-id]').count(), 1);

    // What the page drew agrees with what the coordinator committed.
    const run = (await api<{ rounds: { round: number; testAccuracy: number }[] }>(url, `/v1/runs/${created.json.id}`))
      .json;
    assert.ok(run.rounds.length >= 2);
    assert.ok(
      run.rounds.at(-1)!.testAccuracy > 0.5,
      `test accuracy after ${run.rounds.length} rounds: ${run.rounds.at(-1)!.testAccuracy}`,
    );
    writeFileSync(join(ARTIFACTS, 'dashboard-rounds.json'), JSON.stringify(run.rounds, null, 2));
  } catch (e) {
    const diag = `\nbrowser console:\n${consoleLines.join('\n')}\ncoordinator output (tail):\n${procs[0].output().slice(-3000)}`;
    throw new Error(`${e instanceof Error ? e.message : String(e)}${diag}`, { cause: e });
  } finally {
    await browser?.close();
    killAll(procs);
  }
});
