/** The load lab's records and the Markdown table regenerated from every run in connections.json. */
import { existsSync, readFileSync } from 'node:fs';
import type { ClientStats } from '../connections-client.js';
import { environmentLines, machine as machineInfo } from '../support/results-io.js';
import { BENCH } from './options.js';
import { type LoopDelay, type MemPoint, type ProfileSummary } from './inspector.js';
import { phaseLine } from './profile-phases.js';
import type { ClientProfile } from './self-profile.js';
import { connectFailuresMarkdown, type ConnectFailure } from './connect-failure.js';
import { dropTable, type DropCauses } from './drop-causes.js';

export const r1 = (v: number) => Math.round(v * 10) / 10;
export const r3 = (v: number) => Math.round(v * 1000) / 1000;
export const mb = (b: number) => r1(b / 2 ** 20);

export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

export interface LatencySummary {
  samples: number;
  median: number;
  p99: number;
  max: number;
}

export function latency(ms: number[]): LatencySummary {
  const s = [...ms].sort((x, y) => x - y);
  return { samples: s.length, median: quantile(s, 0.5), p99: quantile(s, 0.99), max: s[s.length - 1] ?? NaN };
}

export interface RoundRow {
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

export interface WindowStats {
  seconds: number;
  /** Coordinator CPU seconds (all threads) over the window. */
  cpu_seconds: number;
  /** CPU seconds of the client processes (all of them, all threads) over the window; absent in older runs. */
  clients_cpu_seconds?: number;
  /** Bytes the coordinator caused to be written to storage over the window (SQLite WAL and database). */
  disk_write_bytes: number;
  write_syscalls: number;
  healthz_ms: LatencySummary;
  profile: ProfileSummary | null;
  /** The coordinator's own event-loop delay over the window (what of /healthz's latency is the loop blocked). */
  loop_delay_ms?: LoopDelay;
  /** The coordinator's main thread over the window: on a CPU, and runnable but waiting for one (schedstat). */
  main_thread_sched?: { on_cpu_seconds: number; waiting_seconds: number };
  /** The coordinator's CPU seconds over the window by thread name (main thread, V8 workers, verify threads...). */
  cpu_by_thread?: Record<string, number>;
  /** With --profile, the run window only: each client process's own CPU profile (self time by function). */
  client_profiles?: ClientProfile[];
}

export interface RunRecord {
  key: string;
  /** --client-nice: the client processes' niceness when above 0 (the coordinator ran first on the shared cores). */
  client_nice?: number;
  /** --worker-nice as passed to the coordinator (absent: its default). */
  worker_nice_flag?: number;
  /** The nice value of each named coordinator worker thread during the run, read from /proc (absent: none ran). */
  worker_threads_nice?: Record<string, number>;
  /** --coordinator-node-flags: node/V8 flags the coordinator process ran with (an A/B experiment). */
  coordinator_node_flags?: string[];
  /** How the nodes reached the coordinator; runs recorded before the option existed were all 'ws'. */
  transport?: 'ws' | 'mqtt';
  /** With mqtt: the mosquitto limits set and its memory (/proc/PID/status, sampled every 200 ms). */
  broker?: { config: string[]; rss_peak_sampled_bytes: number; vm_hwm_bytes: number } | null;
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
  /** Why connections closed, from the clients, the coordinator and the kernel (absent in older runs). */
  drop_causes?: DropCauses;
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

export interface ResultsFile {
  benchmark: string;
  description: string;
  runs: RunRecord[];
  /** Runs that could not hold every node: why (connect-failure.ts). */
  connect_failures?: ConnectFailure[];
}

export function loadResults(path: string): ResultsFile {
  if (existsSync(path)) return JSON.parse(readFileSync(path, 'utf8')) as ResultsFile;
  return {
    benchmark: BENCH,
    description:
      'One coordinator process holding N simulated edge-node WebSocket connections through R rounds of the linear model; memory, round latency, bytes.',
    runs: [],
  };
}

/** 'WebSocket' or 'MQTT'; records from before the transport option are WebSocket runs. */
export const transportOf = (r: RunRecord) => (r.transport === 'mqtt' ? 'MQTT' : 'WebSocket');

export const pct = (f: number) => `${r1(f * 100)}%`;
export const kb = (b: number | null) => (b === null ? '?' : `${r1(b / 1024)} KB`);
export const mbOr = (p: MemPoint | null, k: keyof MemPoint) => (p ? `${mb(p[k])} MB` : '?');

export function loopDelayLine(d: LoopDelay | undefined): string {
  if (!d) return 'not measured';
  return `${r1(d.p50)} / ${r1(d.p99)} / ${r1(d.max)} ms (${d.samples} ticks of 10 ms)`;
}

export function schedLine(s: WindowStats['main_thread_sched'], seconds: number): string {
  if (!s || !Number.isFinite(s.waiting_seconds)) return 'scheduler wait not measured';
  return `on a CPU ${r1(s.on_cpu_seconds)} s, runnable but waiting for a CPU ${r1(s.waiting_seconds)} s of ${r1(seconds)} s`;
}

export function threadsLine(t: Record<string, number> | undefined): string {
  if (!t) return 'not measured';
  const all = Object.entries(t).sort((x, y) => y[1] - x[1]);
  const others = all.filter(([name]) => name !== 'main thread');
  const sum = (xs: [string, number][]) => r1(xs.reduce((s, [, cpu]) => s + cpu, 0));
  // The busiest few: the coordinator names its verify thread(s) edgefed-verify; the four busy 'node' threads started
  // with the process are V8's platform workers (concurrent and parallel GC, compilers), at the loop's priority.
  const top = others.slice(0, 6).map(([name, cpu]) => `${name} ${r1(cpu)}`);
  return `main thread ${r1(t['main thread'] ?? 0)}, ${others.length} other threads ${sum(others)} (${top.join(', ')})`;
}

/** The client processes' busy time per request and their top functions (self time summed over processes). */
export function clientProfileLine(profiles: ClientProfile[] | undefined, requests: number): string {
  if (!profiles?.length) return 'not profiled (run with --profile)';
  const busy = profiles.reduce((s, p) => s + p.busy_seconds, 0);
  const by = new Map<string, number>();
  for (const p of profiles) for (const t of p.top) by.set(t.where, (by.get(t.where) ?? 0) + t.seconds);
  const perReq = (s: number) => `${r3((s / Math.max(1, requests)) * 1000)} ms`;
  const top = [...by]
    .sort((x, y) => y[1] - x[1])
    .slice(0, 8)
    .map(([w, s]) => `${w} ${perReq(s)}`);
  return `main threads busy ${r1(busy)} s, ${perReq(busy)} per request; self time per request: ${top.join(', ')}`;
}

export function profileLine(p: ProfileSummary | null): string {
  if (!p) return 'not profiled (run with --profile)';
  return `main thread idle ${pct(p.idle_fraction)}; busy in ${p.by_src_function
    .slice(0, 4)
    .map((x) => `${x.where} ${pct(x.fraction)}`)
    .join(', ')}${p.by_phase ? `; by phase: ${phaseLine(p.by_phase)}` : ''}`;
}

/** Runs recorded before the machine record kept the OpenBLAS core have no `openblas` field at all. */
const coreRecorded = (m: RunRecord['machine']) => (m as { openblas?: unknown }).openblas !== undefined;

export function markdown(f: ResultsFile): string {
  const runs = [...f.runs].sort(
    (a, b) =>
      a.nodes - b.nodes ||
      a.procs - b.procs ||
      a.rounds - b.rounds ||
      String(a.auth).localeCompare(String(b.auth)) ||
      transportOf(a).localeCompare(transportOf(b)),
  );
  const m = runs[runs.length - 1]?.machine;
  const out: string[] = [
    '# Connections: one coordinator, many simulated edge nodes',
    '',
    'One coordinator process (the real CLI, `edgefed coordinator`, SQLite store in a temp dir, `EDGEFED_LOG=warn`) holds N WebSocket',
    'connections from simulated nodes spread over K client processes (`bench/connections-client.ts`). Every connection enrols as its own',
    "node (hello, a heartbeat every 5 s, the welcome's interval) and answers train requests with the real `NodeHost` and trainer over 32",
    'local MNIST rows. A run `{model: linear, rounds: R, minNodes: N, fraction: 1, limitTest: 1000, localEpochs: 1, batchSize: 32, seed: 1}`',
    'is created through the REST API once all N nodes are online. **Lost update** = a round whose contributed count is not N, or any',
    'failure, late update, error reply or dropped connection; the bench exits 1 if there is one.',
    '',
    'With `--transport mqtt` every node links through one mosquitto started by the bench (`mqttAgentSocket`, one MQTT client per node;',
    'the coordinator runs with `--mqtt URL --fleet bench`); enrolment stays HTTP. Broker RSS is its sampled peak from /proc/PID/status.',
    '',
    '| nodes | client procs | rounds | auth | transport | lost updates | round s (mean / median / max) | run wall s | coord RSS idle / connected / after run (after GC) | JS heap per connection (connect / release) | coord peak RSS sampled / VmHWM | /healthz p99 ms idle / run | coord main thread idle, connected / run | clients RSS (sum) | broker peak RSS | dropped connections | MB sent / recv per round |',
    '|---:|---:|---:|:--|:--|:--|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of runs) {
    const c = r.coordinator;
    const idleFrac = (w: WindowStats) => (w.profile ? pct(w.profile.idle_fraction) : '?');
    out.push(
      `| ${r.nodes} | ${r.procs}${r.client_nice ? ` (nice ${r.client_nice})` : ''} | ${r.rounds} | ${r.auth ?? 'n/a'} | ${transportOf(r)} | ${r.ok ? 'none' : `**${r.violations.length} problem(s)**`} | ` +
        `${r3(r.round_seconds.mean)} / ${r3(r.round_seconds.median)} / ${r3(r.round_seconds.max)} | ${r1(r.run_wall_seconds)} | ` +
        `${mbOr(c.gc_idle, 'rss')} / ${mbOr(c.gc_connected, 'rss')} / ${mbOr(c.gc_after_run, 'rss')} | ${kb(c.heap_per_connection_bytes)} / ${kb(c.heap_released_per_connection_bytes)} | ` +
        `${mb(c.rss_peak_sampled_run_bytes)} / ${mb(c.vm_hwm_bytes)} MB | ${r1(c.idle_connected.healthz_ms.p99)} / ${r1(c.run.healthz_ms.p99)} | ` +
        `${idleFrac(c.idle_connected)} / ${idleFrac(c.run)} | ${mb(r.clients.rss_peak_sampled_total_bytes)} MB | ` +
        `${r.broker ? `${mb(r.broker.rss_peak_sampled_bytes)} MB` : '-'} | ${r.disconnects.while_connecting + r.disconnects.idle_window + r.disconnects.run} | ${mb(r.bytes_per_round.sent_mean)} / ${mb(r.bytes_per_round.received_mean)} |`,
    );
  }
  for (const r of runs) {
    const c = r.coordinator;
    out.push(
      '',
      `## ${r.nodes} nodes, ${r.procs} client processes${r.client_nice ? ` (nice ${r.client_nice})` : ''}, ${r.rounds} rounds, auth ${r.auth ?? 'n/a'}, ${transportOf(r)}, ${r.data} data (${r.date.slice(0, 10)})`,
      '',
    );
    out.push(
      r.ok
        ? `All ${r.rounds} rounds fused all ${r.nodes} updates: no failure, no late update, no error reply, no dropped connection.`
        : `**Problems:** ${r.violations.join('; ')}`,
    );
    out.push(
      '',
      '| round | seconds | contributed | failures | test acc | MB sent | MB received | committed at (s after run start) |',
      '|---:|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const d of r.rounds_detail) {
      out.push(
        `| ${d.round} | ${r3(d.seconds)} | ${d.contributed}/${d.selected} | ${d.failures} | ${(d.test_accuracy * 100).toFixed(1)}% | ${mb(d.bytes_sent)} | ${mb(d.bytes_received)} | ${r1(d.seen_committed_at_s)} |`,
      );
    }
    const cl = r.clients;
    const win = (name: string, w: WindowStats) =>
      `- ${name} (${r1(w.seconds)} s): coordinator CPU ${r1(w.cpu_seconds)} s${w.clients_cpu_seconds === undefined ? '' : ` (client processes ${r1(w.clients_cpu_seconds)} s)`}, ${mb(w.disk_write_bytes)} MB written to disk in ${w.write_syscalls} write calls, ` +
      `/healthz median ${r1(w.healthz_ms.median)} / p99 ${r1(w.healthz_ms.p99)} / max ${r1(w.healthz_ms.max)} ms (${w.healthz_ms.samples} probes)${w.loop_delay_ms ? `, coordinator event-loop delay p99 ${r1(w.loop_delay_ms.p99)} / max ${r1(w.loop_delay_ms.max)} ms` : ''}${w.main_thread_sched ? `, main thread ${schedLine(w.main_thread_sched, w.seconds)}` : ''}${w.cpu_by_thread ? `; CPU s by thread: ${threadsLine(w.cpu_by_thread)}` : ''}; ${profileLine(w.profile)}.`;
    out.push(
      '',
      `- Model: ${r.run_config.model} (${r.model_params ?? '?'} parameters), trainer ${r.trainer ?? '?'}${r.kernels ? ` (${r.kernels} kernels)` : ''}; ` +
        `${r.examples_per_node} ${r.data} examples per node; per node per round ${r1(r.bytes_per_round.sent_per_node / 1024)} KB down, ${r1(r.bytes_per_round.received_per_node / 1024)} KB up.`,
      `- Coordinator: ${r.coordinator_entry ?? 'the CLI'}; ${
        r.auth === 'on'
          ? `auth on (the default): every node enrolled an Ed25519 key with a join token (${r1(r.enrol_seconds ?? NaN)} s per client process, 8 at a time, before connecting), signed its hello and signs every reply (${r1(r.client_sign_seconds ?? NaN)} s of client time); the coordinator verifies each`
          : r.auth === 'off'
            ? 'auth off (`--auth off`: nodes are trusted, no keys, no signatures)'
            : 'a version without node authentication'
      }.`,
      ...(r.broker
        ? [
            `- Broker: mosquitto (${r.broker.config.join(', ')}); peak RSS ${mb(r.broker.rss_peak_sampled_bytes)} MB sampled, VmHWM ${mb(r.broker.vm_hwm_bytes)} MB.`,
          ]
        : []),
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
        (r.coordinator_entry
          ? ` **Coordinator entry: ${r.coordinator_entry}** (an A/B experiment, not the stock CLI).`
          : ''),
      ...(r.drop_causes ? [`- Drops by cause: ${dropTable(r.drop_causes).join('; ')}.`] : []),
      `- Machine load (1-min average, ${r.machine.cpu_cores} cores): ${r.load_average?.run_start ?? '?'} when the run started, ${r.load_average?.run_end ?? '?'} when it ended.`,
      ...(r.coordinator_node_flags
        ? [`- Coordinator process flags (\`--coordinator-node-flags\`): ${r.coordinator_node_flags.join(' ')}.`]
        : []),
      ...(r.client_nice
        ? [
            `- Client processes at niceness ${r.client_nice} (\`--client-nice\`): the coordinator's threads run first on the shared cores, as on a machine of its own.`,
          ]
        : []),
      ...(r.worker_threads_nice || r.worker_nice_flag !== undefined
        ? [
            `- Coordinator worker threads (\`--worker-nice\` ${r.worker_nice_flag ?? 'default'}): nice during the run ` +
              `${
                Object.entries(r.worker_threads_nice ?? {})
                  .map(([name, nice]) => `${name} ${nice}`)
                  .join(', ') || 'none seen'
              } (main thread 0).`,
          ]
        : []),
      // CPU, kernels and the OpenBLAS core the run's evaluation used; runs recorded before the core was kept say so.
      coreRecorded(r.machine)
        ? `- Environment: ${environmentLines(r.machine, r.git_commit).slice(0, 2).join('; ')}.`
        : `- Environment: ${r.machine.cpu_model}, ${r.machine.cpu_cores} cores; OpenBLAS core not recorded in this run.`,
      `- Events recorded by the coordinator: ${
        Object.keys(r.events).length
          ? Object.entries(r.events)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ')
          : 'none'
      }; ${c.warn_lines} warn/error log lines.`,
    );
  }
  // Where the coordinator's main thread goes, from the --profile runs: per-heartbeat commits and per-reply signature checks.
  const share = (w: WindowStats, ...fns: string[]) =>
    (w.profile?.by_src_function ?? [])
      .filter((x) => fns.some((f) => x.where.startsWith(`${f} `)))
      .reduce((t, x) => t + x.fraction, 0);
  const profiled = runs.filter((r) => r.coordinator.idle_connected.profile && r.coordinator.run.profile);
  if (profiled.length) {
    out.push(
      '',
      "## Where the coordinator's main thread goes",
      '',
      '**Heartbeats.** Every heartbeat makes the coordinator call `Store.touchNode` (`src/coordinator/server.ts`): an immediate SQLite transaction',
      'on a database opened with `synchronous = FULL`, so one WAL append and one fsync per heartbeat, synchronously on the event loop. Measured',
      '(idle window; ms per heartbeat = share of the main thread x window / heartbeats; "ceiling" = nodes at which heartbeat commits alone',
      'would fill the main thread at that commit time, heartbeat interval / ms per heartbeat):',
      '',
      '| run | heartbeats/s | main thread in touchNode, idle / run | ms per heartbeat | disk KB per heartbeat | ceiling (nodes) |',
      '|:--|---:|---:|---:|---:|---:|',
    );
    for (const r of profiled) {
      const w = r.coordinator.idle_connected;
      const msPer = (share(w, 'touchNode') * w.seconds * 1000) / Math.max(1, r.heartbeats_per_second * w.seconds);
      const interval = r.nodes / Math.max(1e-9, r.heartbeats_per_second);
      out.push(
        `| ${r.nodes} nodes, auth ${r.auth ?? 'n/a'} | ${r1(r.heartbeats_per_second)} | ${pct(share(w, 'touchNode'))} / ${pct(share(r.coordinator.run, 'touchNode'))} | ` +
          `${r3(msPer)} | ${r1(w.disk_write_bytes / Math.max(1, r.heartbeats_per_second * w.seconds) / 1024)} | ${msPer > 0 ? Math.round((interval * 1000) / msPer) : '?'} |`,
      );
    }
    out.push(
      '',
      'The commit time is the fsync latency of the disk, so the ceiling moves with whatever else writes to it: once heartbeats/s x',
      'ms per heartbeat passes 1000 ms per second the backlog grows without bound, /healthz and rounds stall, and the sweeper (3 missed',
      'heartbeat intervals, for nodes with no request pending) drops nodes.',
    );
    const authOn = profiled.filter((r) => r.auth === 'on');
    if (authOn.length) {
      out.push(
        '',
        "**Signed replies.** With auth on, the coordinator verifies every reply's Ed25519 signature (`openSignedFrame` in `src/core/identity.ts`,",
        'Ed25519 through `node:crypto`, plus the SHA-256 of the frame in `signedMessage`). From 256 connected nodes on this runs in the verify',
        "pool's worker thread (`edgefed-verify` in the CPU-by-thread line, at `--worker-nice`); what is left on the main thread (below 256",
        'nodes, and in runs recorded before the pool existed, all of it):',
        authOn
          .map((r) => {
            const f = share(r.coordinator.run, 'openSignedFrame', 'signedMessage');
            const per = (f * r.coordinator.run.seconds * 1000) / (r.nodes * r.rounds);
            return `${r.nodes} nodes: ${pct(f)} of the run's main thread, about ${r3(per)} ms per reply, ${r1((per * r.nodes) / 1000)} s of every round`;
          })
          .join('; ') + '.',
      );
    }
  }
  out.push(...connectFailuresMarkdown(f.connect_failures ?? []));
  out.push(
    '',
    '## Method',
    '',
    '- `node --import tsx bench/connections.ts --nodes N --procs K --rounds R [--profile]`. The coordinator is `node --inspect=127.0.0.1:0 bin/edgefed.mjs',
    '  coordinator --port 0 --db TMP/bench.db` (its stdout line gives the URL; the inspector is only used between phases, and for the profile with',
    '  `--profile`); the clients are `node --import tsx bench/connections-client.ts --conns N/K ...`.',
    "- Each client process shares one trainer (`makeTrainer(spec)` on the run's configure message) and one `NodeHost` (node id -> local data)",
    '  across its connections and answers request frames one at a time, in arrival order. Heartbeats are spread uniformly over the interval.',
    '- Each client process keeps at most 500 of its connections between opening and the welcome at once (a fleet coming online over',
    "  seconds; runs before 2026-12-07 18:30 UTC opened them all at once and overflowed the coordinator's accept queue).",
    '- The run is polled through GET /v1/runs; GET /v1/runs/:id (every round record) is read once a round is committed.',
    '- CPU: the coordinator process and the client processes (all threads) over each window, from /proc/PID/stat.',
    '- Memory: VmRSS and VmHWM from `/proc/PID/status` every 200 ms; and `process.memoryUsage()` of the coordinator right after two forced',
    '  full GCs (through the inspector) idle, after every node is connected and the idle window, and after the run. Per connection =',
    '  (connected - idle) / N. The sampled peak during the run includes loading the evaluation set (MNIST) when the run starts.',
    "- Round latency: the round record's `seconds` (from sending the first train request to the end of central evaluation on 1000 test images).",
    "- Bytes: the round record's `bytesSent` / `bytesReceived` (binary frames only; heartbeats and control messages are not counted).",
    "- Responsiveness: a `GET /healthz` every 200 ms; its latency shows how long the coordinator's event loop is blocked. With `--profile`,",
    "  a V8 CPU profile of the coordinator's main thread (1 ms sampling) is attributed to the innermost `src/` function on the stack; time",
    '  inside synchronous native calls (SQLite, including its fsync) counts for the function that made the call.',
    "  Beside /healthz, the coordinator's own event-loop delay (`monitorEventLoopDelay`, 10 ms resolution, started through",
    '  the inspector for the run): when its p99 is near the /healthz p99, the latency is the loop blocked, not the OS scheduler.',
    '  The longest busy stretches (no idle sample; several turns of the loop may run back to back in one) name their functions.',
    '  With `--profile` each client process also profiles itself over the run (node:inspector): self time per request.',
    "- Client processes and the coordinator share the same cores, so round times include the clients' training. The profile's shares are",
    '  of wall time: a sample taken while the main thread waited for a CPU counts for the function it was in.',
    "- Threads: each coordinator thread's CPU time and nice value from /proc/PID/task/TID/stat. The coordinator names its worker threads",
    '  (`edgefed-verify`, `edgefed-dataset`) and runs them at `--worker-nice` (default 10; `--worker-nice N` here passes it on and marks the',
    '  row), so that the event loop wins the cores from them; the nice value the kernel applied is read back and printed with each run.',
  );
  if (m && coreRecorded(m))
    out.push(
      '',
      `Machine of the last run (${m.note}):`,
      '',
      ...environmentLines(m)
        .slice(0, 2)
        .map((l) => `- ${l}`),
    );
  return `${out.join('\n')}\n`;
}
