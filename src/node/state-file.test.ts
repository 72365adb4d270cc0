/**
 * A deployed node's state on disk (state-file.ts): a host restarted between rounds (a new NodeHost reading the same
 * directory) answers the next round byte for byte as the host that never stopped, for every strategy with node
 * state; a host restarted without its state answers differently (the state matters). Bad files (empty, not JSON,
 * corrupt, another version, run or model) are set aside with a warning and the state starts fresh, never a throw.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { NodeHost } from './host.js';
import { NodeStateDir, decodeNodeState, encodeNodeState } from './state-file.js';
import type { NodeStateSnapshot } from './local-state.js';
import { encodeTrainRequest } from '../engine/messages.js';
import { EngineTrainer } from '../model/engine-trainer.js';
import { asDenseNet } from '../model/spec.js';
import { jsKernels } from '../nn/kernels-js.js';
import { makeLayout } from '../core/params.js';
import type { TrainConfig } from '../model/trainer.js';
import { healthyNodes, toyFederation, toyLayout, toySpec } from '../../test/support/toy-federation.js';

const RUN = 4;
const NODE = 1;

class Log {
  readonly lines: { level: string; fields: Record<string, unknown>; message: string }[] = [];
  info(fields: object, message: string) {
    this.lines.push({ level: 'info', fields: fields as Record<string, unknown>, message });
  }
  warn(fields: object, message: string) {
    this.lines.push({ level: 'warn', fields: fields as Record<string, unknown>, message });
  }
  warnings() {
    return this.lines.filter((l) => l.level === 'warn');
  }
}

function hostOn(dir: string | undefined, log = new Log()): NodeHost {
  const store = dir === undefined ? undefined : new NodeStateDir(dir, log).storeFor(RUN, toyLayout);
  return new NodeHost(
    toyLayout,
    new EngineTrainer(asDenseNet(toySpec)!, jsKernels),
    healthyNodes(2),
    undefined,
    undefined,
    undefined,
    store,
  );
}

const STRATEGIES: { name: string; config: Partial<TrainConfig>; control?: boolean }[] = [
  { name: 'scaffold', config: { localState: 'scaffold' }, control: true },
  { name: 'feddyn', config: { localState: 'feddyn', proxMu: 0.1 } },
  { name: 'fedper', config: { localState: 'fedper', headLayers: 1 } },
  { name: 'fedrep', config: { localState: 'fedrep', headLayers: 1, headEpochs: 1 } },
  { name: 'ditto', config: { localState: 'ditto', personalMu: 0.1 } },
];

function request(round: number, global: Float32Array, s: (typeof STRATEGIES)[number]): Uint8Array {
  const config = {
    epochs: 1,
    batchSize: 16,
    optimizer: { name: 'sgd' as const, lr: 0.1 },
    proxMu: 0,
    seed: 1000 + round,
    ...s.config,
  } as TrainConfig;
  const control = s.control ? global.map((_, j) => 0.001 * Math.sin(j + round)) : undefined;
  return encodeTrainRequest(toyLayout, { round, nodeId: NODE, mode: 'weights', config, weights: global, control });
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('node state on disk', () => {
  const { initial } = toyFederation(healthyNodes(2), [0, 1]);
  const later = initial.map((x, j) => x + 0.01 * Math.cos(j));

  for (const s of STRATEGIES) {
    test(`${s.name}: a host restarted between rounds answers round 2 as the one that never stopped`, async () => {
      const steadyDir = mkdtempSync(join(tmpdir(), 'edgefed-state-'));
      const steady = hostOn(steadyDir);
      await steady.handle(request(1, initial, s));
      const expected = await steady.handle(request(2, later, s));

      const dir = mkdtempSync(join(tmpdir(), 'edgefed-state-'));
      await hostOn(dir).handle(request(1, initial, s));
      assert.ok(existsSync(join(dir, `run-${RUN}.node-state.json`)), 'the state file is written after round 1');
      const log = new Log();
      const restarted = await hostOn(dir, log).handle(request(2, later, s));
      assert.equal(sha(restarted), sha(expected), 'same reply bytes after the restart');
      assert.ok(log.lines.some((l) => l.message === 'resumed node state' && l.fields.round === 1));
      assert.deepEqual(log.warnings(), []);
      const file = (d: string) => readFileSync(join(d, `run-${RUN}.node-state.json`), 'utf8');
      assert.equal(file(dir), file(steadyDir), 'the same state is kept after round 2');

      if (s.name === 'ditto') return; // Ditto uploads a plain FedAvg update: its personal model is checked above
      const forgetful = await hostOn(undefined).handle(request(2, later, s));
      assert.notEqual(sha(forgetful), sha(expected), 'a host without its state answers differently');
    });
  }

  test('encode then decode is bit-exact, and the file names version, run and model shape', () => {
    const snapshot: NodeStateSnapshot = {
      kind: 'scaffold',
      round: 3,
      control: Float32Array.from(initial, (x) => x / 3),
    };
    const text = encodeNodeState(RUN, toyLayout, snapshot);
    const back = decodeNodeState(text, RUN, toyLayout);
    assert.deepEqual(back, snapshot);
    const file = JSON.parse(text) as Record<string, unknown>;
    assert.equal(file.version, 1);
    assert.equal(file.runId, RUN);
    assert.ok(Array.isArray(file.layout));
  });

  const good = () => encodeNodeState(RUN, toyLayout, { kind: 'ditto', round: 2, personal: initial });
  const resign = (edit: (o: Record<string, unknown>) => void) => {
    const { sha256: _old, ...body } = JSON.parse(good()) as Record<string, unknown>;
    edit(body);
    return JSON.stringify({ ...body, sha256: createHash('sha256').update(JSON.stringify(body)).digest('hex') });
  };
  const otherLayout = makeLayout(toyLayout.map((t) => ({ ...t, shape: t.shape.map((d) => d + 1) })));
  const BAD: { name: string; text: () => string; reason: RegExp; layout?: typeof toyLayout }[] = [
    { name: 'empty', text: () => '', reason: /empty/ },
    { name: 'truncated', text: () => good().slice(0, 40), reason: /not valid JSON/ },
    { name: 'bit flip', text: () => good().replace('"round":2', '"round":5'), reason: /sha256 does not match/ },
    { name: 'other version', text: () => resign((o) => (o.version = 2)), reason: /format version 2/ },
    { name: 'other run', text: () => resign((o) => (o.runId = RUN + 1)), reason: /run 5, not run 4/ },
    { name: 'other model', text: good, reason: /another model shape/, layout: otherLayout },
    { name: 'not a state file', text: () => '{"hello":1}', reason: /not an edgefed-node-state file/ },
  ];
  for (const bad of BAD) {
    test(`file ${bad.name}: a warning that says why, the file set aside, a fresh state`, () => {
      const dir = mkdtempSync(join(tmpdir(), 'edgefed-state-'));
      const log = new Log();
      const states = new NodeStateDir(dir, log);
      writeFileSync(states.fileOf(RUN), bad.text());
      const layout = bad.layout ?? toyLayout;
      assert.equal(states.storeFor(RUN, layout).load(), undefined);
      const [warning] = log.warnings();
      assert.match(String(warning.fields.reason), bad.reason);
      assert.match(warning.message, /starts fresh/);
      assert.equal(existsSync(states.fileOf(RUN)), false);
      const aside = readdirSync(dir).filter((f) => f.includes('.rejected-'));
      assert.equal(aside.length, 1);
      assert.equal(readFileSync(join(dir, aside[0]), 'utf8'), bad.text(), 'the bad file is kept unchanged');
      assert.equal(states.personal(RUN, layout, initial), undefined, 'serving falls back to the global model');
    });
  }

  test('a kept state of another kind, or from a later round (a reused run id), is dropped with a warning', async () => {
    const [scaffold, feddyn] = STRATEGIES;
    const dir = mkdtempSync(join(tmpdir(), 'edgefed-state-'));
    await hostOn(dir).handle(request(5, initial, scaffold));
    const log = new Log();
    await hostOn(dir, log).handle(request(6, initial, feddyn));
    assert.match(log.warnings()[0]?.message ?? '', /'scaffold' state, this run's strategy keeps 'feddyn'/);

    const dir2 = mkdtempSync(join(tmpdir(), 'edgefed-state-'));
    await hostOn(dir2).handle(request(5, initial, scaffold));
    const log2 = new Log();
    const reused = await hostOn(dir2, log2).handle(request(1, initial, scaffold));
    assert.match(log2.warnings()[0]?.message ?? '', /from round 5, the coordinator asks for round 1/);
    const fresh = await hostOn(undefined).handle(request(1, initial, scaffold));
    assert.equal(sha(reused), sha(fresh), 'the dropped state is not used');
  });
});
