// Serving on edge nodes against real processes on loopback: a node answers predictions with the global
// model version in use, switches to newer versions during the run without restarting, escalates
// low-confidence samples to the coordinator's larger model, and rejects bad requests without effect.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import {
  ADMIN_TOKEN,
  freePort,
  killAll,
  startCoordinator,
  startNodesInOrder,
  waitFor,
  waitHealthy,
  type Proc,
} from './deploy-harness.js';
import { runCli } from './helpers.js';
import { loadMnist } from '../src/data/mnist.js';
import { ensureTfjs, tf } from '../src/model/tfjs.js';
import { newIdentity } from '../src/core/identity.js';
import { signedFetch, HttpError } from '../src/node/signed-fetch.js';

const THRESHOLD = 0.9;
const N = 40;
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

interface Answer {
  class: number;
  confidence: number;
  decision: string;
  modelVersion: number | string;
  edge?: { class: number; confidence: number; modelVersion: number };
  escalationFailed?: string;
}
interface PredictReply {
  modelVersion: number;
  scaling?: { statistics: string };
  predictions: Answer[];
}

const post = async (url: string, body: string, headers: Record<string, string> = {}) => {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  return { status: r.status, json: (await r.json()) as PredictReply & { error?: { code: string } } };
};
/**
 * A raw POST. A body above 1 MB is announced (content-length) but not sent: the server must refuse it on
 * the header alone, and the client reads that answer instead of failing on a half-written body.
 */
const postRaw = (url: string, body: string) =>
  new Promise<{ status: number; json: { error?: { code: string } } }>((resolve, reject) => {
    const huge = body.length > 1e6;
    const req = request(
      url,
      { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          resolve({ status: res.statusCode!, json: JSON.parse(text) });
          if (huge) req.destroy();
        });
      },
    );
    req.on('error', (e) => (huge ? undefined : reject(e)));
    if (huge) req.flushHeaders();
    else req.end(body);
  });
const getJson = async <T>(url: string, headers: Record<string, string> = {}) => {
  const r = await fetch(url, { headers });
  return { status: r.status, json: (await r.json()) as T };
};
/** The value of one sample of a Prometheus text exposition (labels as written, e.g. '{decision="accept"}'). */
const metric = (text: string, name: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `metric ${name} missing`);
  return Number(line.split(' ')[1]);
};

describe('node serving', () => {
  const procs: Proc[] = [];
  let url = '';
  let serve = '';
  let inputs: number[][] = [];
  let nodePid = 0;

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgefed-serve-'));
    // The escalation model: McMahan's 2NN (two 200-unit layers, vs the edge's 128-unit mlp), trained centrally
    // (one node holding all its data) by a real simulate run, saved in the tfjs format.
    const esc = await runCli([
      'simulate',
      '--model',
      '2nn',
      '--nodes',
      '1',
      '--rounds',
      '1',
      '--limit-train',
      '4000',
      '--limit-test',
      '500',
      '--seed',
      '3',
      '--quiet',
      '--out',
      join(dir, 'esc'),
    ]);
    assert.equal(esc.code, 0, esc.stderr);
    const port = await freePort();
    const config = join(dir, 'run.json');
    writeFileSync(
      config,
      JSON.stringify({ model: 'mlp', rounds: 40, minNodes: 2, limitTest: 500, seed: 1, waitForNodesMs: 120000 }),
    );
    procs.push(
      startCoordinator(port, join(dir, 'state.db'), config, ['--escalation-model', join(dir, 'esc', 'model')]),
    );
    url = `http://127.0.0.1:${port}`;
    await waitHealthy(url);
    const servePort = await freePort();
    serve = `http://127.0.0.1:${servePort}`;
    // The serving node trains slowly (800 ms per answer), so each version is served long enough to be seen.
    procs.push(
      ...(await startNodesInOrder(url, [
        {
          data: 'mnist-partition:0/30',
          name: 's0',
          extra: [
            '--serve-port',
            String(servePort),
            '--model-poll-ms',
            '100',
            '--threshold',
            String(THRESHOLD),
            '--escalate',
            '--delay-ms',
            '800',
          ],
        },
        { data: 'mnist-partition:1/30', name: 's1' },
      ])),
    );
    nodePid = procs[1].child.pid!;
    const test = loadMnist().test;
    inputs = Array.from({ length: N }, (_, i) => Array.from(test.x.subarray(i * 784, (i + 1) * 784)));
  });
  after(() => killAll(procs));

  test('predictions switch to the newer global version during the run, without a restart', async () => {
    const first = await waitFor('a first model version on the node', async () => {
      const r = await post(`${serve}/v1/predict`, JSON.stringify({ inputs }));
      return r.status === 200 ? r.json : undefined;
    });
    const v1 = first.modelVersion;
    assert.ok(first.predictions.every((p) => p.modelVersion === v1 || p.decision === 'escalated'));
    await waitFor('a newer version on the node', async () => {
      const m = await getJson<{ version: number | null }>(`${serve}/v1/model`);
      return m.json.version !== null && m.json.version > v1 ? true : undefined;
    });
    const second = (await post(`${serve}/v1/predict`, JSON.stringify({ inputs }))).json;
    assert.ok(second.modelVersion > v1, `version ${second.modelVersion} after ${v1}`);
    const edgeConf = (r: PredictReply) => r.predictions.map((p) => p.edge?.confidence ?? p.confidence);
    assert.notDeepEqual(edgeConf(second), edgeConf(first), 'the new version answers differently');
    // Enough versions seen: stop the run (the versions stay in the registry) so the other tests run on a quiet machine.
    assert.equal(
      (
        await fetch(`${url}/v1/runs/1/stop`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...admin },
          body: '{}',
        })
      ).status,
      200,
    );
    const model = await getJson<{ pid: number; version: number }>(`${serve}/v1/model`);
    assert.equal(model.json.pid, nodePid, 'same process: no restart');
    assert.equal(procs[1].child.exitCode, null);
    const metrics = await (await fetch(`${serve}/metrics`)).text();
    assert.ok(metric(metrics, 'edgefed_node_model_switches_total') >= 2);
    assert.ok(metric(metrics, 'edgefed_node_rounds_trained_total') >= 1);

    // The node answered with exactly the registry's version: stock tfjs loads it over HTTP and agrees.
    await ensureTfjs();
    const tfModel = await tf.loadLayersModel(
      tf.io.http(`${url}/v1/runs/1/models/${second.modelVersion}/model.json`, { requestInit: { headers: admin } }),
    );
    const probs = tf.tidy(
      () =>
        (tfModel.predict(tf.tensor(inputs.flat(), [inputs.length, 28, 28, 1])) as tf.Tensor).arraySync() as number[][],
    );
    tfModel.dispose();
    second.predictions.forEach((p, i) => {
      const edge = p.edge ?? p;
      const best = probs[i].indexOf(Math.max(...probs[i]));
      assert.equal(edge.class, best, `sample ${i}`);
      assert.ok(
        Math.abs(edge.confidence - probs[i][best]) < 1e-4,
        `sample ${i}: ${edge.confidence} vs ${probs[i][best]}`,
      );
    });
    const list = await getJson<{ models: { version: number; round: number; sha256: string }[] }>(
      `${url}/v1/runs/1/models`,
      admin,
    );
    assert.ok(
      list.json.models.some((m) => m.version === v1) && list.json.models.some((m) => m.version === second.modelVersion),
    );
    assert.ok(list.json.models.every((m) => m.version === m.round && /^[0-9a-f]{64}$/.test(m.sha256)));
  });

  test('escalation: exactly the samples below the threshold go to the larger model, and are counted', async () => {
    const before = await (await fetch(`${serve}/metrics`)).text();
    const r = (await post(`${serve}/v1/predict`, JSON.stringify({ inputs }))).json;
    const after = await (await fetch(`${serve}/metrics`)).text();
    const edgeConfidence = r.predictions.map((p) => p.edge?.confidence ?? p.confidence);
    const below = edgeConfidence.filter((c) => c < THRESHOLD).length;
    const escalated = r.predictions.filter((p) => p.decision === 'escalated');
    assert.ok(
      below > 0 && below < N,
      `want a mix of confident and unsure samples, got ${below} of ${N} below ${THRESHOLD}`,
    );
    assert.equal(escalated.length, below);
    assert.ok(
      r.predictions.every((p) => !p.escalationFailed && (p.decision === 'escalated') === (p.edge !== undefined)),
    );
    for (const p of r.predictions) if (p.decision === 'accept') assert.ok(p.confidence >= THRESHOLD);
    const delta = (name: string) => metric(after, name) - metric(before, name);
    assert.equal(delta('edgefed_node_escalations_total'), below);
    assert.equal(delta('edgefed_node_predictions_total{decision="escalated"}'), below);
    assert.equal(delta('edgefed_node_predictions_total{decision="accept"}'), N - below);
    assert.equal(delta('edgefed_node_escalation_failures_total'), 0);
    // The escalated answers are the coordinator's escalation model's (a different model from the edge's).
    const rows = r.predictions.flatMap((p, i) => (p.decision === 'escalated' ? [inputs[i]] : []));
    const cloud = await post(`${url}/v1/predict`, JSON.stringify({ model: 'escalation', inputs: rows }), admin);
    assert.equal(cloud.status, 200);
    assert.deepEqual(
      escalated.map((p) => [p.class, p.confidence, p.modelVersion]),
      cloud.json.predictions.map((p) => [p.class, p.confidence, p.modelVersion]),
    );
    assert.match(String(cloud.json.modelVersion), /^escalation:[0-9a-f]{12}$/);
  });

  test('bad requests get 400 with a code and change nothing', async () => {
    const before = await (await fetch(`${serve}/metrics`)).text();
    const row = inputs[0];
    const cases: [string, string, number][] = [
      ['{not json', 'bad_json', 400],
      ['[1,2]', 'bad_request', 400],
      ['{}', 'bad_request', 400],
      [JSON.stringify({ inputs: [row], input: row }), 'bad_request', 400],
      [JSON.stringify({ inputs: [] }), 'empty', 400],
      [JSON.stringify({ inputs: [[1, 2, 3]] }), 'bad_shape', 400],
      [JSON.stringify({ inputs: row }), 'bad_shape', 400],
      [JSON.stringify({ inputs: [[...row.slice(1), 'x']] }), 'not_finite', 400],
      [JSON.stringify({ input: [...row.slice(1), null] }), 'not_finite', 400],
      [JSON.stringify({ input: [...row.slice(1), 1e39] }), 'not_finite', 400],
      [JSON.stringify({ inputs: Array.from({ length: 1025 }, () => []) }), 'too_many_rows', 400],
      [`{"inputs":[[${'0,'.repeat(9_000_000)}0]]}`, 'too_large', 413],
    ];
    for (const [body, code, status] of cases) {
      const r = await postRaw(`${serve}/v1/predict`, body);
      assert.equal(r.status, status, `${body.slice(0, 40)}: ${JSON.stringify(r.json).slice(0, 200)}`);
      assert.equal(r.json.error?.code, code, body.slice(0, 40));
    }
    const after = await (await fetch(`${serve}/metrics`)).text();
    for (const name of [
      'edgefed_node_predictions_total{decision="accept"}',
      'edgefed_node_predictions_total{decision="abstain"}',
      'edgefed_node_predictions_total{decision="escalated"}',
      'edgefed_node_escalations_total',
    ]) {
      assert.equal(metric(after, name), metric(before, name), name);
    }
    assert.equal(
      metric(after, 'edgefed_node_predict_rejected_total{code="bad_shape"}') -
        (before.includes('code="bad_shape"')
          ? metric(before, 'edgefed_node_predict_rejected_total{code="bad_shape"}')
          : 0),
      2,
    );
  });

  test('the model registry needs an enrolled node or the admin token, and names bad versions', async () => {
    assert.equal((await getJson(`${url}/v1/runs/1/models`)).status, 401);
    assert.equal((await getJson(`${url}/v1/runs/1/models/latest/model.json`)).status, 401);
    assert.equal((await post(`${url}/v1/predict`, JSON.stringify({ model: 'escalation', inputs }))).status, 401);
    const stranger = { name: 's0', secretKey: newIdentity().secretKey }; // an enrolled name, the wrong key
    await assert.rejects(signedFetch(url, '/v1/runs/1/models', stranger), (e: HttpError) => e.status === 401);
    await assert.rejects(
      signedFetch(url, '/v1/runs/1/models', { name: 'nobody', secretKey: stranger.secretKey }),
      (e: HttpError) => e.status === 401,
    );
    assert.equal(
      (await getJson<{ error: { code: string } }>(`${url}/v1/runs/1/models/0/model.json`, admin)).json.error.code,
      'bad_version',
    );
    assert.equal((await getJson(`${url}/v1/runs/1/models/999/model.json`, admin)).status, 404);
    assert.equal((await getJson(`${url}/v1/runs/99/models`, admin)).status, 404);
    const latest = await fetch(`${url}/v1/runs/1/models/latest/weights.bin`, { headers: admin });
    assert.equal(latest.status, 200);
    assert.equal((await latest.arrayBuffer()).byteLength, (784 * 128 + 128 + 128 * 10 + 10) * 4);
    const bad = await post(`${url}/v1/predict`, JSON.stringify({ runId: 1, inputs: [[1]] }), admin);
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error?.code, 'bad_shape');
    const ok = await post(
      `${url}/v1/predict`,
      JSON.stringify({ runId: 1, threshold: THRESHOLD, inputs: inputs.slice(0, 3) }),
      admin,
    );
    assert.equal(ok.status, 200);
    assert.equal(ok.json.predictions.length, 3);
    // MNIST pixels are taken as they are: the coordinator says no statistics scaled them.
    assert.deepEqual(ok.json.scaling, { statistics: 'none' });
  });
});

test('serving flags without --serve-port, or a threshold outside [0, 1], are usage errors', async () => {
  const base = [
    'node',
    '--coordinator',
    'http://127.0.0.1:9',
    '--data',
    'mnist-partition:0/10',
    '--name',
    'flags',
    '--key',
    join(mkdtempSync(join(tmpdir(), 'edgefed-flags-')), 'k.key'),
  ];
  const noPort = await runCli([...base, '--escalate']);
  assert.equal(noPort.code, 2);
  assert.match(noPort.stderr, /need --serve-port/);
  const badThreshold = await runCli([...base, '--serve-port', '0', '--threshold', '1.5']);
  assert.equal(badThreshold.code, 2);
  assert.match(badThreshold.stderr, /threshold/);
});
