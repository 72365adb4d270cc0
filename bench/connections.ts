/**
 * Benchmark: how many simulated edge nodes one coordinator holds, and what a round costs at that scale.
 *
 * One coordinator process is started through the real CLI (`bin/edgefed.mjs coordinator`, a temp SQLite
 * database, EDGEFED_LOG=warn) on a free loopback port. K client processes (bench/connections-client.ts)
 * then open --nodes real WebSocket connections between them; every connection enrols as its own node,
 * heartbeats at the welcome's interval, and answers the coordinator's request frames with the real
 * NodeHost over 32 local examples. Once /v1/nodes shows every node online, the bench watches the idle
 * coordinator for --idle-s seconds, then creates a run through the REST API
 *   {model:'linear', rounds, minNodes: nodes, fraction: 1, limitTest: 1000, roundTimeoutMs: 600000,
 *    localEpochs: 1, batchSize: 32, seed: 1}
 * and polls it to completion. Every round must be fused from all --nodes updates with no failure, no
 * late update, no error reply and no dropped connection; otherwise the run is recorded as failed and the
 * bench exits 1.
 *
 * Measured: the coordinator's VmRSS and VmHWM (/proc/PID/status, sampled every 200 ms) and, after a
 * full GC forced through the inspector (the coordinator runs with --inspect=127.0.0.1:0), its RSS and JS
 * heap idle, with every node connected, and after the run; its CPU time and disk writes (/proc/PID/io);
 * GET /healthz latency every 200 ms (how long the event loop is blocked); each round's duration (the
 * round record's `seconds`) and bytes; the client processes' RSS. With --profile, a CPU profile of the
 * coordinator's main thread over the idle window and over the run is summarised by source function.
 *
 * Run:  node --import tsx bench/connections.ts [--nodes 1000] [--procs 4] [--rounds 5] [--examples 32]
 *       [--data mnist|synthetic] [--limit-test 1000] [--idle-s 10] [--profile] [--auth on|off] [--timeout-s 3600]
 *       [--results-dir bench/results] [--coordinator-entry FILE]
 *       node --import tsx bench/connections.ts --report-only    (rewrite the .md from the .json)
 * Each run is merged into RESULTS_DIR/connections.json (replacing an earlier run with the same nodes,
 * procs, rounds and data) and RESULTS_DIR/connections.md is regenerated from every run in that file.
 */
import { parseArgs } from 'node:util';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { tmpdir, loadavg } from 'node:os';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { WebSocket } from 'ws';
import type { RoundRecord } from '../src/engine/round-engine.js';
import type { ClientStats } from './connections-client.js';
import { gitCommit, gitSrcDirty, machine as machineInfo, writeAtomic, printEnvironment, REPO } from './support/results-io.js';

const BENCH = 'connections';
const CLI = join(REPO, 'bin', 'edgefed.mjs');
const CLIENT = join(REPO, 'bench', 'connections-client.ts');
const SAMPLE_MS = 200;

interface Args {
  nodes: number;
  procs: number;
  rounds: number;
  examples: number;
  data: 'mnist' | 'synthetic';
  limitTest: number;
  idleS: number;
  profile: boolean;
  /** on: nodes enrol keys and sign (the CLI's default); off: `--auth off`. Ignored by coordinators without auth. */
  auth: 'on' | 'off';
  coordinatorEntry: string | null;
  timeoutS: number;
  resultsDir: string;
  reportOnly: boolean;
}

function parseCli(argv: string[]): Args {
  const { values } = parseArgs({
    args: argv,
    options: {
      nodes: { type: 'string', default: '1000' },
      procs: { type: 'string', default: '4' },
      rounds: { type: 'string', default: '5' },
      examples: { type: 'string', default: '32' },
      data: { type: 'string', default: 'mnist' },
      'limit-test': { type: 'string', default: '1000' },
      'idle-s': { type: 'string', default: '10' },
      profile: { type: 'boolean', default: false },
      auth: { type: 'string', default: 'on' },
      'coordinator-entry': { type: 'string' },
      'timeout-s': { type: 'string', default: '3600' },
      'results-dir': { type: 'string', default: join(REPO, 'bench', 'results') },
      'report-only': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write('usage: node --import tsx bench/connections.ts [--nodes 1000] [--procs 4] [--rounds 5] [--examples 32] [--data mnist|synthetic]\n' +
      '         [--limit-test 1000] [--idle-s 10] [--profile] [--auth on|off] [--timeout-s 3600] [--results-dir DIR]\n' +
      '         [--coordinator-entry FILE]   (A/B experiments: a script taking `coordinator --port P --db F` like bin/edgefed.mjs; .ts runs with tsx)\n' +
      '       node --import tsx bench/connections.ts --report-only [--results-dir DIR]\n');
    process.exit(0);
  }
  const int = (name: string, s: string, min: number): number => {
    const v = Number(s);
    if (s.trim() === '' || !Number.isInteger(v) || v < min) throw new Error(`--${name}: expected a whole number >= ${min}, got '${s}'`);
    return v;
  };
  if (values.data !== 'mnist' && values.data !== 'synthetic') throw new Error(`--data: expected mnist or synthetic, got '${values.data}'`);
  if (values.auth !== 'on' && values.auth !== 'off') throw new Error(`--auth: expected on or off, got '${values.auth}'`);
  const a: Args = {
    nodes: int('nodes', values.nodes!, 1), procs: int('procs', values.procs!, 1), rounds: int('rounds', values.rounds!, 1),
    examples: int('examples', values.examples!, 1), data: values.data, limitTest: int('limit-test', values['limit-test']!, 1),
    idleS: int('idle-s', values['idle-s']!, 0), profile: values.profile!, auth: values.auth, coordinatorEntry: values['coordinator-entry'] ? resolve(values['coordinator-entry']) : null, timeoutS: int('timeout-s', values['timeout-s']!, 1),
    resultsDir: resolve(values['results-dir']!), reportOnly: values['report-only']!,
  };
  if (a.procs > a.nodes) throw new Error(`--procs ${a.procs} is more than --nodes ${a.nodes}`);
  if (a.data === 'mnist' && a.nodes * a.examples > 60000) throw new Error(`--data mnist: ${a.nodes} x ${a.examples} rows is more than MNIST's 60000; use --data synthetic or fewer --examples`);
  return a;
}

// ---------- /proc readers ----------

/** VmRSS and VmHWM of a live process, bytes; null once it is gone. */
function procMemory(pid: number): { rss: number; hwm: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return null;
  }
}

let clockTicks = 100;
try {
  clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  // 100 is the Linux default
}

/** User + system CPU seconds a live process has used so far (all threads); NaN once it is gone. */
function procCpuSeconds(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = s.slice(s.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
    return (Number(fields[11]) + Number(fields[12])) / clockTicks; // utime (14), stime (15)
  } catch {
    return NaN;
  }
}

/** Bytes a process caused to be written to storage, and its write syscalls (/proc/PID/io). */
function procIo(pid: number): { writeBytes: number; syscw: number } {
  try {
    const s = readFileSync(`/proc/${pid}/io`, 'utf8');
    const v = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
    return { writeBytes: v('write_bytes'), syscw: v('syscw') };
  } catch {
    return { writeBytes: NaN, syscw: NaN };
  }
}

/** The soft and hard limits on open files of a process (from /proc/PID/limits). */
function openFileLimits(pid: number | 'self'): { soft: number; hard: number } {
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max open files')) ?? '';
  const [soft, hard] = line.replace('Max open files', '').trim().split(/\s+/);
  const n = (s: string | undefined) => (s === 'unlimited' ? Infinity : Number(s));
  return { soft: n(soft), hard: n(hard) };
}

// ---------- the coordinator's inspector: forced GC, exact heap figures, CPU profiles ----------

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
}

/** One Chrome DevTools Protocol session with the coordinator (opened per use, closed after). */
class Inspector {
  private id = 0;
  private readonly pending = new Map<number, (m: { result?: unknown; error?: { message: string } }) => void>();

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString()) as { id?: number; result?: unknown; error?: { message: string } };
      if (m.id !== undefined) this.pending.get(m.id)?.(m);
      if (m.id !== undefined) this.pending.delete(m.id);
    });
  }

  static async open(url: string): Promise<Inspector> {
    const ws = new WebSocket(url);
    await new Promise<void>((res, rej) => {
      ws.once('open', () => res());
      ws.once('error', rej);
    });
    return new Inspector(ws);
  }

  call<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = ++this.id;
    return new Promise<T>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`inspector ${method}: no answer in 120 s`)), 120_000);
      this.pending.set(id, (m) => {
        clearTimeout(timer);
        if (m.error) rej(new Error(`inspector ${method}: ${m.error.message}`));
        else res(m.result as T);
      });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  close(): void {
    this.ws.close();
  }
}

interface MemPoint {
  rss: number;
  heap_used: number;
  heap_total: number;
  external: number;
  array_buffers: number;
}

/** The coordinator's memory right after a full GC (two passes, so weakly held garbage goes too). */
async function gcMemory(inspectorUrl: string): Promise<MemPoint | null> {
  let ins: Inspector | null = null;
  try {
    ins = await Inspector.open(inspectorUrl);
    await ins.call('HeapProfiler.collectGarbage');
    await ins.call('HeapProfiler.collectGarbage');
    const r = await ins.call<{ result: { value: string } }>('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true });
    const m = JSON.parse(r.result.value) as { rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number };
    return { rss: m.rss, heap_used: m.heapUsed, heap_total: m.heapTotal, external: m.external, array_buffers: m.arrayBuffers };
  } catch (e) {
    process.stderr.write(`${BENCH}: could not read the coordinator's memory through the inspector: ${(e as Error).message}\n`);
    return null;
  } finally {
    ins?.close();
  }
}

interface ProfileSummary {
  seconds: number;
  /** Share of the main thread's wall time with no JS or native code running (waiting in epoll). */
  idle_fraction: number;
  /** Share of wall time by the innermost EdgeFed source function on the stack ('(outside src)' otherwise). */
  by_src_function: { where: string; fraction: number }[];
}

function summariseProfile(p: CpuProfile): ProfileSummary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const where = new Map<number, string>();
  const locate = (id: number): string => {
    const known = where.get(id);
    if (known !== undefined) return known;
    const n = byId.get(id)!;
    const f = n.callFrame;
    let w: string;
    if (f.functionName === '(idle)') w = '(idle)';
    else if (f.functionName === '(garbage collector)') w = '(garbage collector)';
    else if (f.url.includes('/src/')) w = `${f.functionName || '(anonymous)'} ${f.url.slice(f.url.indexOf('/src/') + 1)}`;
    else w = parent.has(id) ? locate(parent.get(id)!) : '(outside src)';
    where.set(id, w);
    return w;
  };
  const time = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    total += dt;
    const w = locate(p.samples[i]);
    time.set(w, (time.get(w) ?? 0) + dt);
  }
  const frac = (v: number) => (total > 0 ? Math.round((v / total) * 1000) / 1000 : NaN);
  return {
    seconds: total / 1e6,
    idle_fraction: frac(time.get('(idle)') ?? 0),
    by_src_function: [...time].filter(([k]) => k !== '(idle)').sort((x, y) => y[1] - x[1]).slice(0, 8).map(([k, v]) => ({ where: k, fraction: frac(v) })),
  };
}

/** Profiles the coordinator's main thread until `done` resolves. */
async function profileUntil(inspectorUrl: string, done: Promise<unknown>): Promise<ProfileSummary | null> {
  let ins: Inspector | null = null;
  try {
    ins = await Inspector.open(inspectorUrl);
    await ins.call('Profiler.enable');
    await ins.call('Profiler.setSamplingInterval', { interval: 1000 });
    await ins.call('Profiler.start');
    await done;
    const r = await ins.call<{ profile: CpuProfile }>('Profiler.stop');
    await ins.call('Profiler.disable');
    return summariseProfile(r.profile);
  } catch (e) {
    process.stderr.write(`${BENCH}: CPU profile failed: ${(e as Error).message}\n`);
    return null;
  } finally {
    ins?.close();
  }
}

// ---------- child processes ----------

/** `coordinator --help` of the CLI (or of --coordinator-entry), to see which options this version takes. */
function coordinatorHelp(entry: string | null): string {
  const args = entry ? [...(/\.[cm]?ts$/.test(entry) ? ['--import', 'tsx'] : []), entry] : [CLI];
  try {
    return execFileSync(process.execPath, [...args, 'coordinator', '--help'], { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 60_000 });
  } catch {
    return '';
  }
}

interface Child {
  name: string;
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Starts node with `nodeArgs`; when the open-files soft limit is below `needFiles`, raises it for this child only. */
function startChild(name: string, nodeArgs: string[], env: NodeJS.ProcessEnv, needFiles: number, limits: { soft: number; hard: number }): Child {
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

function lines(c: Child, onLine: (line: string) => void): void {
  createInterface({ input: c.child.stdout! }).on('line', onLine);
}

async function stopChild(c: Child, how: () => void, graceMs: number): Promise<number | null> {
  if (c.child.exitCode !== null || c.child.signalCode !== null) return c.child.exitCode;
  how();
  const timer = setTimeout(() => c.child.kill('SIGKILL'), graceMs);
  const code = await c.exited;
  clearTimeout(timer);
  return code;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function getJson<T>(url: string, body?: unknown): Promise<{ status: number; json: T }> {
  const r = await fetch(url, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, json: (await r.json()) as T };
}

async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, everyMs = 250, alive?: () => void): Promise<T> {
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
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(everyMs);
  }
}

/** GET /healthz in a loop, SAMPLE_MS apart, until stop() is called; returns the latencies in ms. */
function healthProbe(api: string): { stop: () => Promise<number[]> } {
  const out: number[] = [];
  let on = true;
  const loop = (async () => {
    while (on) {
      const t = performance.now();
      try {
        await fetch(`${api}/healthz`);
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

// ---------- results ----------

const r1 = (v: number) => Math.round(v * 10) / 10;
const r3 = (v: number) => Math.round(v * 1000) / 1000;
const mb = (b: number) => r1(b / 2 ** 20);

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

interface LatencySummary {
  samples: number;
  median: number;
  p99: number;
  max: number;
}

function latency(ms: number[]): LatencySummary {
  const s = [...ms].sort((x, y) => x - y);
  return { samples: s.length, median: quantile(s, 0.5), p99: quantile(s, 0.99), max: s[s.length - 1] ?? NaN };
}

interface RoundRow {
  round: number;
  seconds: number;
  selected: number;
  contributed: number;
  failures: number;
  fused: boolean;
  test_accuracy: number;
  train_loss: number;
  bytes_sent: number;
  bytes_received: number;
  /** Wall time from the run's creation until the bench first saw this round committed (polled every 250 ms). */
  seen_committed_at_s: number;
}

interface WindowStats {
  seconds: number;
  /** Coordinator CPU seconds (all threads) over the window. */
  cpu_seconds: number;
  /** Bytes the coordinator caused to be written to storage over the window (SQLite WAL and database). */
  disk_write_bytes: number;
  write_syscalls: number;
  healthz_ms: LatencySummary;
  profile: ProfileSummary | null;
}

interface RunRecord {
  key: string;
  date: string;
  ok: boolean;
  violations: string[];
  nodes: number;
  procs: number;
  rounds: number;
  data: string;
  examples_per_node: number;
  run_config: Record<string, unknown>;
  model_params: number | null;
  trainer: string | null;
  kernels: string | null;
  open_files_limit: { soft: number | null; hard: number | null; raised_for_children_to: number | null };
  connections_held: number;
  /** From spawning the client processes until the last one has built its data and starts connecting. */
  clients_start_seconds: number;
  /** From the first client starting to connect until /v1/nodes shows every node online. */
  connect_seconds: number;
  run_wall_seconds: number;
  total_wall_seconds: number;
  round_seconds: { mean: number; median: number; min: number; max: number };
  rounds_detail: RoundRow[];
  bytes_per_round: { sent_mean: number; received_mean: number; sent_per_node: number; received_per_node: number };
  heartbeats_per_second: number;
  /** Client connections the coordinator closed (each reconnected), by when it happened. */
  disconnects: { while_connecting: number; idle_window: number; run: number };
  /** The coordinator started instead of `bin/edgefed.mjs` (--coordinator-entry), for A/B experiments; null = the CLI. */
  coordinator_entry: string | null;
  /** 'on': every node enrolled an Ed25519 key and signed its hello and replies; 'off': `--auth off`; null: the coordinator has no auth. */
  auth: 'on' | 'off' | null;
  /** With auth on: the longest time a client process took to create join tokens and enrol its nodes' keys. */
  enrol_seconds: number | null;
  /** With auth on: client time spent signing replies, all processes. */
  client_sign_seconds: number | null;
  coordinator: {
    /** After a forced full GC: idle before any client, with every node connected, after the run (nodes still connected). */
    gc_idle: MemPoint | null;
    gc_connected: MemPoint | null;
    gc_after_run: MemPoint | null;
    /** After the run and after every client has disconnected. */
    gc_disconnected: MemPoint | null;
    /** (connected - idle) / N: RSS is noisy here (startup pages are returned to the OS at some later GC), the JS heap is not. */
    rss_per_connection_bytes: number | null;
    heap_per_connection_bytes: number | null;
    external_per_connection_bytes: number | null;
    /** (after run - disconnected) / N: what the connections held at the end, the same process state otherwise. */
    rss_released_per_connection_bytes: number | null;
    heap_released_per_connection_bytes: number | null;
    rss_peak_sampled_connected_bytes: number;
    rss_peak_sampled_run_bytes: number;
    vm_hwm_bytes: number;
    cpu_seconds_total: number;
    idle_connected: WindowStats;
    run: WindowStats;
    warn_lines: number;
    stderr_tail: string;
  };
  clients: {
    /** Sampled every 200 ms once the process had every connection welcomed. */
    rss_peak_sampled_bytes: number[];
    rss_peak_sampled_total_bytes: number;
    /** Includes building the local data (loading all of MNIST before slicing it). */
    vm_hwm_bytes: number[];
    final: ClientStats[];
  };
  events: Record<string, number>;
  machine: ReturnType<typeof machineInfo>;
  /** 1-minute load average of the machine when the run was created and when it finished (other jobs share the cores). */
  load_average: { run_start: number; run_end: number };
  git_commit: string | null;
  git_src_dirty: boolean | null;
}

interface ResultsFile {
  benchmark: string;
  description: string;
  runs: RunRecord[];
}

function loadResults(path: string): ResultsFile {
  if (existsSync(path)) return JSON.parse(readFileSync(path, 'utf8')) as ResultsFile;
  return {
    benchmark: BENCH,
    description: 'One coordinator process holding N simulated edge-node WebSocket connections through R rounds of the linear model; memory, round latency, bytes.',
    runs: [],
  };
}

const pct = (f: number) => `${r1(f * 100)}%`;
const kb = (b: number | null) => (b === null ? '?' : `${r1(b / 1024)} KB`);
const mbOr = (p: MemPoint | null, k: keyof MemPoint) => (p ? `${mb(p[k])} MB` : '?');

function profileLine(p: ProfileSummary | null): string {
  if (!p) return 'not profiled (run with --profile)';
  return `main thread idle ${pct(p.idle_fraction)}; busy in ${p.by_src_function.slice(0, 4).map((x) => `${x.where} ${pct(x.fraction)}`).join(', ')}`;
}

function markdown(f: ResultsFile): string {
  const runs = [...f.runs].sort((a, b) => a.nodes - b.nodes || a.procs - b.procs || a.rounds - b.rounds || String(a.auth).localeCompare(String(b.auth)));
  const m = runs[runs.length - 1]?.machine;
  const out: string[] = [
    '# Connections: one coordinator, many simulated edge nodes',
    '',
    'One coordinator process (the real CLI, `edgefed coordinator`, SQLite store in a temp dir, `EDGEFED_LOG=warn`) holds N WebSocket',
    'connections from simulated nodes spread over K client processes (`bench/connections-client.ts`). Every connection enrols as its own',
    'node (hello, a heartbeat every 5 s, the welcome\'s interval) and answers train requests with the real `NodeHost` and trainer over 32',
    'local MNIST rows. A run `{model: linear, rounds: R, minNodes: N, fraction: 1, limitTest: 1000, localEpochs: 1, batchSize: 32, seed: 1}`',
    'is created through the REST API once all N nodes are online. **Lost update** = a round whose contributed count is not N, or any',
    'failure, late update, error reply or dropped connection; the bench exits 1 if there is one.',
    '',
    '| nodes | client procs | rounds | auth | lost updates | round s (mean / median / max) | run wall s | coord RSS idle / connected / after run (after GC) | JS heap per connection (connect / release) | coord peak RSS sampled / VmHWM | /healthz p99 ms idle / run | coord main thread idle, connected / run | clients RSS (sum) | MB sent / recv per round |',
    '|---:|---:|---:|:--|:--|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of runs) {
    const c = r.coordinator;
    const idleFrac = (w: WindowStats) => (w.profile ? pct(w.profile.idle_fraction) : '?');
    out.push(`| ${r.nodes} | ${r.procs} | ${r.rounds} | ${r.auth ?? 'n/a'} | ${r.ok ? 'none' : `**${r.violations.length} problem(s)**`} | ` +
      `${r3(r.round_seconds.mean)} / ${r3(r.round_seconds.median)} / ${r3(r.round_seconds.max)} | ${r1(r.run_wall_seconds)} | ` +
      `${mbOr(c.gc_idle, 'rss')} / ${mbOr(c.gc_connected, 'rss')} / ${mbOr(c.gc_after_run, 'rss')} | ${kb(c.heap_per_connection_bytes)} / ${kb(c.heap_released_per_connection_bytes)} | ` +
      `${mb(c.rss_peak_sampled_run_bytes)} / ${mb(c.vm_hwm_bytes)} MB | ${r1(c.idle_connected.healthz_ms.p99)} / ${r1(c.run.healthz_ms.p99)} | ` +
      `${idleFrac(c.idle_connected)} / ${idleFrac(c.run)} | ${mb(r.clients.rss_peak_sampled_total_bytes)} MB | ${mb(r.bytes_per_round.sent_mean)} / ${mb(r.bytes_per_round.received_mean)} |`);
  }
  for (const r of runs) {
    const c = r.coordinator;
    out.push('', `## ${r.nodes} nodes, ${r.procs} client processes, ${r.rounds} rounds, auth ${r.auth ?? 'n/a'}, ${r.data} data (${r.date.slice(0, 10)})`, '');
    out.push(r.ok
      ? `All ${r.rounds} rounds fused all ${r.nodes} updates: no failure, no late update, no error reply, no dropped connection.`
      : `**Problems:** ${r.violations.join('; ')}`);
    out.push('', '| round | seconds | contributed | failures | test acc | MB sent | MB received | committed at (s after run start) |', '|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const d of r.rounds_detail) {
      out.push(`| ${d.round} | ${r3(d.seconds)} | ${d.contributed}/${d.selected} | ${d.failures} | ${(d.test_accuracy * 100).toFixed(1)}% | ${mb(d.bytes_sent)} | ${mb(d.bytes_received)} | ${r1(d.seen_committed_at_s)} |`);
    }
    const cl = r.clients;
    const win = (name: string, w: WindowStats) =>
      `- ${name} (${r1(w.seconds)} s): coordinator CPU ${r1(w.cpu_seconds)} s, ${mb(w.disk_write_bytes)} MB written to disk in ${w.write_syscalls} write calls, ` +
      `/healthz median ${r1(w.healthz_ms.median)} / p99 ${r1(w.healthz_ms.p99)} / max ${r1(w.healthz_ms.max)} ms (${w.healthz_ms.samples} probes); ${profileLine(w.profile)}.`;
    out.push('',
      `- Model: ${r.run_config.model} (${r.model_params ?? '?'} parameters), trainer ${r.trainer ?? '?'}${r.kernels ? ` (${r.kernels} kernels)` : ''}; ` +
      `${r.examples_per_node} ${r.data} examples per node; per node per round ${r1(r.bytes_per_round.sent_per_node / 1024)} KB down, ${r1(r.bytes_per_round.received_per_node / 1024)} KB up.`,
      `- Coordinator: ${r.coordinator_entry ?? 'the CLI'}; ${r.auth === 'on'
        ? `auth on (the default): every node enrolled an Ed25519 key with a join token (${r1(r.enrol_seconds ?? NaN)} s per client process, 8 at a time, before connecting), signed its hello and signs every reply (${r1(r.client_sign_seconds ?? NaN)} s of client time); the coordinator verifies each`
        : r.auth === 'off' ? 'auth off (`--auth off`: nodes are trusted, no keys, no signatures)' : 'a version without node authentication'}.`,
      `- Run start: ${r1((r.rounds_detail[0]?.seen_committed_at_s ?? NaN) - (r.rounds_detail[0]?.seconds ?? NaN))} s from POST /v1/runs to round 1's first request ` +
      '(loading the evaluation set, building the evaluator; includes up to 0.25 s of polling).',
      `- Connections held: ${r.connections_held}, all enrolled ${r1(r.connect_seconds)} s after the first client began connecting (client start-up, building the local data, ` +
      `${r1(r.clients_start_seconds)} s before that); ${r1(r.heartbeats_per_second)} heartbeats/s reach the coordinator; total wall time ${r1(r.total_wall_seconds)} s.`,
      `- Coordinator memory after a forced GC: idle RSS ${mbOr(c.gc_idle, 'rss')} (JS heap ${mbOr(c.gc_idle, 'heap_used')}), ` +
      `connected ${mbOr(c.gc_connected, 'rss')} (heap ${mbOr(c.gc_connected, 'heap_used')}), after the run ${mbOr(c.gc_after_run, 'rss')} (heap ${mbOr(c.gc_after_run, 'heap_used')}, ` +
      `external ${mbOr(c.gc_after_run, 'external')}), every client gone ${mbOr(c.gc_disconnected, 'rss')} (heap ${mbOr(c.gc_disconnected, 'heap_used')}). ` +
      `Per connection: JS heap ${kb(c.heap_per_connection_bytes)} when connecting, ${kb(c.heap_released_per_connection_bytes)} released at disconnection; external ${kb(c.external_per_connection_bytes)}; ` +
      `RSS ${kb(c.rss_per_connection_bytes)} / ${kb(c.rss_released_per_connection_bytes)} (RSS moves by GC page release more than by connections, so it does not resolve them). ` +
      `Sampled peak RSS ${mb(c.rss_peak_sampled_connected_bytes)} MB while connecting and idle, ${mb(c.rss_peak_sampled_run_bytes)} MB during the run; VmHWM ${mb(c.vm_hwm_bytes)} MB.`,
      win('Idle with every node connected', c.idle_connected),
      win('During the run', c.run),
      `- Client processes: peak RSS ${cl.rss_peak_sampled_bytes.map(mb).join(' / ')} MB while holding their connections (VmHWM ${cl.vm_hwm_bytes.map(mb).join(' / ')} MB` +
      `${r.data === 'mnist' ? ', which includes loading MNIST before slicing it' : ''}); ${cl.final.reduce((x, s) => x + s.trainRequests, 0)} train requests answered in ` +
      `${r1(cl.final.reduce((x, s) => x + s.handleSeconds, 0))} s of NodeHost time, ${cl.final.reduce((x, s) => x + s.disconnects, 0)} disconnects, ` +
      `${cl.final.reduce((x, s) => x + s.errorReplies, 0)} error replies, longest queue wait ${r1(Math.max(...cl.final.map((s) => s.maxQueueWaitMs)))} ms.`,
      `- Connections the coordinator dropped (the client reconnects each): ${r.disconnects.while_connecting} while connecting, ${r.disconnects.idle_window} in the idle window, ${r.disconnects.run} during the run.` +
      (r.coordinator_entry ? ` **Coordinator entry: ${r.coordinator_entry}** (an A/B experiment, not the stock CLI).` : ''),
      `- Machine load (1-min average, ${r.machine.cpu_cores} cores): ${r.load_average?.run_start ?? '?'} when the run started, ${r.load_average?.run_end ?? '?'} when it ended.`,
      `- Events recorded by the coordinator: ${Object.keys(r.events).length ? Object.entries(r.events).map(([k, v]) => `${k} ${v}`).join(', ') : 'none'}; ${c.warn_lines} warn/error log lines.`);
  }
  // Where the coordinator's main thread goes, from the --profile runs: per-heartbeat commits and per-reply signature checks.
  const share = (w: WindowStats, ...fns: string[]) => (w.profile?.by_src_function ?? []).filter((x) => fns.some((f) => x.where.startsWith(`${f} `))).reduce((t, x) => t + x.fraction, 0);
  const profiled = runs.filter((r) => r.coordinator.idle_connected.profile && r.coordinator.run.profile);
  if (profiled.length) {
    out.push('', '## Where the coordinator\'s main thread goes', '',
      '**Heartbeats.** Every heartbeat makes the coordinator call `Store.touchNode` (`src/coordinator/server.ts`): an immediate SQLite transaction',
      'on a database opened with `synchronous = FULL`, so one WAL append and one fsync per heartbeat, synchronously on the event loop. Measured',
      '(idle window; ms per heartbeat = share of the main thread x window / heartbeats; "ceiling" = nodes at which heartbeat commits alone',
      'would fill the main thread at that commit time, heartbeat interval / ms per heartbeat):', '',
      '| run | heartbeats/s | main thread in touchNode, idle / run | ms per heartbeat | disk KB per heartbeat | ceiling (nodes) |', '|:--|---:|---:|---:|---:|---:|');
    for (const r of profiled) {
      const w = r.coordinator.idle_connected;
      const msPer = (share(w, 'touchNode') * w.seconds * 1000) / Math.max(1, r.heartbeats_per_second * w.seconds);
      const interval = r.nodes / Math.max(1e-9, r.heartbeats_per_second);
      out.push(`| ${r.nodes} nodes, auth ${r.auth ?? 'n/a'} | ${r1(r.heartbeats_per_second)} | ${pct(share(w, 'touchNode'))} / ${pct(share(r.coordinator.run, 'touchNode'))} | ` +
        `${r3(msPer)} | ${r1(w.disk_write_bytes / Math.max(1, r.heartbeats_per_second * w.seconds) / 1024)} | ${msPer > 0 ? Math.round((interval * 1000) / msPer) : '?'} |`);
    }
    out.push('', 'The commit time is the fsync latency of the disk, so the ceiling moves with whatever else writes to it: once heartbeats/s x',
      'ms per heartbeat passes 1000 ms per second the backlog grows without bound, /healthz and rounds stall, and the sweeper (3 missed',
      'heartbeat intervals, for nodes with no request pending) drops nodes.');
    const authOn = profiled.filter((r) => r.auth === 'on');
    if (authOn.length) {
      out.push('', '**Signed replies.** With auth on, the coordinator verifies every reply\'s Ed25519 signature (`openSignedFrame` in `src/core/identity.ts`,',
        'pure-JS `@noble/curves`, plus the SHA-256 of the frame in `signedMessage`) on the main thread, one after another:',
        authOn.map((r) => {
          const f = share(r.coordinator.run, 'openSignedFrame', 'signedMessage');
          const per = (f * r.coordinator.run.seconds * 1000) / (r.nodes * r.rounds);
          return `${r.nodes} nodes: ${pct(f)} of the run's main thread, about ${r3(per)} ms per reply, ${r1((per * r.nodes) / 1000)} s of every round`;
        }).join('; ') + '.');
    }
  }
  out.push('', '## Method', '',
    '- `node --import tsx bench/connections.ts --nodes N --procs K --rounds R [--profile]`. The coordinator is `node --inspect=127.0.0.1:0 bin/edgefed.mjs',
    '  coordinator --port 0 --db TMP/bench.db` (its stdout line gives the URL; the inspector is only used between phases, and for the profile with',
    '  `--profile`); the clients are `node --import tsx bench/connections-client.ts --conns N/K ...`.',
    '- Each client process shares one trainer (`makeTrainer(spec)` on the run\'s configure message) and one `NodeHost` (node id -> local data)',
    '  across its connections and answers request frames one at a time, in arrival order. Heartbeats are spread uniformly over the interval.',
    '- Memory: VmRSS and VmHWM from `/proc/PID/status` every 200 ms; and `process.memoryUsage()` of the coordinator right after two forced',
    '  full GCs (through the inspector) idle, after every node is connected and the idle window, and after the run. Per connection =',
    '  (connected - idle) / N. The sampled peak during the run includes loading the evaluation set (MNIST) when the run starts.',
    '- Round latency: the round record\'s `seconds` (from sending the first train request to the end of central evaluation on 1000 test images).',
    '- Bytes: the round record\'s `bytesSent` / `bytesReceived` (binary frames only; heartbeats and control messages are not counted).',
    '- Responsiveness: a `GET /healthz` every 200 ms; its latency shows how long the coordinator\'s event loop is blocked. With `--profile`,',
    '  a V8 CPU profile of the coordinator\'s main thread (1 ms sampling) is attributed to the innermost `src/` function on the stack; time',
    '  inside synchronous native calls (SQLite, including its fsync) counts for the function that made the call.',
    '- Client processes and the coordinator share the same cores, so round times include the clients\' training.',
  );
  if (m) out.push('', `Machine: ${m.cpu_model}, ${m.cpu_cores} cores (${m.note}), ${m.memory_gb} GB, ${m.platform}, Node ${m.node}.`);
  return `${out.join('\n')}\n`;
}

// ---------- the benchmark ----------

interface RunView {
  id: number;
  status: string;
  error?: string | null;
  roundsCompleted: number;
  rounds: RoundRecord[];
}

async function bench(a: Args): Promise<RunRecord> {
  const t0 = performance.now();
  const since = (t: number) => (performance.now() - t) / 1000;
  const machine = machineInfo();
  const perProc = Array.from({ length: a.procs }, (_, p) => Math.floor(a.nodes / a.procs) + (p < a.nodes % a.procs ? 1 : 0));
  const limits = openFileLimits('self');
  const needCoord = a.nodes + 256;
  const needClient = Math.max(...perProc) + 256;
  const need = Math.max(needCoord, needClient);
  let raisedTo: number | null = null;
  printEnvironment(BENCH);
  process.stderr.write(`${BENCH}: ${a.nodes} nodes over ${a.procs} client processes (${perProc.join('+')}), ${a.rounds} rounds; ` +
    `open files soft ${limits.soft} / hard ${limits.hard} (need about ${need})\n`);
  if (limits.soft < need) {
    if (limits.hard < need) throw new Error(`the open-files hard limit is ${limits.hard}, below the ~${need} this run needs; run with fewer --nodes or raise it (ulimit -Hn as root)`);
    raisedTo = need;
    process.stderr.write(`${BENCH}: open-files soft limit ${limits.soft} is too low; raising it to ${need} for the child processes only\n`);
  }

  const dir = mkdtempSync(join(tmpdir(), 'edgefed-connections-'));
  const children: Child[] = [];
  const violations: string[] = [];
  try {
    // 1. The coordinator, through the CLI.
    // Coordinators that authenticate nodes (enrolled Ed25519 keys, signed hellos and replies) do so by default; with
    // --auth on every simulated node enrols a key and signs like the agent, with --auth off the coordinator trusts them.
    const hasAuth = coordinatorHelp(a.coordinatorEntry).includes('--auth <mode>');
    const authOff = hasAuth && a.auth === 'off';
    const authOn = hasAuth && a.auth === 'on';
    const entry = a.coordinatorEntry ? [...(/\.[cm]?ts$/.test(a.coordinatorEntry) ? ['--import', 'tsx'] : []), a.coordinatorEntry] : [CLI];
    const coord = startChild('coordinator', ['--inspect=127.0.0.1:0', ...entry, 'coordinator', '--port', '0', '--db', join(dir, 'bench.db'), ...(authOff ? ['--auth', 'off'] : [])],
      { ...process.env, EDGEFED_LOG: 'warn' }, needCoord, limits);
    children.push(coord);
    const coordPid = coord.child.pid!;
    let api = '';
    let adminToken = '';
    lines(coord, (l) => {
      try {
        const j = JSON.parse(l) as { api?: string; adminToken?: string };
        if (j.api) api = j.api;
        if (j.adminToken) adminToken = j.adminToken;
      } catch {
        // other stdout output is ignored
      }
    });
    const alive = () => {
      for (const c of children) {
        if (c.child.exitCode !== null || c.child.signalCode !== null) {
          throw new Error(`${c.name} exited (code ${c.child.exitCode}, signal ${c.child.signalCode}); stderr tail:\n${c.stderr().slice(-3000)}`);
        }
      }
    };
    await until('the coordinator URL', 60_000, async () => (api ? api : undefined), 100, alive);
    await until('coordinator health', 60_000, async () => ((await fetch(`${api}/healthz`)).ok ? true : undefined), 100, alive);
    const inspectorUrl = /Debugger listening on (ws:\/\/\S+)/.exec(coord.stderr())?.[1] ?? '';
    const coordLimits = openFileLimits(coordPid);
    const cpuAtStart = procCpuSeconds(coordPid);
    await sleep(1000);
    const gcIdle = await gcMemory(inspectorUrl);
    process.stderr.write(`${BENCH}: coordinator ${api} pid ${coordPid}, RSS ${mb(gcIdle?.rss ?? NaN)} MB idle after GC\n`);

    // 2. Memory sampler for every process.
    let phase: 'connecting' | 'run' | 'done' = 'connecting';
    let coordPeakConnected = 0;
    let coordPeakRun = 0;
    let coordHwm = 0;
    const clientPeak = new Map<number, number>();
    const clientHwm = new Map<number, number>();
    const ready = new Map<number, ClientStats>();
    const sampler = setInterval(() => {
      const c = procMemory(coordPid);
      if (c) {
        coordHwm = Math.max(coordHwm, c.hwm);
        if (phase === 'connecting') coordPeakConnected = Math.max(coordPeakConnected, c.rss);
        if (phase === 'run') coordPeakRun = Math.max(coordPeakRun, c.rss);
      }
      children.slice(1).forEach((ch, p) => {
        const m = procMemory(ch.child.pid!);
        if (!m) return;
        if (phase !== 'done' && ready.has(p)) clientPeak.set(p, Math.max(clientPeak.get(p) ?? 0, m.rss));
        clientHwm.set(p, Math.max(clientHwm.get(p) ?? 0, m.hwm));
      });
    }, SAMPLE_MS);

    // 3. The client processes.
    const tConnect = performance.now();
    const connecting = new Map<number, number>();
    const finals = new Map<number, ClientStats>();
    const statsReplies = new Map<number, ClientStats>();
    const progress = new Map<number, { welcomed: number; open: number; disconnects: number }>();
    let lastProgress = performance.now();
    let first = 0;
    for (let p = 0; p < a.procs; p++) {
      const c = startChild(`client ${p}`, ['--expose-gc', '--import', 'tsx', CLIENT, '--url', api, '--proc', String(p), '--conns', String(perProc[p]),
        '--first', String(first), '--examples', String(a.examples), '--data', a.data, ...(authOn ? ['--auth'] : [])],
      { ...process.env, ...(authOn ? { EDGEFED_BENCH_ADMIN_TOKEN: adminToken } : {}) }, needClient, limits);
      first += perProc[p];
      children.push(c);
      lines(c, (l) => {
        let j: ClientStats & { type: string };
        try {
          j = JSON.parse(l) as ClientStats & { type: string };
        } catch {
          return;
        }
        if (j.type === 'connecting') connecting.set(p, performance.now());
        if (j.type === 'progress') progress.set(p, j as unknown as { welcomed: number; open: number; disconnects: number });
        if (j.type === 'ready') ready.set(p, j);
        if (j.type === 'stats') statsReplies.set(p, j);
        if (j.type === 'final') finals.set(p, j);
      });
    }
    const clients = children.slice(1);
    if (authOn && !adminToken) throw new Error('the coordinator printed no admin token, so nodes cannot enrol; try --auth off');
    await until('every client connection welcomed', 600_000, async () => {
      if (ready.size === a.procs) return true;
      if (performance.now() - lastProgress > 10_000 && progress.size > 0) {
        lastProgress = performance.now();
        const v = [...progress.values()];
        process.stderr.write(`${BENCH}: connecting: ${v.reduce((x, q) => x + q.welcomed, 0)} of ${a.nodes} welcomed, ${v.reduce((x, q) => x + q.open, 0)} open, ` +
          `${v.reduce((x, q) => x + q.disconnects, 0)} closed by the coordinator so far (${ready.size} of ${a.procs} clients done)\n`);
      }
      return undefined;
    }, 100, alive);
    const online = await until(`${a.nodes} nodes online in /v1/nodes`, 120_000, async () => {
      const { json } = await getJson<{ nodes: { online: boolean }[] }>(`${api}/v1/nodes`);
      const n = json.nodes.filter((x) => x.online).length;
      return n >= a.nodes ? n : undefined;
    }, 250, alive);
    const clientsStartSeconds = (Math.max(...connecting.values()) - tConnect) / 1000;
    const connectSeconds = since(Math.min(...connecting.values()));
    process.stderr.write(`${BENCH}: clients built their data in ${r1(clientsStartSeconds)} s; ${online} nodes online ${r1(connectSeconds)} s after the first client began connecting\n`);

    // 4. Idle with every node connected: what holding the connections costs (heartbeats).
    const clientTotals = async () => {
      statsReplies.clear();
      for (const c of clients) c.child.stdin!.write('stats\n');
      await until('client stats', 30_000, async () => (statsReplies.size === a.procs ? true : undefined), 20, alive);
      const all = [...statsReplies.values()];
      return { hb: all.reduce((x, s) => x + s.heartbeatsSent, 0), drops: all.reduce((x, s) => x + s.disconnects, 0) };
    };
    const win0 = { t: performance.now(), cpu: procCpuSeconds(coordPid), io: procIo(coordPid), ...(await clientTotals()) };
    const idleProbe = healthProbe(api);
    const idleProfile = a.profile ? profileUntil(inspectorUrl, sleep(a.idleS * 1000)) : sleep(a.idleS * 1000).then(() => null);
    const idleProfileSummary = await idleProfile;
    const idleHealth = await idleProbe.stop();
    const win1 = { t: performance.now(), cpu: procCpuSeconds(coordPid), io: procIo(coordPid), ...(await clientTotals()) };
    alive();
    const idleWindow: WindowStats = {
      seconds: (win1.t - win0.t) / 1000, cpu_seconds: win1.cpu - win0.cpu, disk_write_bytes: win1.io.writeBytes - win0.io.writeBytes,
      write_syscalls: win1.io.syscw - win0.io.syscw, healthz_ms: latency(idleHealth), profile: idleProfileSummary,
    };
    const heartbeatsPerSecond = (win1.hb - win0.hb) / idleWindow.seconds;
    const dropsBeforeRun = win1.drops;
    const gcConnected = await gcMemory(inspectorUrl);
    process.stderr.write(`${BENCH}: idle ${r1(idleWindow.seconds)} s with ${online} nodes: ${r1(heartbeatsPerSecond)} heartbeats/s, coordinator CPU ${r1(idleWindow.cpu_seconds)} s, ` +
      `/healthz p99 ${r1(idleWindow.healthz_ms.p99)} ms, ${profileLine(idleProfileSummary)}; RSS ${mb(gcConnected?.rss ?? NaN)} MB after GC\n`);

    // 5. The run, with /healthz probed every 200 ms.
    phase = 'run';
    const runConfig = { model: 'linear', rounds: a.rounds, minNodes: a.nodes, fraction: 1, limitTest: a.limitTest, roundTimeoutMs: 600_000, localEpochs: 1, batchSize: 32, seed: 1 };
    const run0 = { t: performance.now(), cpu: procCpuSeconds(coordPid), io: procIo(coordPid), load: loadavg()[0] };
    let runFinished: () => void = () => {};
    const runProfile = a.profile ? profileUntil(inspectorUrl, new Promise<void>((res) => (runFinished = res))) : Promise.resolve(null);
    const created = await getJson<{ id?: number; error?: { message: string } }>(`${api}/v1/runs`, runConfig);
    if (created.status !== 201 || created.json.id === undefined) throw new Error(`POST /v1/runs answered ${created.status}: ${JSON.stringify(created.json)}`);
    const runId = created.json.id;
    const runProbe = healthProbe(api);
    const seenAt = new Map<number, number>();
    const view = await until(`run ${runId} to finish`, a.timeoutS * 1000, async () => {
      const { json } = await getJson<RunView>(`${api}/v1/runs/${runId}`);
      for (let r = 1; r <= json.roundsCompleted; r++) {
        if (!seenAt.has(r)) {
          seenAt.set(r, since(run0.t));
          const rec = json.rounds[r - 1];
          process.stderr.write(`${BENCH}: round ${r} committed: ${rec?.contributed.length}/${rec?.selected.length} contributed, ` +
            `${rec?.failures.length} failures, ${r3(rec?.seconds ?? NaN)} s, coordinator RSS ${mb(procMemory(coordPid)?.rss ?? NaN)} MB\n`);
        }
      }
      return ['completed', 'failed', 'stopped'].includes(json.status) ? json : undefined;
    }, 250, alive);
    const run1 = { t: performance.now(), cpu: procCpuSeconds(coordPid), io: procIo(coordPid), load: loadavg()[0] };
    runFinished();
    const runHealth = await runProbe.stop();
    const runWindow: WindowStats = {
      seconds: (run1.t - run0.t) / 1000, cpu_seconds: run1.cpu - run0.cpu, disk_write_bytes: run1.io.writeBytes - run0.io.writeBytes,
      write_syscalls: run1.io.syscw - run0.io.syscw, healthz_ms: latency(runHealth), profile: await runProfile,
    };
    phase = 'done';
    const gcAfterRun = await gcMemory(inspectorUrl);
    const events = (await getJson<{ events: { kind: string }[] }>(`${api}/v1/runs/${runId}/events`)).json.events;
    const eventCounts: Record<string, number> = {};
    for (const e of events) eventCounts[e.kind] = (eventCounts[e.kind] ?? 0) + 1;
    const nodesOnlineAtEnd = (await getJson<{ nodes: { online: boolean }[] }>(`${api}/v1/nodes`)).json.nodes.filter((x) => x.online).length;
    const checkpoint = await getJson<{ numParams?: number }>(`${api}/v1/runs/${runId}/checkpoint`);
    const finalMem = procMemory(coordPid);
    if (finalMem) coordHwm = Math.max(coordHwm, finalMem.hwm);
    const cpuTotal = procCpuSeconds(coordPid) - cpuAtStart;

    // 6. Stop the clients (they report first), then the coordinator.
    clearInterval(sampler);
    for (const c of clients) await stopChild(c, () => c.child.stdin!.write('stop\n'), 15_000);
    const clientFinal = [...finals.entries()].sort((x, y) => x[0] - y[0]).map(([, s]) => s);
    const allOffline = await until('every node offline', 60_000, async () => {
      const { json } = await getJson<{ nodes: { online: boolean }[] }>(`${api}/v1/nodes`);
      return json.nodes.some((x) => x.online) ? undefined : true;
    }, 250).catch(() => false);
    const gcDisconnected = allOffline ? await gcMemory(inspectorUrl) : null;
    const coordCode = await stopChild(coord, () => coord.child.kill('SIGTERM'), 15_000);

    // 7. Lost updates and anything else that went wrong.
    if (view.status !== 'completed') violations.push(`run ended '${view.status}'${view.error ? `: ${view.error}` : ''}`);
    if (view.rounds.length !== a.rounds) violations.push(`${view.rounds.length} of ${a.rounds} rounds committed`);
    for (const r of view.rounds) {
      if (r.selected.length !== a.nodes) violations.push(`round ${r.round}: ${r.selected.length} nodes selected, not ${a.nodes}`);
      if (r.contributed.length !== a.nodes) violations.push(`round ${r.round}: ${r.contributed.length} updates fused, not ${a.nodes}`);
      if (r.failures.length > 0) violations.push(`round ${r.round}: ${r.failures.length} failures, e.g. node ${r.failures[0].nodeId}: ${r.failures[0].error}`);
      if (!r.fused) violations.push(`round ${r.round} was not fused`);
    }
    for (const k of ['late_update', 'node_failure', 'rejected']) if (eventCounts[k]) violations.push(`${eventCounts[k]} '${k}' events`);
    if (clientFinal.length !== a.procs) violations.push(`${clientFinal.length} of ${a.procs} client processes reported`);
    const sum = (f: (s: ClientStats) => number) => clientFinal.reduce((acc, s) => acc + f(s), 0);
    if (sum((s) => s.trainRequests) !== a.nodes * a.rounds) violations.push(`clients answered ${sum((s) => s.trainRequests)} train requests, expected ${a.nodes * a.rounds}`);
    if (sum((s) => s.disconnects) > 0) violations.push(`${sum((s) => s.disconnects)} client connections dropped`);
    if (sum((s) => s.errorReplies) > 0) violations.push(`${sum((s) => s.errorReplies)} error replies from NodeHost`);
    if (sum((s) => s.coordinatorErrors) > 0) violations.push(`${sum((s) => s.coordinatorErrors)} error messages from the coordinator`);
    if (nodesOnlineAtEnd !== a.nodes) violations.push(`${nodesOnlineAtEnd} nodes online at the end, not ${a.nodes}`);
    if (coordCode !== 0) violations.push(`coordinator exited with code ${coordCode}`);

    const secs = view.rounds.map((r) => r.seconds);
    const sorted = [...secs].sort((x, y) => x - y);
    const coordErr = coord.stderr().split('\n').filter((l) => !/^(Debugger listening on|Debugger ending on|For help, see|Debugger attached|Waiting for the debugger)/.test(l.trim())).join('\n');
    const perConn = (k: keyof MemPoint) => (gcIdle && gcConnected ? (gcConnected[k] - gcIdle[k]) / a.nodes : null);
    const released = (k: keyof MemPoint) => (gcAfterRun && gcDisconnected ? (gcAfterRun[k] - gcDisconnected[k]) / a.nodes : null);
    const record: RunRecord = {
      key: `${a.nodes}x${a.procs}:${a.rounds}:${a.data}:auth-${hasAuth ? a.auth : 'none'}${a.coordinatorEntry ? `:${a.coordinatorEntry}` : ''}`,
      date: new Date().toISOString(),
      ok: violations.length === 0,
      violations,
      nodes: a.nodes, procs: a.procs, rounds: a.rounds, data: a.data, examples_per_node: a.examples,
      run_config: runConfig,
      model_params: checkpoint.json.numParams ?? null,
      trainer: clientFinal[0]?.trainer ?? null,
      kernels: clientFinal[0]?.kernels ?? null,
      open_files_limit: { soft: Number.isFinite(coordLimits.soft) ? coordLimits.soft : null, hard: Number.isFinite(coordLimits.hard) ? coordLimits.hard : null, raised_for_children_to: raisedTo },
      connections_held: online,
      clients_start_seconds: clientsStartSeconds,
      connect_seconds: connectSeconds,
      run_wall_seconds: runWindow.seconds,
      total_wall_seconds: since(t0),
      round_seconds: { mean: secs.reduce((x, y) => x + y, 0) / secs.length, median: quantile(sorted, 0.5), min: sorted[0] ?? NaN, max: sorted[sorted.length - 1] ?? NaN },
      rounds_detail: view.rounds.map((r) => ({
        round: r.round, seconds: r.seconds, selected: r.selected.length, contributed: r.contributed.length, failures: r.failures.length, fused: r.fused,
        test_accuracy: r.testAccuracy, train_loss: r.trainLoss, bytes_sent: r.bytesSent, bytes_received: r.bytesReceived, seen_committed_at_s: seenAt.get(r.round) ?? NaN,
      })),
      bytes_per_round: {
        sent_mean: view.rounds.reduce((x, r) => x + r.bytesSent, 0) / view.rounds.length,
        received_mean: view.rounds.reduce((x, r) => x + r.bytesReceived, 0) / view.rounds.length,
        sent_per_node: view.rounds.reduce((x, r) => x + r.bytesSent, 0) / view.rounds.length / a.nodes,
        received_per_node: view.rounds.reduce((x, r) => x + r.bytesReceived, 0) / view.rounds.length / a.nodes,
      },
      heartbeats_per_second: heartbeatsPerSecond,
      disconnects: { while_connecting: win0.drops, idle_window: win1.drops - win0.drops, run: sum((s) => s.disconnects) - dropsBeforeRun },
      coordinator_entry: a.coordinatorEntry,
      auth: hasAuth ? a.auth : null,
      enrol_seconds: authOn ? Math.max(...clientFinal.map((x) => x.enrolSeconds)) : null,
      client_sign_seconds: authOn ? sum((x) => x.signSeconds) : null,
      coordinator: {
        gc_idle: gcIdle, gc_connected: gcConnected, gc_after_run: gcAfterRun, gc_disconnected: gcDisconnected,
        rss_per_connection_bytes: perConn('rss'),
        heap_per_connection_bytes: perConn('heap_used'),
        external_per_connection_bytes: perConn('external'),
        rss_released_per_connection_bytes: released('rss'),
        heap_released_per_connection_bytes: released('heap_used'),
        rss_peak_sampled_connected_bytes: coordPeakConnected,
        rss_peak_sampled_run_bytes: coordPeakRun,
        vm_hwm_bytes: coordHwm,
        cpu_seconds_total: cpuTotal,
        idle_connected: idleWindow,
        run: runWindow,
        warn_lines: coordErr.split('\n').filter((l) => l.trim() !== '').length,
        stderr_tail: coordErr.slice(-2000),
      },
      clients: {
        rss_peak_sampled_bytes: clients.map((_, p) => clientPeak.get(p) ?? NaN),
        rss_peak_sampled_total_bytes: clients.reduce((x, _, p) => x + (clientPeak.get(p) ?? 0), 0),
        vm_hwm_bytes: clients.map((_, p) => clientHwm.get(p) ?? NaN),
        final: clientFinal,
      },
      events: eventCounts,
      machine,
      load_average: { run_start: Math.round(run0.load * 100) / 100, run_end: Math.round(run1.load * 100) / 100 },
      git_commit: gitCommit(),
      git_src_dirty: gitSrcDirty(),
    };
    for (const c of clients) {
      const tail = c.stderr().split('\n').filter((l) => l.trim() !== '' && !l.includes('configured for run'));
      if (tail.length) process.stderr.write(`${BENCH}: ${c.name} stderr (${tail.length} lines):\n${tail.slice(-20).join('\n')}\n`);
    }
    if (coordErr.trim()) process.stderr.write(`${BENCH}: coordinator stderr tail:\n${coordErr.slice(-3000)}\n`);
    return record;
  } catch (e) {
    // Say why connections closed: the clients log every close with the coordinator's close code and reason.
    for (const c of children.slice(1)) {
      const why = new Map<string, number>();
      for (const m of c.stderr().matchAll(/closed: (\d+ [^;]*);/g)) why.set(m[1], (why.get(m[1]) ?? 0) + 1);
      if (why.size) process.stderr.write(`${BENCH}: ${c.name}: connections closed by the coordinator: ${[...why].map(([k, v]) => `${v} x '${k.trim()}'`).join(', ')}\n`);
    }
    throw e;
  } finally {
    for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
    await Promise.all(children.map((c) => c.exited));
    rmSync(dir, { recursive: true, force: true });
  }
}

function printTable(r: RunRecord): void {
  const c = r.coordinator;
  const rows: [string, string][] = [
    ['connections held', String(r.connections_held)],
    ['lost updates / problems', r.ok ? 'none' : r.violations.join('; ')],
    ['connect (all enrolled)', `${r1(r.connect_seconds)} s (+ ${r1(r.clients_start_seconds)} s client start-up)`],
    ...r.rounds_detail.map((d): [string, string] => [`round ${d.round}`, `${r3(d.seconds)} s, ${d.contributed}/${d.selected} fused, ${d.failures} failures, ` +
      `acc ${(d.test_accuracy * 100).toFixed(1)}%, ${mb(d.bytes_sent)} MB sent / ${mb(d.bytes_received)} MB received`]),
    ['round seconds mean / median / max', `${r3(r.round_seconds.mean)} / ${r3(r.round_seconds.median)} / ${r3(r.round_seconds.max)}`],
    ['run wall time', `${r1(r.run_wall_seconds)} s`],
    ['total wall time', `${r1(r.total_wall_seconds)} s`],
    ['coord RSS after GC idle / connected / after run', `${mbOr(c.gc_idle, 'rss')} / ${mbOr(c.gc_connected, 'rss')} / ${mbOr(c.gc_after_run, 'rss')}`],
    ['coord JS heap after GC idle / connected / after run', `${mbOr(c.gc_idle, 'heap_used')} / ${mbOr(c.gc_connected, 'heap_used')} / ${mbOr(c.gc_after_run, 'heap_used')}`],
    ['coord RSS / JS heap after clients left', `${mbOr(c.gc_disconnected, 'rss')} / ${mbOr(c.gc_disconnected, 'heap_used')}`],
    ['per connection JS heap connect / release', `${kb(c.heap_per_connection_bytes)} / ${kb(c.heap_released_per_connection_bytes)} (RSS ${kb(c.rss_per_connection_bytes)} / ${kb(c.rss_released_per_connection_bytes)}, noisy)`],
    ['coord peak RSS sampled connecting / run; VmHWM', `${mb(c.rss_peak_sampled_connected_bytes)} / ${mb(c.rss_peak_sampled_run_bytes)} MB; ${mb(c.vm_hwm_bytes)} MB`],
    ['heartbeats/s', `${r1(r.heartbeats_per_second)}`],
    ['dropped connections connecting / idle / run', `${r.disconnects.while_connecting} / ${r.disconnects.idle_window} / ${r.disconnects.run}`],
    ['idle window: CPU s, disk MB, /healthz p99 / max', `${r1(c.idle_connected.cpu_seconds)} s of ${r1(c.idle_connected.seconds)} s, ${mb(c.idle_connected.disk_write_bytes)} MB, ${r1(c.idle_connected.healthz_ms.p99)} / ${r1(c.idle_connected.healthz_ms.max)} ms`],
    ['idle window profile', profileLine(c.idle_connected.profile)],
    ['run: CPU s, disk MB, /healthz median / p99 / max', `${r1(c.run.cpu_seconds)} s of ${r1(c.run.seconds)} s, ${mb(c.run.disk_write_bytes)} MB, ${r1(c.run.healthz_ms.median)} / ${r1(c.run.healthz_ms.p99)} / ${r1(c.run.healthz_ms.max)} ms`],
    ['run profile', profileLine(c.run.profile)],
    ['client RSS peak (holding connections)', `${r.clients.rss_peak_sampled_bytes.map(mb).join(' / ')} MB (sum ${mb(r.clients.rss_peak_sampled_total_bytes)} MB)`],
    ['client VmHWM (incl. MNIST load)', `${r.clients.vm_hwm_bytes.map(mb).join(' / ')} MB`],
    ['bytes per round sent / received', `${mb(r.bytes_per_round.sent_mean)} MB / ${mb(r.bytes_per_round.received_mean)} MB`],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  process.stdout.write(`${rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n')}\n`);
}

async function main(): Promise<void> {
  const a = parseCli(process.argv.slice(2));
  const jsonPath = join(a.resultsDir, `${BENCH}.json`);
  const mdPath = join(a.resultsDir, `${BENCH}.md`);
  const file = loadResults(jsonPath);
  if (a.reportOnly) {
    writeAtomic(mdPath, markdown(file));
    process.stderr.write(`${BENCH}: wrote ${mdPath} from ${file.runs.length} run(s)\n`);
    return;
  }
  const record = await bench(a);
  printTable(record);
  file.runs = [...file.runs.filter((r) => r.key !== record.key), record];
  writeAtomic(jsonPath, `${JSON.stringify(file, null, 2)}\n`);
  writeAtomic(mdPath, markdown(file));
  process.stderr.write(`${BENCH}: wrote ${jsonPath} and ${mdPath}\n`);
  if (!record.ok) {
    process.stderr.write(`${BENCH}: FAILED: ${record.violations.join('; ')}\n`);
    process.exitCode = 1;
  }
}

main().catch((e: Error) => {
  process.stderr.write(`${BENCH}: ${e.stack ?? e.message}\n`);
  process.exit(1);
});
