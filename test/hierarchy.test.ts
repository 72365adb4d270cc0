// Hierarchical fusion wiring: a coordinator, 2 gateway processes and their local node processes on loopback,
// a tiny linear model, a local node killed mid-round, and a gateway left with no nodes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { api, examplesOf, killAll, runView, startCloud, startSite, waitFor, type Proc } from './deploy-harness.js';
import { runCli } from './helpers.js';

type Round = Awaited<ReturnType<typeof runView>>['rounds'][number] & { examples: number[]; federatedAccuracy: number };

const done = (v: { status: string }) => ['completed', 'stopped', 'failed'].includes(v.status);

/** The gateway's 'edge round' log lines (pino JSON). */
function edgeRounds(
  p: Proc,
): { cloudRound: number; edgeRound: number; contributed: number[]; failures: { nodeId: number; error: string }[] }[] {
  return p
    .output()
    .split('\n')
    .filter((l) => l.includes('"edge round"'))
    .map((l) => JSON.parse(l));
}

test('coordinator + 2 gateways: edge rounds per cloud round, sites weighted by their data, a local node killed mid-round, a gateway with no nodes', async () => {
  const { url, dir, proc } = await startCloud('edgefed-hier-');
  const procs: Proc[] = [proc];
  try {
    const bogus = runCli([
      'gateway',
      '--coordinator',
      url,
      '--port',
      '0',
      '--name',
      'gwX',
      '--key',
      join(dir, 'gwX.key'),
      '--join-token',
      'not-a-token-from-this-coordinator',
    ]);
    const gatewayArgs = ['--edge-rounds', '2', '--wait-for-nodes-ms', '3000', '--round-timeout-ms', '60000'];
    // a1 holds each answer for 2 s, so it is mid-round when it is killed; gwA enrols first: it is cloud node 0
    const a = await startSite(url, 'gwA', gatewayArgs, [
      { data: 'mnist-partition:0/12', name: 'a0' },
      { data: 'mnist-partition:1/12', name: 'a1', extra: ['--delay-ms', '2000'] },
    ]);
    procs.push(a.gateway, ...a.nodes);
    const b = await startSite(url, 'gwB', gatewayArgs, [
      { data: 'mnist-partition:2/12', name: 'b0' },
      { data: 'mnist-partition:3/12', name: 'b1' },
    ]);
    procs.push(b.gateway, ...b.nodes);
    const [aNodes, bNodes] = [a.nodes, b.nodes];

    const refused = await api<{ error: { code: string } }>(a.url, '/v1/runs', { model: 'linear' });
    assert.equal(refused.status, 409, 'a gateway takes its runs from its coordinator');

    const run = await api<{ id: number }>(url, '/v1/runs', {
      model: 'linear',
      rounds: 2,
      minNodes: 2,
      evalFraction: 1,
      limitTest: 2000,
      seed: 1,
      roundTimeoutMs: 60000,
    });
    await waitFor('a1 given work', async () => (aNodes[1].output().includes('configured for run') ? true : undefined));
    aNodes[1].child.kill('SIGKILL');
    const v = await waitFor('run done', async () => {
      const r = await runView(url, run.json.id);
      return done(r) ? r : undefined;
    });
    const rounds = v.rounds as Round[];
    assert.equal(v.status, 'completed');
    assert.equal(rounds.length, 2);
    const a0 = await examplesOf(a.url, ['a0']);
    const bSum = await examplesOf(b.url, ['b0', 'b1']);
    assert.ok(a0 > 0 && bSum > a0, `examples a0 ${a0}, b0+b1 ${bSum}`);
    for (const r of rounds) {
      assert.ok(r.fused);
      assert.deepEqual(r.contributed, [0, 1], 'both gateways contribute');
      // gateway A lost a1 in its first edge round, so it speaks for a0's data alone; B for both its nodes
      assert.deepEqual(r.examples, [a0, bSum]);
      assert.ok(
        r.federatedAccuracy > 0.5 && r.testAccuracy > 0.5,
        `federated ${r.federatedAccuracy}, test ${r.testAccuracy}`,
      );
    }
    console.log(
      `hierarchy wiring: test accuracy ${rounds.map((r) => r.testAccuracy.toFixed(4)).join(', ')}; site examples ${JSON.stringify(rounds.map((r) => r.examples))}`,
    );
    const aEdge = edgeRounds(a.gateway);
    assert.deepEqual(
      aEdge.map((e) => [e.cloudRound, e.edgeRound]),
      [
        [1, 1],
        [1, 2],
        [2, 3],
        [2, 4],
      ],
      'K = 2 edge rounds per cloud round, numbered on',
    );
    assert.match(
      aEdge[0].failures.find((f) => f.nodeId === 1)?.error ?? '',
      /connection lost/,
      'a1 died in the first edge round',
    );
    assert.ok(aEdge.every((e) => e.contributed.length === 1 && e.contributed[0] === 0));
    assert.ok(edgeRounds(b.gateway).every((e) => e.contributed.length === 2));

    const refusedJoin = await bogus;
    assert.equal(refusedJoin.code, 1);
    assert.match(refusedJoin.stderr, /enrolment refused \(401\)/);

    // gateway B loses its nodes: it answers the next cloud round with an error, gateway A carries on
    killAll(bNodes);
    await waitFor('gateway B without nodes', async () =>
      (await api<{ nodes: { online: boolean }[] }>(b.url, '/v1/nodes')).json.nodes.some((n) => n.online)
        ? undefined
        : true,
    );
    const alone = await api<{ id: number }>(url, '/v1/runs', {
      model: 'linear',
      rounds: 1,
      minNodes: 1,
      limitTest: 2000,
      seed: 2,
      roundTimeoutMs: 60000,
    });
    const w = await waitFor('second run done', async () => {
      const r = await runView(url, alone.json.id);
      return done(r) ? r : undefined;
    });
    assert.equal(w.status, 'completed');
    assert.deepEqual(w.rounds[0].contributed, [0]);
    assert.match(
      w.rounds[0].failures.find((f) => f.nodeId === 1)?.error ?? '',
      /gateway could fuse no edge round: 0 live nodes/,
    );
  } finally {
    killAll(procs);
  }
});

test('gateway flags (and up --gateways): --help has an example; bad values get a one-line error, exit code 2, and no key file', async () => {
  const help = await runCli(['gateway', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Examples:\n {2}edgefed gateway --coordinator/);
  assert.match(help.stdout, /--edge-rounds <k>/);
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-gw-bad-'));
  const key = join(dir, 'gw.key');
  const ok = ['--coordinator', 'http://127.0.0.1:9', '--key', key];
  // the flag parsers themselves are shared with every command (cli.test.ts); these are the gateway's own checks
  const cases: [string[], RegExp][] = [
    [['--edge-rounds', '0'], /--edge-rounds/],
    [['--auth', 'maybe'], /--auth: expected on or off/],
    [['--coordinator', 'ftp://x'], /--coordinator: expected an http\(s\) or ws\(s\) URL/],
  ];
  const runs = await Promise.all([
    ...cases.map(([extra]) => runCli(['gateway', ...ok, ...extra])),
    runCli(['up', '--gateways', '5', '--nodes', '4']),
    runCli(['gateway', '--key', key]),
  ]);
  cases.forEach(([extra, message], i) => {
    assert.equal(runs[i].code, 2, `${extra.join(' ')}: ${runs[i].stderr}`);
    assert.match(runs[i].stderr, message);
    assert.equal(runs[i].stderr.trim().split('\n').length, 1, runs[i].stderr);
  });
  assert.equal(runs.at(-2)!.code, 2);
  assert.match(runs.at(-2)!.stderr, /--gateways 5: each gateway needs a node, and there are --nodes 4/);
  assert.equal(runs.at(-1)!.code, 2, '--coordinator is required');
  assert.match(runs.at(-1)!.stderr, /--coordinator/);
  assert.ok(!existsSync(key), 'refused flags create no identity');
});
