import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './helpers.js';

const small = [
  '--dataset',
  'mnist',
  '--limit-train',
  '3000',
  '--limit-test',
  '1000',
  '--nodes',
  '5',
  '--rounds',
  '2',
  '--seed',
  '4',
];

test('simulate --json prints the summary and --out holds metrics, model, partition report and plot', async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'edgefed-cli-')), 'run');
  const r = await runCli(['simulate', ...small, '--partition', 'dirichlet:0.5', '--out', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  for (const k of [
    'rounds',
    'final_accuracy',
    'accuracy_by_round',
    'loss_by_round',
    'seconds',
    'bytes_sent',
    'bytes_received',
    'model_sha256',
  ])
    assert.ok(k in s, k);
  assert.equal(s.rounds, 2);
  assert.equal(s.accuracy_by_round.length, 2);
  assert.ok(s.final_accuracy > 0.5, `accuracy ${s.final_accuracy}`);
  assert.match(s.model_sha256, /^[0-9a-f]{64}$/);
  assert.ok(s.bytes_sent > 5 * 2 * 101770 * 4, 'weights were sent as float32 tensors');
  assert.deepEqual(readdirSync(out).sort(), ['metrics.csv', 'metrics.json', 'model', 'partition.json', 'plot.svg']);
  assert.deepEqual(readdirSync(join(out, 'model')).sort(), ['edgefed.json', 'model.json', 'weights.bin']);
  const part = JSON.parse(readFileSync(join(out, 'partition.json'), 'utf8'));
  assert.equal(part.nodes.length, 5);
  assert.equal(
    part.nodes.reduce((a: number, n: { size: number }) => a + n.size, 0),
    3000,
  );
  assert.match(readFileSync(join(out, 'plot.svg'), 'utf8'), /^<svg/);
  assert.equal(readFileSync(join(out, 'metrics.csv'), 'utf8').trim().split('\n').length, 3);

  // predict with the saved model: accuracy is reported and abstentions follow the threshold
  const p = await runCli([
    'predict',
    '--model',
    join(out, 'model'),
    '--input',
    'mnist',
    '--limit',
    '1000',
    '--threshold',
    '0.9',
    '--json',
  ]);
  assert.equal(p.code, 0, p.stderr);
  const pr = JSON.parse(p.stdout);
  assert.equal(pr.n, 1000);
  assert.ok(
    Math.abs(pr.accuracy - s.final_accuracy) < 1e-9,
    `predict accuracy ${pr.accuracy} vs run ${s.final_accuracy}`,
  );
  assert.equal(pr.accepted + pr.abstained, 1000);
  assert.ok(
    pr.predictions.every(
      (x: { confidence: number; decision: string }) => x.confidence >= 0.9 === (x.decision === 'accept'),
    ),
  );
  // `predicted` names the model's answer; `label` stays one release as its old name.
  assert.ok(
    pr.predictions.every(
      (x: { class: number; predicted: number; label: number }) => x.predicted === x.class && x.label === x.predicted,
    ),
  );

  // Without --json: a table a person reads, with the same counts.
  const t = await runCli([
    'predict',
    '--model',
    join(out, 'model'),
    '--input',
    'mnist',
    '--limit',
    '1000',
    '--threshold',
    '0.9',
    '--rows',
    '3',
  ]);
  assert.equal(t.code, 0, t.stderr);
  const lines = t.stdout.split('\n');
  assert.deepEqual(lines[0].trim().split(/\s+/), ['row', 'predicted', 'confidence', 'decision', 'actual']);
  assert.equal(lines.filter((l) => /^ *\d+ +\d+ +[01]\.\d{4} +(accept|abstain) +\d+$/.test(l)).length, 3);
  assert.ok(t.stdout.includes(`1000 examples: ${pr.accepted} accepted`), t.stdout);
  assert.ok(!t.stdout.includes('{'), 'no JSON in the table output');
});

test('the same seed gives the same model_sha256 across runs (and another seed does not)', async () => {
  const [a, b, c] = await Promise.all([
    runCli(['simulate', ...small, '--json', '--quiet']),
    runCli(['simulate', ...small, '--json', '--quiet', '--workers', '1']),
    runCli(['simulate', ...small.slice(0, -1), '5', '--json', '--quiet']),
  ]);
  for (const r of [a, b, c]) assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(a.stdout).model_sha256, JSON.parse(b.stdout).model_sha256);
  assert.notEqual(JSON.parse(a.stdout).model_sha256, JSON.parse(c.stdout).model_sha256);
});

test('compressed updates (top-k with error feedback): same model_sha256 with 1 and 2 workers, far fewer bytes received', async () => {
  const args = ['simulate', ...small, '--json', '--quiet', '--compression', 'topk:0.01'];
  const [one, two] = await Promise.all([runCli([...args, '--workers', '1']), runCli([...args, '--workers', '2'])]);
  for (const r of [one, two]) assert.equal(r.code, 0, r.stderr);
  const [a, b] = [one, two].map((r) => JSON.parse(r.stdout));
  assert.equal(a.model_sha256, b.model_sha256);
  assert.equal(a.config.compression, 'topk:0.01');
  const floatReplies = 5 * 2 * 101770 * 4; // 5 nodes, 2 rounds, the MLP's weights as float32
  assert.ok(floatReplies / a.bytes_received > 30, `ratio ${floatReplies / a.bytes_received}`);
  assert.ok(a.bytes_sent > floatReplies, 'the global model still goes down as float32');
});

test('bad flags and bad files: one-line error, exit code 2, no output written', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-bad-'));
  const badIdx = join(dir, 'idx');
  mkdirSync(badIdx);
  writeFileSync(join(badIdx, 'train-images-idx3-ubyte'), Buffer.from([0, 0, 8, 3, 0, 0, 0, 2]));
  const badCsv = join(dir, 'bad.csv');
  writeFileSync(badCsv, 'a,b,label\n1,2,0\n3,x,1\n');
  const cases: [string[], RegExp][] = [
    [['simulate', '--nodes', '0'], /--nodes/],
    [['simulate', '--fraction', '1.5'], /--fraction/],
    [['simulate', '--rounds', 'ten'], /--rounds/],
    [['simulate', '--partition', 'shards:0'], /partition/],
    [['simulate', '--partition', 'dirichlet:-1'], /partition/],
    [['simulate', '--strategy', 'fedmagic'], /unknown strategy/],
    [['simulate', '--strategy', 'fedprox'], /mu/],
    [['simulate', '--model', 'resnet'], /--model/],
    [['simulate', '--optimizer', 'rmsprop'], /optimizer/],
    [['simulate', '--dataset', 'ftp:x'], /dataset spec/],
    [['simulate', '--dataset', `idx:${badIdx}`], /idx/],
    [['simulate', '--dataset', `csv:${badCsv}`], /bad\.csv line 3: column 'b' value 'x' is not a number/],
    [['simulate', '--dataset', `csv:${join(dir, 'missing.csv')}`], /missing\.csv/],
    [['simulate', '--no-such-flag'], /unknown option/],
    [['simulate', '--strategy', 'krum'], /krum needs f/],
    [
      ['simulate', '--strategy', 'bulyan:f=3'],
      /--strategy bulyan:f=3: needs at least 15 updates per round, but a round samples 10 of 10 nodes/,
    ],
    [['simulate', '--attack', 'sign-flip'], /--malicious: needed with --attack sign-flip/],
    [['simulate', '--malicious', '0.2'], /--attack: needed with --malicious/],
    [
      ['simulate', '--attack', 'gaussian', '--malicious', '0.05'],
      /--malicious: 0\.05 of 10 nodes is less than one node/,
    ],
    [
      ['simulate', '--attack', 'label-flip', '--malicious', '0.2', '--attack-scale', '3'],
      /--attack-scale: applies to --attack sign-flip, gaussian and scale only/,
    ],
    [['simulate', '--attack', 'flood', '--malicious', '0.2'], /--attack/],
    [['simulate', '--compression', 'zip'], /unknown compression 'zip'/],
    [['simulate', '--compression', 'topk:2'], /compression 'topk:2': top-k fraction must be in \(0, 1\]/],
    [['predict', '--model', join(dir, 'nope'), '--input', 'mnist'], /does not exist/],
  ];
  const results = await Promise.all(
    cases.map(([args]) =>
      runCli(
        [...args, '--out', join(dir, 'out')].filter(
          (a, i, all) => !(args[0] === 'predict' && (a === '--out' || all[i - 1] === '--out')),
        ),
      ),
    ),
  );
  results.forEach((r, i) => {
    const [args, re] = cases[i];
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}, stderr ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(lines[0], /^edgefed: /);
    assert.match(lines[0], re, args.join(' '));
    assert.equal(r.stdout, '');
  });
  assert.equal(existsSync(join(dir, 'out')), false, 'no partial output');
});

test('--attack: Byzantine nodes are picked from the seed, recorded in the summary, and the robust strategy holds', async () => {
  const attack = ['--attack', 'sign-flip', '--malicious', '0.4', '--json', '--quiet'];
  const [avg, med] = await Promise.all([
    runCli(['simulate', ...small, ...attack]),
    runCli(['simulate', ...small, ...attack, '--strategy', 'fedmedian']),
  ]);
  for (const r of [avg, med]) assert.equal(r.code, 0, r.stderr);
  const a = JSON.parse(avg.stdout);
  const m = JSON.parse(med.stdout);
  assert.equal(a.attack.kind, 'sign-flip');
  assert.equal(a.attack.scale, 4);
  assert.equal(a.attack.malicious_fraction, 0.4);
  assert.equal(a.attack.malicious_nodes.length, 2);
  assert.deepEqual(m.attack.malicious_nodes, a.attack.malicious_nodes, 'the same seed picks the same attackers');
  assert.equal(a.config.attack, 'sign-flip');
  // 2 of 5 nodes sending -4x their update cancel FedAvg's progress; the median ignores them
  assert.ok(
    m.final_accuracy > 0.5 && m.final_accuracy > a.final_accuracy + 0.2,
    `fedmedian ${m.final_accuracy} vs fedavg ${a.final_accuracy}`,
  );
});

test('--out refuses to overwrite a non-empty folder before doing any work', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-out-'));
  writeFileSync(join(dir, 'keep.txt'), 'x');
  const r = await runCli(['simulate', ...small, '--out', dir]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /exists and is not empty/);
  assert.deepEqual(readdirSync(dir), ['keep.txt']);
});

test('--help lists examples', async () => {
  const r = await runCli(['simulate', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /Examples:/);
  assert.match(r.stdout, /--target-accuracy/);
});

test('--version prints the package version', async () => {
  const r = await runCli(['--version']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version);
});
