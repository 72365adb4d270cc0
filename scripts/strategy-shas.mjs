#!/usr/bin/env node
/**
 * Prints the final model_sha256 of a short seeded simulation for every strategy family and codec, one line each,
 * so a refactor can show it changed no result (run before and after, diff the output). The hash depends on the
 * kernels and the OpenBLAS core type, so compare only runs on the same machine.
 *
 *   node scripts/strategy-shas.mjs            # the short runs (a few minutes on 1 worker)
 *   node scripts/strategy-shas.mjs --accept   # also the seed-1 acceptance run (MNIST, 10 nodes, 20 rounds)
 */
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const SHORT = [
  '--dataset',
  'mnist',
  '--model',
  'mlp',
  '--nodes',
  '8',
  '--rounds',
  '2',
  '--limit-train',
  '1600',
  '--limit-test',
  '200',
  '--seed',
  '1',
  '--workers',
  '1',
  '--json',
  '--quiet',
];

const CASES = [
  ['fedavg', []],
  ['fedprox:0.01', []],
  ['fedavgm', []],
  ['fedadam:eta=0.01', []],
  ['fedyogi:eta=0.01', []],
  ['fedadagrad:eta=0.01', []],
  ['fednova', []],
  ['fedsgd:lr=0.5', []],
  ['fedsgd:adam,lr=0.001', []],
  ['dpfedavg:clip=1,noise=0.5', []],
  ['dpfedavg:clip=adaptive,noise=0.5,clip0=0.5', []],
  ['fedavg:clip=2', []],
  ['fedadam:eta=0.01,clip=2', []],
  ['fedmedian', []],
  ['fedtrimmedavg:beta=0.2', []],
  ['krum:f=1', []],
  ['multikrum:f=1,m=3', []],
  ['bulyan:f=1', []],
  ['fedavg', ['--compression', 'fp16']],
  ['fedavg', ['--compression', 'int8']],
  ['fedavg', ['--compression', 'int8-block:64,rounding=stochastic']],
  ['fedavg', ['--compression', 'topk:0.1']],
  ['fedavg', ['--compression', 'topk:0.1,ef=off,delta=off']],
  ['fedavg', ['--secagg']],
  ['fedavg', ['--mode', 'async', '--buffer-size', '3', '--concurrency', '4']],
  ['fedavg', ['--profile', 'slow20', '--deadline', '30']],
];

function run(args) {
  const r = spawnSync(process.execPath, ['bin/edgefed.mjs', 'simulate', ...args], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) return `error: ${(r.stderr || '').trim().split('\n').pop()}`;
  return JSON.parse(r.stdout.trim().split('\n').pop()).model_sha256;
}

process.stdout.write(`# ${cpus()[0]?.model ?? 'cpu?'}, node ${process.version}\n`);
for (const [strategy, extra] of CASES) {
  const label = [strategy, ...extra].join(' ');
  process.stdout.write(`${label.padEnd(56)} ${run([...SHORT, '--strategy', strategy, ...extra])}\n`);
}
if (process.argv.includes('--accept')) {
  const accept = [
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
    '--quiet',
  ];
  process.stdout.write(`${'acceptance seed 1'.padEnd(56)} ${run(accept)}\n`);
}
