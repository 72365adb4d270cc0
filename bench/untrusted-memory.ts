/**
 * Benchmark: how much memory unauthenticated traffic can make a coordinator hold.
 *
 * One coordinator process is started through the real CLI (auth on, a temp SQLite database, EDGEFED_LOG=warn)
 * on a free loopback port. Its VmRSS (/proc/PID/status) is sampled every 100 ms. The reference is the same
 * coordinator's idle RSS measured in this run just before each phase; the figure is the growth over it.
 *   phase 'pre-hello': --connections raw WebSocket connections each stream ONE binary message of --message-mb
 *     MB before any hello (from a reused 1 MB buffer, so the sender stays small); recorded: how many bytes the
 *     coordinator let each connection write before cutting it, the peak and the settled RSS.
 *   phase 'api-fuzz': --requests requests, --concurrency at a time, drawn with a fixed seed from malformed
 *     run configs, junk enrolments, 1.2 MB run bodies, 12 MB predict bodies without a token, wrong tokens and
 *     unknown paths; recorded: status counts, the peak and the settled RSS.
 * Target: growth under 100 MB in both phases.
 *
 * Run:  node --import tsx bench/untrusted-memory.ts [--connections 8] [--message-mb 200] [--requests 2000]
 *       [--concurrency 8] [--results-dir bench/results]
 */
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { loadavg, tmpdir } from 'node:os';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { once } from 'node:events';
import fc from 'fast-check';
import { numberFlag, provenance, REPO, writeAtomic } from './support/results-io.js';
import { rawWebSocket, rssMb, streamHugeMessage } from '../test/support/raw-ws.js';

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '8' },
    'message-mb': { type: 'string', default: '200' },
    requests: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '8' },
    'results-dir': { type: 'string', default: join(REPO, 'bench', 'results') },
  },
});
const connections = numberFlag(
  'connections',
  values.connections!,
  (v) => Number.isInteger(v) && v >= 1 && v <= 256,
  'a whole number 1..256',
);
const messageMb = numberFlag('message-mb', values['message-mb']!, (v) => v > 0 && v <= 4096, 'MB in (0, 4096]');
const requests = numberFlag('requests', values.requests!, (v) => Number.isInteger(v) && v >= 0, 'a whole number >= 0');
const concurrency = numberFlag(
  'concurrency',
  values.concurrency!,
  (v) => Number.isInteger(v) && v >= 1 && v <= 256,
  'a whole number 1..256',
);
const ADMIN = 'bench-admin-token-0123456789abcdef';

async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  s.close();
  return port;
}

/** Samples a process's RSS until stopped; resolves with the peak in MB. */
function peakSampler(pid: number): { stop: () => Promise<number> } {
  let peak = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      peak = Math.max(peak, await rssMb(pid));
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return { stop: async () => ((running = false), await loop, peak) };
}

/** RSS once it stops falling (GC and freed buffers have had their chance): three samples a second apart. */
async function settledRss(pid: number): Promise<number> {
  await new Promise((r) => setTimeout(r, 1000));
  const samples = [];
  for (let i = 0; i < 3; i++) {
    samples.push(await rssMb(pid));
    await new Promise((r) => setTimeout(r, 1000));
  }
  return Math.min(...samples);
}

interface Req {
  method: 'GET' | 'POST';
  path: string;
  body?: string;
  headers: Record<string, string>;
}
const json = (path: string, body: unknown, headers: Record<string, string> = {}): Req => ({
  method: 'POST',
  path,
  body: JSON.stringify(body),
  headers: { 'content-type': 'application/json', ...headers },
});
const BIG_RUN = JSON.stringify({ name: 'x'.repeat(1_200_000) });
const BIG_PREDICT = JSON.stringify({
  runId: 1,
  inputs: Array.from({ length: 1500 }, () => Array.from({ length: 784 }, () => 0.5)),
});
const fuzzTraffic: fc.Arbitrary<Req> = fc.oneof(
  fc
    .tuple(
      fc.constantFrom('rounds', 'minNodes', 'seed', 'waitForNodesMs', 'lr', 'limitTest'),
      fc.oneof(fc.string(), fc.constant(-1), fc.constant(null)),
    )
    .map(([k, v]) => json('/v1/runs', { model: 'linear', [k]: v })),
  fc.jsonValue().map((v) => json('/v1/runs', v)),
  fc.record({ name: fc.string(), publicKey: fc.string(), token: fc.string() }).map((b) => json('/v1/enroll', b)),
  fc
    .option(fc.string({ maxLength: 40 }), { nil: undefined })
    .map((h) => json('/v1/admin/join-tokens', {}, h === undefined ? {} : { authorization: `Bearer ${h}` })),
  fc.constant<Req>({
    method: 'POST',
    path: '/v1/runs',
    body: BIG_RUN,
    headers: { 'content-type': 'application/json' },
  }),
  fc.constant<Req>({
    method: 'POST',
    path: '/v1/predict',
    body: BIG_PREDICT,
    headers: { 'content-type': 'application/json' },
  }),
  fc
    .tuple(fc.constantFrom<'GET' | 'POST'>('GET', 'POST'), fc.webPath())
    .map(([method, p]): Req => ({ method, path: `/v1/zz${p}`, headers: {} })),
  fc
    .integer({ min: 2, max: 1e9 })
    .map((id): Req => ({ method: 'GET', path: `/v1/runs/${id}/checkpoint`, headers: {} })),
);

async function main(): Promise<void> {
  const started = performance.now();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const db = join(mkdtempSync(join(tmpdir(), 'edgefed-untrusted-')), 'state.db');
  const child = spawn(
    process.execPath,
    [join(REPO, 'bin', 'edgefed.mjs'), 'coordinator', '--port', String(port), '--db', db, '--admin-token', ADMIN],
    { env: { ...process.env, EDGEFED_LOG: 'warn' }, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${url}/healthz`)).ok) break;
      } catch {
        if (i > 600) throw new Error('the coordinator did not start');
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const pid = child.pid!;

    const idle1 = await settledRss(pid);
    let sampler = peakSampler(pid);
    const bytes = messageMb * 1024 * 1024;
    const sockets = await Promise.all(
      Array.from({ length: connections }, () => rawWebSocket(`${url.replace('http', 'ws')}/v1/ws`)),
    );
    const written = await Promise.all(sockets.map((s) => streamHugeMessage(s, bytes)));
    for (const s of sockets) s.destroy();
    const preHello = {
      idleMb: idle1,
      peakMb: await sampler.stop(),
      settledMb: await settledRss(pid),
      maxBytesAccepted: Math.max(...written),
    };

    const idle2 = await settledRss(pid);
    sampler = peakSampler(pid);
    const sample = fc.sample(fuzzTraffic, { seed: 42, numRuns: requests });
    const statuses: Record<string, number> = {};
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < sample.length) {
          const r = sample[next++];
          let key: string;
          try {
            const res = await fetch(url + r.path, { method: r.method, headers: r.headers, body: r.body });
            await res.arrayBuffer();
            key = String(res.status);
          } catch (e) {
            key = `error:${(e as Error).message.slice(0, 40)}`;
          }
          statuses[key] = (statuses[key] ?? 0) + 1;
        }
      }),
    );
    const apiFuzz = { idleMb: idle2, peakMb: await sampler.stop(), settledMb: await settledRss(pid), statuses };
    const healthy = (await fetch(`${url}/healthz`)).ok;

    const result = {
      bench: 'untrusted-memory',
      settings: { connections, messageMb, requests, concurrency },
      preHello: { ...preHello, peakGrowthMb: preHello.peakMb - preHello.idleMb },
      apiFuzz: { ...apiFuzz, peakGrowthMb: apiFuzz.peakMb - apiFuzz.idleMb },
      healthyAfter: healthy,
      loadavg: loadavg(),
      ...provenance(1, started),
    };
    const f = (v: number) => v.toFixed(1);
    const env = result.machine;
    const md = [
      '# Coordinator memory under unauthenticated traffic',
      '',
      `Environment: ${env.cpu_model} (${env.cpu_cores} cores, ${env.available_parallelism} available), ${env.platform}, Node ${env.node}, ` +
        `kernels ${env.kernels}, load ${result.loadavg.map((l) => l.toFixed(2)).join(' ')}, commit ${result.git_commit ?? 'unknown'}, ${result.finished_at}. ` +
        "Reference: the same coordinator's idle RSS just before each phase.",
      '',
      '| phase | traffic | idle RSS MB | peak RSS MB | peak growth MB | settled RSS MB | target |',
      '| --- | --- | --- | --- | --- | --- | --- |',
      `| pre-hello | ${connections} connections x one ${messageMb} MB message (largest accepted before the cut: ${(preHello.maxBytesAccepted / 1e6).toFixed(2)} MB) ` +
        `| ${f(preHello.idleMb)} | ${f(preHello.peakMb)} | ${f(result.preHello.peakGrowthMb)} | ${f(preHello.settledMb)} | < 100 MB |`,
      `| api-fuzz | ${requests} requests, ${concurrency} at a time (${Object.entries(statuses)
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ')}) ` +
        `| ${f(apiFuzz.idleMb)} | ${f(apiFuzz.peakMb)} | ${f(result.apiFuzz.peakGrowthMb)} | ${f(apiFuzz.settledMb)} | < 100 MB |`,
      '',
      `Coordinator healthy afterwards: ${healthy}.`,
      '',
    ].join('\n');
    writeAtomic(join(values['results-dir']!, 'untrusted-memory.json'), `${JSON.stringify(result, null, 2)}\n`);
    writeAtomic(join(values['results-dir']!, 'untrusted-memory.md'), md);
    process.stdout.write(md);
    if (result.preHello.peakGrowthMb >= 100 || result.apiFuzz.peakGrowthMb >= 100 || !healthy) process.exitCode = 1;
  } finally {
    child.kill('SIGKILL');
  }
}

await main();
