// A differentially private run on a real coordinator and real node processes: the noise source it records, and
// what readers with and without the admin token see of it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ADMIN_TOKEN, api, killAll, startNodesInOrder, startTestCoordinator, waitFor } from './deploy-harness.js';

interface DpRound {
  round: number;
  selected: number[];
  contributed: number[];
  examples: number[];
  fused: boolean;
  trainLoss: number | null;
  epsilon: number;
  samplingRate: number;
  noiseSource: string;
  redacted?: string;
}
interface DpRun {
  status: string;
  rounds: DpRound[];
}

const as = async <T>(token: string, url: string, path: string): Promise<T> =>
  (await (await fetch(url + path, { headers: { authorization: `Bearer ${token}` } })).json()) as T;
const asAdmin = <T>(url: string, path: string) => as<T>(ADMIN_TOKEN, url, path);

/** A scoped read token (what a dashboard or an analyst holds): a reader other than the admin. */
async function readToken(url: string): Promise<string> {
  const r = await api<{ token: string }>(url, '/v1/admin/tokens', {
    name: 'analyst',
    scopes: ['runs:read', 'nodes:read'],
    expiresInSeconds: 3600,
  });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  return r.json.token;
}

test('a deployed dpfedavg run draws CSPRNG noise, and only the admin sees who took part', async () => {
  const c = await startTestCoordinator();
  const nodes = await startNodesInOrder(
    c.url,
    [0, 1, 2].map((i) => ({ data: `mnist-partition:${i}/12`, name: `dp${i}` })),
  );
  try {
    const config = {
      model: 'mlp',
      limitTest: 1000,
      seed: 1,
      rounds: 2,
      minNodes: 1,
      fraction: 1,
      strategy: 'dpfedavg:clip=1,noise=0.5',
      waitForNodesMs: 60000,
    };
    const reader = await readToken(c.url);
    const live = new WebSocket(`${c.url.replace('http', 'ws')}/v1/live`, ['edgefed-live', `edgefed-token.${reader}`]);
    const messages: { type: string; record?: DpRound; nodes?: Record<string, unknown>[] }[] = [];
    live.on('message', (m) => messages.push(JSON.parse(String(m))));
    await new Promise((resolve) => live.once('open', resolve));
    const { json } = await api<{ id: number }>(c.url, '/v1/runs', config);
    const admin = await waitFor('run done', async () => {
      const r = await asAdmin<DpRun>(c.url, `/v1/runs/${json.id}`);
      return r.status === 'completed' ? r : undefined;
    });
    assert.ok(admin.rounds.every((r) => r.fused && r.noiseSource === 'csprng' && r.samplingRate === 1));
    assert.deepEqual(admin.rounds[0].contributed, [0, 1, 2]);
    assert.ok(admin.rounds[1].epsilon > admin.rounds[0].epsilon);

    const shown = await as<DpRun>(reader, c.url, `/v1/runs/${json.id}`);
    for (const [k, r] of shown.rounds.entries()) {
      assert.deepEqual([r.selected, r.contributed, r.examples, r.trainLoss], [[], [], [], null]);
      assert.equal(r.epsilon, admin.rounds[k].epsilon, 'epsilon is public');
      assert.match(r.redacted ?? '', /admin only/);
    }
    const events = (
      await as<{ events: { data: Record<string, unknown> }[] }>(reader, c.url, `/v1/runs/${json.id}/events`)
    ).events;
    assert.ok(events.every((e) => e.data.nodeId === undefined));
    const publicNodes = (await as<{ nodes: Record<string, unknown>[] }>(reader, c.url, '/v1/nodes')).nodes;
    assert.ok(
      publicNodes.length === 3 &&
        publicNodes.every((n) => n.roundsContributed === undefined && n.bytesSent === undefined),
    );
    const adminNodes = (await asAdmin<{ nodes: { roundsContributed: number }[] }>(c.url, '/v1/nodes')).nodes;
    assert.deepEqual(
      adminNodes.map((n) => n.roundsContributed),
      [2, 2, 2],
    );
    // The live feed (no token) carries what public readers get.
    await waitFor(
      'rounds on the live feed',
      async () => (messages.filter((m) => m.type === 'round').length === 2 ? true : undefined),
      10_000,
    );
    live.close();
    assert.ok(
      messages
        .filter((m) => m.type === 'round')
        .every((m) => m.record!.contributed.length === 0 && m.record!.trainLoss === null),
    );
    // (node tables pushed before the run was created may show counts: no DP run existed then)
    const afterFirstRound = messages.slice(messages.findIndex((m) => m.type === 'round'));
    assert.ok(
      afterFirstRound
        .filter((m) => m.type === 'nodes')
        .every((m) => m.nodes!.every((n) => n.roundsContributed === undefined)),
    );
  } finally {
    killAll([...nodes, c.proc]);
  }
});
