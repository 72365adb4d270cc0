/** The processes the load lab starts (coordinator, node clients), their output, and polling them. */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { REPO } from '../support/results-io.js';
import { CLI, SAMPLE_MS } from './options.js';

/** `coordinator --help` of the CLI (or of --coordinator-entry), to see which options this version takes. */
export function coordinatorHelp(entry: string | null): string {
  const args = entry ? [...(/\.[cm]?ts$/.test(entry) ? ['--import', 'tsx'] : []), entry] : [CLI];
  try {
    return execFileSync(process.execPath, [...args, 'coordinator', '--help'], {
      cwd: REPO,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 60_000,
    });
  } catch {
    return '';
  }
}

export interface Child {
  name: string;
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Starts node with `nodeArgs`; when the open-files soft limit is below `needFiles`, raises it for this child only. */
export function startChild(
  name: string,
  nodeArgs: string[],
  env: NodeJS.ProcessEnv,
  needFiles: number,
  limits: { soft: number; hard: number },
): Child {
  let child: ChildProcess;
  const stdio: ['pipe', 'pipe', 'pipe'] = ['pipe', 'pipe', 'pipe'];
  if (limits.soft >= needFiles) {
    child = spawn(process.execPath, nodeArgs, { cwd: REPO, env, stdio });
  } else {
    // `exec` keeps the pid: the shell becomes node, with the raised soft limit for itself alone.
    const quoted = [process.execPath, ...nodeArgs].map((s) => `'${s.replace(/'/g, `'\\''`)}'`).join(' ');
    child = spawn('/bin/sh', ['-c', `ulimit -Sn ${needFiles} && exec ${quoted}`], { cwd: REPO, env, stdio });
  }
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString('utf8');
    if (err.length > 200_000) err = err.slice(-100_000);
  });
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  return { name, child, stderr: () => err, exited };
}

export function lines(c: Child, onLine: (line: string) => void): void {
  createInterface({ input: c.child.stdout! }).on('line', onLine);
}

export async function stopChild(c: Child, how: () => void, graceMs: number): Promise<number | null> {
  if (c.child.exitCode !== null || c.child.signalCode !== null) return c.child.exitCode;
  how();
  const timer = setTimeout(() => c.child.kill('SIGKILL'), graceMs);
  const code = await c.exited;
  clearTimeout(timer);
  return code;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The coordinator's admin token: with auth on, reading nodes and runs and creating runs need a bearer token. */
let bearer = '';
export const useBearer = (token: string) => {
  bearer = token;
};

export async function getJson<T>(url: string, body?: unknown): Promise<{ status: number; json: T }> {
  const auth: Record<string, string> = bearer ? { authorization: `Bearer ${bearer}` } : {};
  const r = await fetch(
    url,
    body === undefined
      ? { headers: auth }
      : { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify(body) },
  );
  return { status: r.status, json: (await r.json()) as T };
}

export async function until<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined>,
  everyMs = 250,
  alive?: () => void,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    alive?.();
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end)
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(everyMs);
  }
}

/** GET /healthz in a loop, SAMPLE_MS apart, until stop() is called; returns the latencies in ms. */
export function healthProbe(api: string): { stop: () => Promise<number[]> } {
  const out: number[] = [];
  let on = true;
  const loop = (async () => {
    while (on) {
      const t = performance.now();
      try {
        // The body is read so the connection goes back to the pool (an unread body holds it).
        await (await fetch(`${api}/healthz`)).arrayBuffer();
        out.push(performance.now() - t);
      } catch {
        // a failed probe leaves a gap; a dead coordinator is reported by the caller
      }
      await sleep(SAMPLE_MS);
    }
  })();
  return {
    stop: async () => {
      on = false;
      await loop;
      return out;
    },
  };
}
