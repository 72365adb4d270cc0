// Slow suite: the core issue's acceptance run on full MNIST, twice, through the real CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../helpers.js';

const ACCEPTANCE = [
  'simulate',
  '--dataset',
  'mnist',
  '--model',
  'mlp',
  '--nodes',
  '10',
  '--partition',
  'iid',
  '--strategy',
  'fedavg',
  '--local-epochs',
  '1',
  '--batch-size',
  '32',
  '--rounds',
  '20',
  '--target-accuracy',
  '0.97',
  '--seed',
  '1',
  '--json',
];

test('reference MLP, 10 IID nodes, FedAvg reaches 0.97 within 20 rounds, and the same seed gives the same model', async () => {
  const first = await runCli(ACCEPTANCE);
  assert.equal(first.code, 0, first.stderr);
  const a = JSON.parse(first.stdout);
  assert.ok(a.final_accuracy >= 0.97, `final accuracy ${a.final_accuracy} after ${a.rounds} rounds`);
  assert.ok(a.rounds <= 20);
  console.log(
    `acceptance run: ${a.rounds} rounds, accuracy ${a.final_accuracy}, ${a.seconds}s, trainer ${a.trainer}, sha ${a.model_sha256}`,
  );
  const second = await runCli([...ACCEPTANCE, '--workers', '1']);
  assert.equal(second.code, 0, second.stderr);
  const b = JSON.parse(second.stdout);
  assert.equal(b.model_sha256, a.model_sha256);
  assert.deepEqual(b.accuracy_by_round, a.accuracy_by_round);
});
