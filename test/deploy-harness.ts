/**
 * Real processes on loopback for deployment tests: a coordinator and edge-node agents, via the CLI.
 * Frames are chunked at 100 kB so every test also exercises chunked transfer of the model.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from './helpers.js';

export async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  s.close();
  await once(s, 'close');
  return port;
}

export interface Proc {
  child: ChildProcess;
  output: () => string;
}

/** Starts the edgefed CLI as a child process, collecting its output. */
export function start(args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, EDGEFED_LOG: 'info', EDGEFED_CHUNK_BYTES: '100000', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return { child, output: () => out };
}

/** Tests run with authentication on, with this fixed admin token. */
export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';
const keyDir = mkdtempSync(join(tmpdir(), 'edgefed-keys-'));

export function startCoordinator(
  port: number,
  db: string,
  configFile?: string,
  extra: string[] = [],
  env: NodeJS.ProcessEnv = {},
): Proc {
  return start(
    [
      'coordinator',
      '--port',
      String(port),
      '--db',
      db,
      '--admin-token',
      ADMIN_TOKEN,
      ...(configFile ? ['--config', configFile] : []),
      ...extra,
    ],
    env,
  );
}

export async function joinToken(url: string): Promise<string> {
  const r = await fetch(`${url}/v1/admin/join-tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: '{}',
  });
  if (r.status !== 201) throw new Error(`join token: HTTP ${r.status}`);
  return ((await r.json()) as { token: string }).token;
}

/** A node process with a key file per name (kept for the test run) and a fresh join token. */
export async function startNodeEnrolled(url: string, data: string, name: string, extra: string[] = []): Promise<Proc> {
  return startNode(url, data, name, ['--join-token', await joinToken(url), ...extra]);
}

export function startNode(url: string, data: string, name: string, extra: string[] = []): Proc {
  return start([
    'node',
    '--coordinator',
    url,
    '--data',
    data,
    '--name',
    name,
    '--key',
    join(keyDir, `${name}.key`),
    ...extra,
  ]);
}

/** A gateway process: enrolled at the coordinator `upstream` as `name`, serving local nodes on `port` (same admin token). */
export async function startGateway(upstream: string, port: number, name: string, extra: string[] = []): Promise<Proc> {
  return start([
    'gateway',
    '--coordinator',
    upstream,
    '--port',
    String(port),
    '--name',
    name,
    '--key',
    join(keyDir, `${name}.key`),
    '--admin-token',
    ADMIN_TOKEN,
    '--join-token',
    await joinToken(upstream),
    ...extra,
  ]);
}

/** A coordinator process on a free port, its database in a fresh temp dir, once it answers /healthz. */
export async function startCloud(prefix: string): Promise<{ url: string; dir: string; proc: Proc }> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = startCoordinator(port, join(dir, 'cloud.db'));
  await waitHealthy(url);
  return { url, dir, proc };
}

/** A site: a gateway enrolled at `upstream` (online there before this returns), then its nodes in order. */
export async function startSite(
  upstream: string,
  name: string,
  gatewayArgs: string[],
  nodes: { data: string; name: string; extra?: string[] }[],
): Promise<{ url: string; gateway: Proc; nodes: Proc[] }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const gateway = await startGateway(upstream, port, name, gatewayArgs);
  try {
    await waitHealthy(url);
    await waitOnline(upstream, name);
    return { url, gateway, nodes: await startNodesInOrder(url, nodes) };
  } catch (e) {
    killAll([gateway]);
    throw e;
  }
}

/** Waits until the server at `url` lists `name` as an online node. */
export async function waitOnline(url: string, name: string): Promise<void> {
  await waitFor(`node ${name} online`, async () => {
    const { json } = await api<{ nodes: { name: string; online: boolean }[] }>(url, '/v1/nodes');
    return json.nodes.some((n) => n.name === name && n.online) ? true : undefined;
  });
}

/** The examples the named nodes reported at enrolment (resources.examples), summed: what a site trains on. */
export async function examplesOf(url: string, names: string[]): Promise<number> {
  const { json } = await api<{ nodes: { name: string; resources: { examples?: number } }[] }>(url, '/v1/nodes');
  return names.reduce((sum, name) => sum + (json.nodes.find((n) => n.name === name)?.resources.examples ?? NaN), 0);
}

/** A JSON API call as the operator (the admin token): GET, or POST with a body. */
export async function api<T = unknown>(
  url: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: T }> {
  const authorization = `Bearer ${ADMIN_TOKEN}`;
  const r = await fetch(
    url + path,
    body === undefined
      ? { headers: { authorization } }
      : { method: 'POST', headers: { 'content-type': 'application/json', authorization }, body: JSON.stringify(body) },
  );
  return { status: r.status, json: (await r.json()) as T };
}

/** Polls until check returns a value (not undefined), or throws after timeoutMs with the last state. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Polls read() until it has returned the same value for quietMs: a state that has stopped changing (rounds
 * no longer committing while paused). Throws after timeoutMs if it keeps changing, with the last value.
 */
export async function waitForSteady<T>(
  what: string,
  read: () => Promise<T>,
  quietMs: number,
  timeoutMs = 60_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let value = await read();
  let since = Date.now();
  while (Date.now() - since < quietMs) {
    if (Date.now() > until)
      throw new Error(`timed out waiting for ${what}: still changing, last ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 100));
    const next = await read();
    if (JSON.stringify(next) !== JSON.stringify(value)) {
      value = next;
      since = Date.now();
    }
  }
  return value;
}

/** Waits for a JSON log line of a process (pino output) whose fields match `fields`, and returns it. */
export async function waitForLog(
  proc: Proc,
  msg: string,
  fields: Record<string, unknown> = {},
  timeoutMs = 120_000,
): Promise<Record<string, unknown>> {
  return waitFor(
    `log line '${msg}' ${JSON.stringify(fields)}`,
    async () => {
      for (const line of proc.output().split('\n')) {
        if (!line.startsWith('{')) continue;
        const entry = JSON.parse(line) as Record<string, unknown>;
        if (entry.msg === msg && Object.entries(fields).every(([k, v]) => entry[k] === v)) return entry;
      }
      return undefined;
    },
    timeoutMs,
  );
}

export async function waitHealthy(url: string): Promise<void> {
  await waitFor('coordinator health', async () => ((await fetch(`${url}/healthz`)).ok ? true : undefined), 60_000);
}

export interface RunView {
  id: number;
  status: string;
  roundsCompleted: number;
  rounds: {
    round: number;
    selected: number[];
    contributed: number[];
    failures: { nodeId: number; error: string }[];
    testAccuracy: number;
    fused: boolean;
  }[];
}

export async function runView(url: string, id: number): Promise<RunView> {
  return (await api<RunView>(url, `/v1/runs/${id}`)).json;
}

/** Starts nodes one after another, each enrolled before the next, so node ids follow names. */
export async function startNodesInOrder(
  url: string,
  specs: { data: string; name: string; extra?: string[] }[],
): Promise<Proc[]> {
  const procs: Proc[] = [];
  for (const s of specs) {
    procs.push(await startNodeEnrolled(url, s.data, s.name, s.extra));
    await waitOnline(url, s.name);
  }
  return procs;
}

export function killAll(procs: Proc[]): void {
  for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
}

/** A coordinator on a free port with a fresh SQLite file (and the run config as --config, when given), healthy. */
export async function startTestCoordinator(
  config?: object,
): Promise<{ url: string; port: number; db: string; dir: string; proc: Proc }> {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-deploy-'));
  const port = await freePort();
  const db = join(dir, 'state.db');
  let file: string | undefined;
  if (config) writeFileSync((file = join(dir, 'run.json')), JSON.stringify(config));
  const proc = startCoordinator(port, db, file);
  const url = `http://127.0.0.1:${port}`;
  await waitHealthy(url);
  return { url, port, db, dir, proc };
}
