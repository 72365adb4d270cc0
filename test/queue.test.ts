/**
 * Simulation across processes through BullMQ: a real redis-server on a free loopback port, two
 * `edgefed sim-worker` processes, and `edgefed simulate --queue`. The model must be the one the
 * in-process (worker-thread) simulation gives for the same seed, and both workers must have served nodes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createConnection } from 'node:net';
import { runCli } from './helpers.js';
import { freePort, killAll, start, waitFor, type Proc } from './deploy-harness.js';

const RUN = [
  'simulate',
  '--model',
  'mlp',
  '--nodes',
  '6',
  '--rounds',
  '2',
  '--limit-train',
  '3000',
  '--limit-test',
  '1000',
  '--seed',
  '7',
  '--json',
  '--quiet',
];

function redisAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ port, host: '127.0.0.1' }, () => s.write('PING\r\n'));
    s.on('data', (d) => {
      resolve(String(d).startsWith('+PONG'));
      s.destroy();
    });
    s.on('error', () => resolve(false));
  });
}

test('a simulation run by two BullMQ worker processes on redis-server gives the in-process model', async (t) => {
  assert.equal(
    spawnSync('redis-server', ['--version']).status,
    0,
    'redis-server is not installed (.ci/run installs it with apt-get)',
  );
  const port = await freePort();
  const redis = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  const workers: Proc[] = [];
  t.after(() => {
    killAll(workers);
    redis.kill('SIGKILL');
  });
  await waitFor('redis-server', async () => ((await redisAnswers(port)) ? true : undefined), 20_000);
  const url = `redis://127.0.0.1:${port}`;
  const queueName = `t${process.pid}`;
  for (let i = 0; i < 2; i++) workers.push(start(['sim-worker', '--redis', url, '--queue-name', queueName]));
  for (const w of workers)
    await waitFor('sim-worker ready', async () => (w.output().includes('"worker"') ? true : undefined), 60_000);

  const [queued, local] = await Promise.all([
    runCli([...RUN, '--queue', url, '--queue-name', queueName]),
    runCli([...RUN, '--workers', '2']),
  ]);
  assert.equal(queued.code, 0, queued.stderr);
  assert.equal(local.code, 0, local.stderr);
  const q = JSON.parse(queued.stdout) as {
    model_sha256: string;
    queue_workers: string[];
    final_accuracy: number;
    bytes_received: number;
  };
  const l = JSON.parse(local.stdout) as { model_sha256: string; final_accuracy: number; bytes_received: number };
  assert.equal(q.model_sha256, l.model_sha256, 'queue and worker-thread simulations differ');
  assert.equal(q.bytes_received, l.bytes_received, 'the same frames should cross either transport');
  assert.equal(q.queue_workers.length, 2, `both sim-workers should serve nodes, got ${q.queue_workers.join(', ')}`);
  assert.ok(q.final_accuracy > 0.5, `it should learn (chance is 0.1): accuracy ${q.final_accuracy}`);
});

test('bad queue flags are refused with one line and exit 2', async () => {
  const cases: [string[], RegExp][] = [
    [['simulate', '--queue', 'http://127.0.0.1:6379', '--quiet'], /not a redis:\/\/ URL/],
    [['simulate', '--queue', 'redis://127.0.0.1:6379/99', '--quiet'], /database must be 0-15/],
    [['simulate', '--queue', 'redis://127.0.0.1:6379', '--queue-name', 'a b', '--quiet'], /queue-name/],
    [['sim-worker', '--redis', 'not a url'], /--redis: 'not a url' is not a URL/],
    [['sim-worker', '--redis', 'redis://127.0.0.1:1', '--queue-name', '../x'], /--queue-name/],
  ];
  for (const [args, message] of cases) {
    const r = await runCli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
  }
});
