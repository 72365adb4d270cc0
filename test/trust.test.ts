// Hostile input against a real coordinator: every bad frame is rejected with a code, logged with the
// node id, and the run's state (the committed global model) does not change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import {
  api,
  freePort,
  joinToken,
  killAll,
  startCoordinator,
  startNodesInOrder,
  waitFor,
  waitHealthy,
  type Proc,
} from './deploy-harness.js';
import { helloOnChallenge } from './support/node-socket.js';
import { newIdentity, signFrame, toHex, unbindFrame, randomNonce, type Binding } from '../src/core/identity.js';
import { encodeTrainReply } from '../src/engine/messages.js';
import { makeLayout, type TensorSlot } from '../src/core/params.js';
import { builtinModel, initialWeights, tensorSpecs, type ModelSpec } from '../src/model/spec.js';
import { Rng } from '../src/core/rng.js';
import { weightsSha256 } from '../src/model/hash.js';
import { Reassembler, splitFrame } from '../src/core/chunks.js';
import { randomBytes } from 'node:crypto';

const MAX_FRAME = 1_000_000;

/** A node that speaks the protocol but answers requests with whatever the test tells it to. */
class Attacker {
  ws!: WebSocket;
  layout: TensorSlot[] = [];
  nodeId = -1;
  readonly id = newIdentity();
  requests: { binding: Binding; round: number }[] = [];
  private nextChunkId = 1;
  private readonly chunks = new Reassembler(10_000_000);

  async connect(url: string, name: string): Promise<void> {
    const enrol = await fetch(`${url}/v1/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name, publicKey: toHex(this.id.publicKey), token: await joinToken(url) }),
    });
    assert.equal(enrol.status, 201);
    this.ws = new WebSocket(url.replace('http', 'ws') + '/v1/ws');
    helloOnChallenge(this.ws, { name, resources: {}, tags: {} }, this.id.secretKey);
    await new Promise((r) => this.ws.once('open', r));
    this.ws.on('message', (data, binary) => {
      const bytes = new Uint8Array(data as Buffer);
      if (binary) {
        const whole = this.chunks.push(bytes);
        if (!whole) return;
        const { binding } = unbindFrame(whole);
        this.requests.push({ binding, round: binding.round });
        return;
      }
      const msg = JSON.parse(Buffer.from(bytes).toString());
      if (msg.type === 'welcome') this.nodeId = msg.nodeId;
      if (msg.type === 'configure') this.layout = makeLayout(tensorSpecs(msg.spec as ModelSpec));
    });
    await waitFor('welcome', async () => (this.nodeId >= 0 ? true : undefined), 10_000);
  }

  reply(round: number, vector: Float32Array): Uint8Array {
    return encodeTrainReply(this.layout, {
      round,
      nodeId: this.nodeId,
      numExamples: 100,
      steps: 1,
      metrics: { loss: 1, accuracy: 0.5 },
      vector,
    });
  }

  send(bytes: Uint8Array): void {
    for (const part of splitFrame(bytes, this.nextChunkId++, 100_000)) this.ws.send(part, { binary: true });
  }
}

test('unsigned, wrongly signed, replayed, oversized, NaN, wrong-shape and wrong-round updates are rejected; state unchanged', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-trust-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const coordinator = startCoordinator(port, join(dir, 'state.db'), undefined, [], {
    EDGEFED_MAX_FRAME_BYTES: String(MAX_FRAME),
  });
  const procs: Proc[] = [coordinator];
  const attacker = new Attacker();
  try {
    await waitHealthy(url);
    // bad enrolment: an unknown token changes nothing
    const badEnrol = await fetch(`${url}/v1/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'mallory', publicKey: toHex(newIdentity().publicKey), token: 'x'.repeat(32) }),
    });
    assert.equal(badEnrol.status, 401);
    // a hello without a valid signature is refused
    const anon = new WebSocket(url.replace('http', 'ws') + '/v1/ws');
    helloOnChallenge(anon, { name: 'mallory', resources: {}, tags: {} });
    const closeCode = await new Promise<number>((r) => anon.once('close', (c) => r(c)));
    assert.equal(closeCode, 4003);

    procs.push(...(await startNodesInOrder(url, [{ data: 'mnist-partition:0/12', name: 'honest' }])));
    await attacker.connect(url, 'attacker');
    const seed = 3;
    const spec = builtinModel('mlp', [28, 28, 1], 10);
    const initialSha = weightsSha256(initialWeights(tensorSpecs(spec), new Rng(seed).fork('init')));
    // minNodes 2: a round fuses only if the attacker's update is accepted too
    const { json } = await api<{ id: number }>(url, '/v1/runs', {
      model: 'mlp',
      rounds: 4,
      minNodes: 2,
      seed,
      limitTest: 500,
      roundTimeoutMs: 8000,
    });
    const runId = json.id;
    const other = newIdentity();
    const payloads: ((round: number, b: Binding) => Uint8Array)[] = [
      (r) => {
        const v = new Float32Array(101770);
        v[5] = NaN;
        return signFrame(attackerBinding(r), attacker.reply(r, v), attacker.id.secretKey);
      },
      (r) =>
        signFrame(
          attackerBinding(r),
          encodeTrainReply(makeLayout([{ name: 'dense1/kernel', shape: [784, 64] }]), {
            round: r,
            nodeId: attacker.nodeId,
            numExamples: 1,
            steps: 1,
            metrics: { loss: 0, accuracy: 0 },
            vector: new Float32Array(784 * 64),
          }),
          attacker.id.secretKey,
        ),
      (r) => signFrame(attackerBinding(r), attacker.reply(r + 7, new Float32Array(101770)), attacker.id.secretKey),
    ];
    let current: Binding | null = null;
    const attackerBinding = (round: number): Binding => ({ ...current!, round });
    for (let round = 1; round <= 3; round++) {
      const req = await waitFor(
        `request ${round}`,
        async () => attacker.requests.find((x) => x.round === round),
        60_000,
      );
      current = req.binding;
      const good = attacker.reply(round, new Float32Array(101770));
      attacker.send(good); // unsigned
      attacker.send(signFrame(req.binding, good, other.secretKey)); // signed with someone else's key
      attacker.send(
        signFrame(
          { ...req.binding, nonce: randomNonce((k) => new Uint8Array(randomBytes(k))) },
          good,
          attacker.id.secretKey,
        ),
      ); // replay-style: not the pending nonce
      attacker.send(signFrame({ ...req.binding, round: round + 1 }, good, attacker.id.secretKey)); // bound to a future round
      attacker.send(signFrame(req.binding, new Uint8Array(MAX_FRAME + 10), attacker.id.secretKey)); // oversized
      attacker.send(payloads[round - 1](round, req.binding)); // NaN, wrong shape, wrong round inside the frame
      await waitFor(
        `round ${round} committed`,
        async () => {
          const r = await api<{ roundsCompleted: number }>(url, `/v1/runs/${runId}`);
          return r.json.roundsCompleted >= round ? true : undefined;
        },
        60_000,
      );
      const ckpt = await api<{ sha256: string }>(url, `/v1/runs/${runId}/checkpoint`);
      assert.equal(ckpt.json.sha256, initialSha, `round ${round}: the global model did not change`);
    }
    // a valid reply in round 4 is fused: the check above can see a change
    const last = await waitFor('request 4', async () => attacker.requests.find((x) => x.round === 4), 60_000);
    attacker.send(signFrame(last.binding, attacker.reply(4, new Float32Array(101770)), attacker.id.secretKey));
    await waitFor(
      'round 4 committed',
      async () =>
        (await api<{ roundsCompleted: number }>(url, `/v1/runs/${runId}`)).json.roundsCompleted >= 4 ? true : undefined,
      60_000,
    );
    assert.notEqual((await api<{ sha256: string }>(url, `/v1/runs/${runId}/checkpoint`)).json.sha256, initialSha);

    const { json: ev } = await api<{
      events: { kind: string; data: { nodeId: number; code?: string; error?: string } }[];
    }>(url, `/v1/runs/${runId}/events`);
    const rejected = ev.events
      .filter((e) => e.kind === 'rejected' && e.data.nodeId === attacker.nodeId)
      .map((e) => e.data.code);
    for (const code of ['unsigned', 'bad_signature', 'replayed', 'wrong_round', 'too_large']) {
      assert.equal(
        rejected.filter((c) => c === code).length,
        3,
        `${code} rejected in each of 3 rounds: ${rejected.join(',')}`,
      );
    }
    const failures = ev.events
      .filter((e) => e.kind === 'node_failure' && e.data.nodeId === attacker.nodeId)
      .map((e) => e.data.error);
    assert.match(failures[0] ?? '', /non-finite/);
    assert.match(failures[1] ?? '', /expected|tensor/);
    assert.match(failures[2] ?? '', /reply is for node|round/);
  } finally {
    attacker.ws?.terminate();
    killAll(procs);
  }
});
