// A deployed node serving int8 (`edgefed node --serve-quantized`), real processes on loopback: the node
// quantises the global version it downloads, calibrated on its own MNIST shard, answers from integer
// inference, says so in every answer and on /v1/model, and agrees with the float version stock tfjs runs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

const N = 100;
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

interface Reply {
  modelVersion: number;
  precision: string;
  predictions: { class: number; confidence: number; modelVersion: number }[];
}

describe('node serving int8', () => {
  const procs: Proc[] = [];
  let url = '';
  let serve = '';
  let inputs: number[][] = [];

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgefed-serve-int8-'));
    const port = await freePort();
    const config = join(dir, 'run.json');
    writeFileSync(config, JSON.stringify({ model: 'mlp', rounds: 3, minNodes: 2, limitTest: 500, seed: 1 }));
    procs.push(startCoordinator(port, join(dir, 'state.db'), config));
    url = `http://127.0.0.1:${port}`;
    await waitHealthy(url);
    const servePort = await freePort();
    serve = `http://127.0.0.1:${servePort}`;
    procs.push(
      ...(await startNodesInOrder(url, [
        {
          data: 'mnist-partition:0/20',
          name: 'q0',
          extra: ['--serve-port', String(servePort), '--model-poll-ms', '200', '--serve-quantized'],
        },
        { data: 'mnist-partition:1/20', name: 'q1' },
      ])),
    );
    const t = loadMnist().test;
    inputs = Array.from({ length: N }, (_, i) => Array.from(t.x.subarray(i * 784, (i + 1) * 784)));
  });
  after(() => killAll(procs));

  test('answers are int8 and follow the float version (same class on >= 97 of 100, confidence within 0.05)', async () => {
    // The last round's version: wait until the run is done and the node serves its newest version.
    const last = await waitFor('the run to finish', async () => {
      const r = await fetch(`${url}/v1/runs/1/models`, { headers: admin });
      const { models } = (await r.json()) as { models: { version: number }[] };
      return models.length >= 3 ? models.at(-1)!.version : undefined;
    });
    const reply = await waitFor('the node to serve the last version', async () => {
      const r = await fetch(`${serve}/v1/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ inputs }),
      });
      const body = r.status === 200 ? ((await r.json()) as Reply) : undefined;
      return body && body.modelVersion === last ? body : undefined;
    });
    assert.equal(reply.precision, 'int8');
    const model = (await (await fetch(`${serve}/v1/model`)).json()) as { precision: string; version: number };
    assert.deepEqual([model.precision, model.version], ['int8', last]);

    await ensureTfjs();
    const tfModel = await tf.loadLayersModel(
      tf.io.http(`${url}/v1/runs/1/models/${last}/model.json`, { requestInit: { headers: admin } }),
    );
    const probs = tf.tidy(
      () => (tfModel.predict(tf.tensor(inputs.flat(), [N, 28, 28, 1])) as tf.Tensor).arraySync() as number[][],
    );
    tfModel.dispose();
    let same = 0;
    let worst = 0;
    reply.predictions.forEach((p, i) => {
      const best = probs[i].indexOf(Math.max(...probs[i]));
      if (p.class === best) same++;
      worst = Math.max(worst, Math.abs(p.confidence - probs[i][p.class]));
    });
    // int8 rounding moves probabilities by a few 1e-3 (core/int8-net.test.ts); a near-tie may flip a class.
    assert.ok(same >= 97, `int8 and float agree on ${same}/${N}`);
    assert.ok(worst <= 0.05, `largest confidence difference ${worst}`);
  });

  test('--serve-quantized without --serve-port is refused before the node starts', async () => {
    const key = join(mkdtempSync(join(tmpdir(), 'edgefed-key-')), 'q2.key');
    const r = await runCli([
      'node',
      ...['--coordinator', url, '--data', 'mnist-partition:2/20', '--name', 'q2', '--key', key],
      '--serve-quantized',
    ]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--serve-quantized need --serve-port/);
  });
});
