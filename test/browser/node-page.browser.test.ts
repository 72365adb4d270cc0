// Browser suite: the browser edge node. Starts a real coordinator process (auth on) and one Node.js node
// process on loopback, opens the coordinator's /node/ page in headless Chromium with a join token in the
// URL, and runs a 2-round federation that needs both nodes: the committed round records must list the
// browser node as a contributor, and the page must show the rounds it contributed. Also: a wrong join
// token is refused on the page and enrols nothing; a reloaded page reconnects with its stored key and no
// token. Saves test-artifacts/node-page.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import {
  ADMIN_TOKEN,
  api,
  freePort,
  joinToken,
  killAll,
  runView,
  startCoordinator,
  startNodeEnrolled,
  waitFor,
  waitHealthy,
  type Proc,
} from '../deploy-harness.js';
import type { NodePageState } from '../../web/node/main.js';
import { buildWebPage, CHROMIUM, CHROMIUM_ARGS, chromiumMissing } from './serve.js';

const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const BROWSER_NODE = 'browser-tab-1';

interface NodeView {
  id: number;
  name: string;
  online: boolean;
  resources: { platform?: string; cores?: number };
}

async function pageState(tab: Page): Promise<NodePageState> {
  return (await tab.evaluate(() => window.__edgefedNode)) as NodePageState;
}

async function nodes(url: string): Promise<NodeView[]> {
  return (await api<{ nodes: NodeView[] }>(url, '/v1/nodes')).json.nodes;
}

test('the browser node page enrols, trains in the tab and its update is fused into the rounds', {
  skip: chromiumMissing,
  timeout: 300_000,
}, async () => {
  console.log(buildWebPage('node'));
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-bnode-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const procs: Proc[] = [];
  let browser: Browser | null = null;
  const consoleLines: string[] = [];
  try {
    procs.push(startCoordinator(port, join(dir, 'coord.db')));
    await waitHealthy(url);
    procs.push(await startNodeEnrolled(url, 'mnist-partition:0/10', 'node-0'));
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });

    // A wrong join token: the page says why, and no node of that name appears.
    const bad = await context.newPage();
    await bad.goto(`${url}/node/?name=intruder&token=${'0'.repeat(48)}&shard=2/10&autostart=1#token=${ADMIN_TOKEN}`);
    await bad.waitForFunction(() => window.__edgefedNode?.state === 'error', undefined, { timeout: 60_000 });
    const refused = await pageState(bad);
    assert.match(refused.error ?? '', /enrolment refused \(401\)/);
    assert.match(await bad.locator('#status').innerText(), /enrolment refused/);
    await bad.close();

    const tab = await context.newPage();
    tab.on('console', (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
    tab.on('pageerror', (e) => consoleLines.push(`[pageerror] ${e.message}`));
    const token = await joinToken(url);
    const pageUrl = `${url}/node/?name=${BROWSER_NODE}&shard=1/10&autostart=1`;
    await tab.goto(`${pageUrl}&token=${token}#token=${ADMIN_TOKEN}`); // the join token, then a read token for the shard
    await tab.waitForFunction(() => window.__edgefedNode?.state === 'connected', undefined, { timeout: 60_000 });
    const connected = await pageState(tab);
    assert.match(connected.kernels, /^wasm-simd/, `the page trains on ${connected.kernels}`);
    assert.equal(connected.examples, 4800, 'shard 1/10 of MNIST is 6000 images, 20% held out for validation');
    const registered = await waitFor(
      'both nodes online',
      async () => {
        const all = await nodes(url);
        return all.filter((n) => n.online).length === 2 ? all : undefined;
      },
      60_000,
    );
    const browserNode = registered.find((n) => n.name === BROWSER_NODE);
    assert.ok(browserNode, 'the browser node is registered under its name');
    assert.equal(browserNode.id, connected.nodeId);
    assert.match(browserNode.resources.platform ?? '', /^browser-chrom/);
    assert.ok(!registered.some((n) => n.name === 'intruder'), 'the refused page enrolled a node');

    const created = await api<{ id: number }>(url, '/v1/runs', {
      name: 'browser-node',
      model: 'mlp',
      rounds: 2,
      minNodes: 2,
      fraction: 1,
      evalFraction: 1,
      limitTest: 1000,
      seed: 7,
      roundTimeoutMs: 120_000,
    });
    assert.equal(created.status, 201);
    const run = await waitFor(
      'run completed',
      async () => {
        const v = await runView(url, created.json.id);
        if (v.status === 'failed' || v.status === 'stopped') throw new Error(`run ${v.status}`);
        return v.status === 'completed' ? v : undefined;
      },
      180_000,
    );
    await tab.waitForFunction(() => (window.__edgefedNode?.roundsContributed.length ?? 0) >= 2, undefined, {
      timeout: 30_000,
    });
    const shown = await pageState(tab);
    mkdirSync(ARTIFACTS, { recursive: true });
    await tab.screenshot({ path: join(ARTIFACTS, 'node-page.png'), fullPage: true });

    for (const r of run.rounds) {
      console.log(
        `round ${r.round}: contributed ${r.contributed.join(',')}, fused ${r.fused}, test accuracy ${r.testAccuracy}`,
      );
      assert.ok(r.fused, `round ${r.round} was not fused`);
      assert.ok(
        r.contributed.includes(browserNode.id),
        `round ${r.round} lists contributors ${r.contributed}, not the browser node ${browserNode.id}`,
      );
      assert.ok(
        shown.roundsContributed.includes(r.round),
        `the page lists rounds ${shown.roundsContributed}, not ${r.round}`,
      );
    }
    assert.equal(run.rounds.length, 2);
    assert.ok(run.rounds[1].testAccuracy > 0.5, `2 rounds on 2 shards reached only ${run.rounds[1].testAccuracy}`);
    console.log(`page: ${JSON.stringify(shown)}`);
    assert.ok(
      shown.lastTrain && Number.isFinite(shown.lastTrain.loss) && shown.lastTrain.accuracy > 0.5,
      `last training ${JSON.stringify(shown.lastTrain)}`,
    );
    assert.ok(shown.lastEval && shown.lastEval.accuracy > 0.5, `last evaluation ${JSON.stringify(shown.lastEval)}`);
    assert.ok(shown.bytesIn > 0 && shown.bytesOut > 0);
    assert.match(await tab.locator('td[data-field="rounds-contributed"]').innerText(), /^2 \(/);

    // A reload reconnects with the key kept in localStorage: no token, same node.
    await tab.goto(pageUrl);
    await tab.waitForFunction(() => window.__edgefedNode?.state === 'connected', undefined, { timeout: 60_000 });
    assert.equal((await pageState(tab)).nodeId, browserNode.id);
  } catch (e) {
    const logs = procs.map((p, i) => `--- process ${i}\n${p.output().slice(-3000)}`).join('\n');
    throw new Error(
      `${e instanceof Error ? e.message : String(e)}\nbrowser console:\n${consoleLines.slice(-40).join('\n')}\n${logs}`,
      { cause: e },
    );
  } finally {
    await browser?.close();
    killAll(procs);
    rmSync(dir, { recursive: true, force: true });
  }
});
