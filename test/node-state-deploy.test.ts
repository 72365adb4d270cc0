// A deployed node's state on disk and its personalised serving, with real coordinator and node processes on
// loopback. SCAFFOLD: a node killed with -9 mid-run and restarted reads back the control variate file it left
// (the same sha256) and goes on updating it; a corrupt file left in its place is set aside with a warning and the
// node trains on from a fresh state. FedPer: the node's /v1/predict answers with its personalised model (the served
// global body with the head in its state file, checked bit for bit) and says so; a run without personal state
// answers with the global model.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import {
  ADMIN_TOKEN,
  freePort,
  killAll,
  startNode,
  startNodesInOrder,
  startTestCoordinator,
  waitFor,
  waitForLog,
  waitForSteady,
  runView,
  type Proc,
} from './deploy-harness.js';
import { loadMnist } from '../src/data/mnist.js';
import { makeLayout } from '../src/core/params.js';
import { builtinModel, tensorSpecs } from '../src/model/spec.js';
import { decodeNodeState } from '../src/node/state-file.js';
import { headSlots, withHead } from '../src/core/personal-head.js';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const layout = makeLayout(tensorSpecs(builtinModel('mlp', [28, 28, 1], 10)));
const stateFile = (dir: string) => join(dir, 'run-1.node-state.json');
const kept = (dir: string) =>
  JSON.parse(readFileSync(stateFile(dir), 'utf8')) as { sha256: string; round: number; kind: string };
const sha = (v: Float32Array) =>
  createHash('sha256')
    .update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength))
    .digest('hex');

async function killed(p: Proc): Promise<void> {
  p.child.kill('SIGKILL');
  if (p.child.exitCode === null && p.child.signalCode === null) await new Promise((r) => p.child.once('exit', r));
}

interface Predicted {
  modelVersion: number;
  model: { kind: string; version: number; sha256: string; personal?: { state: string; round: number } };
  predictions: { class: number }[];
}

async function predict(serve: string, inputs: number[][]): Promise<{ status: number; json: Predicted }> {
  const r = await fetch(`${serve}/v1/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs }),
  });
  return { status: r.status, json: (await r.json()) as Predicted };
}

const test8 = loadMnist().test;
const inputs = Array.from({ length: 8 }, (_, i) => Array.from(test8.x.subarray(i * 784, (i + 1) * 784)));

describe('node state on disk, real processes', () => {
  const procs: Proc[] = [];
  after(() => killAll(procs));

  test('SCAFFOLD: kill -9 and restart mid-run resumes the control variate; a corrupt file is set aside', async () => {
    const c = await startTestCoordinator({
      model: 'mlp',
      strategy: 'scaffold',
      rounds: 14,
      minNodes: 2,
      limitTest: 300,
      seed: 1,
      waitForNodesMs: 120000,
    });
    procs.push(c.proc);
    const stateDir = mkdtempSync(join(tmpdir(), 'edgefed-node-state-'));
    const servePort = await freePort();
    const n0Args = ['--state-dir', stateDir, '--delay-ms', '300'];
    const serveArgs = ['--serve-port', String(servePort), '--model-poll-ms', '100'];
    procs.push(
      ...(await startNodesInOrder(c.url, [
        { data: 'mnist-partition:0/30', name: 'k0', extra: [...n0Args, ...serveArgs] },
        { data: 'mnist-partition:1/30', name: 'k1', extra: ['--state-dir', mkdtempSync(join(tmpdir(), 'edgefed-'))] },
      ])),
    );
    await waitFor('k0 to keep state after two rounds', async () =>
      existsSync(stateFile(stateDir)) && kept(stateDir).round >= 2 ? true : undefined,
    );
    // A run without personal state: the global model answers, and says so.
    const global = await waitFor('a model on k0', async () => {
      const r = await predict(`http://127.0.0.1:${servePort}`, inputs);
      return r.status === 200 ? r.json : undefined;
    });
    assert.equal(global.model.kind, 'global');
    assert.equal(global.model.version, global.modelVersion);

    await killed(procs[1]);
    const before = kept(stateDir);
    assert.equal(before.kind, 'scaffold');
    const restarted = startNode(c.url, 'mnist-partition:0/30', 'k0', n0Args);
    procs.push(restarted);
    const resumed = await waitForLog(restarted, 'resumed node state', { sha256: before.sha256 });
    assert.equal(resumed.round, before.round);
    await waitFor('k0 to update its state after the restart', async () =>
      kept(stateDir).round > before.round ? true : undefined,
    );

    await killed(restarted);
    writeFileSync(stateFile(stateDir), '{"format":"edgefed-node-state","vers');
    const again = startNode(c.url, 'mnist-partition:0/30', 'k0', n0Args);
    procs.push(again);
    await waitFor('the corrupt-file warning', async () =>
      /not used: the file is not valid JSON .*starts fresh/.test(again.output()) ? true : undefined,
    );
    assert.equal(readdirSync(stateDir).filter((f) => f.includes('.rejected-')).length, 1);
    const run = await waitFor(
      'the run to complete',
      async () => {
        const v = await runView(c.url, 1);
        return v.status === 'completed' ? v : undefined;
      },
      240_000,
    );
    assert.equal(kept(stateDir).round, 14, 'k0 trained the last round from its fresh state');
    assert.ok(run.rounds.at(-1)!.contributed.length === 2);
    assert.doesNotMatch(again.output(), /could not serve a request/);
  });

  test('FedPer: /v1/predict answers with the personalised model (global body + the kept head)', async () => {
    const c = await startTestCoordinator({
      model: 'mlp',
      strategy: 'fedper',
      rounds: 30,
      minNodes: 2,
      limitTest: 300,
      seed: 2,
      waitForNodesMs: 120000,
    });
    procs.push(c.proc);
    const stateDir = mkdtempSync(join(tmpdir(), 'edgefed-node-state-'));
    const servePort = await freePort();
    const serve = `http://127.0.0.1:${servePort}`;
    procs.push(
      ...(await startNodesInOrder(c.url, [
        {
          data: 'mnist-partition:0/30',
          name: 'p0',
          extra: ['--state-dir', stateDir, '--serve-port', String(servePort), '--model-poll-ms', '100'],
        },
        { data: 'mnist-partition:1/30', name: 'p1', extra: ['--state-dir', mkdtempSync(join(tmpdir(), 'edgefed-'))] },
      ])),
    );
    await waitFor('two rounds', async () => ((await runView(c.url, 1)).roundsCompleted >= 2 ? true : undefined));
    // Stop the run so the model and the state file hold still while they are compared.
    await fetch(`${c.url}/v1/runs/1/stop`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...admin },
      body: '{}',
    });
    const rounds = await waitForSteady('the stopped run', async () => (await runView(c.url, 1)).roundsCompleted, 1500);
    await waitFor('the newest version on p0', async () => {
      const m = (await (await fetch(`${serve}/v1/model`)).json()) as { version: number | null };
      return m.version === rounds ? true : undefined;
    });
    const answer = await predict(serve, inputs);
    assert.equal(answer.status, 200);
    const { model } = answer.json;
    assert.equal(model.kind, 'personalised');
    assert.equal(model.version, rounds);
    assert.equal(model.personal?.state, 'fedper');

    const weightsBin = await fetch(`${c.url}/v1/runs/1/models/${rounds}/weights.bin`, { headers: admin });
    const global = new Float32Array(await weightsBin.arrayBuffer());
    const state = decodeNodeState(readFileSync(stateFile(stateDir), 'utf8'), 1, layout);
    const expected = withHead(global, state.head!, headSlots(layout, 1));
    assert.equal(model.sha256, sha(expected), 'the answering weights are the global body with the kept head');
    assert.notEqual(model.sha256, sha(global));
    assert.equal(model.personal?.round, state.round);
  });
});
