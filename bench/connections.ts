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
 * With --transport mqtt the bench starts its own mosquitto (bench/connections/broker.ts) on a free loopback port, the
 * coordinator serves it with --mqtt URL --fleet bench, and every node links through it with mqttAgentSocket.
 *
 * Measured: the coordinator's VmRSS and VmHWM (/proc/PID/status, sampled every 200 ms) and, after a
 * full GC forced through the inspector (the coordinator runs with --inspect=127.0.0.1:0), its RSS and JS
 * heap idle, with every node connected, and after the run; its CPU time and disk writes (/proc/PID/io);
 * GET /healthz latency every 200 ms (how long the event loop is blocked); each round's duration (the
 * round record's `seconds`) and bytes; the client processes' RSS. With --profile, a CPU profile of the
 * coordinator's main thread over the idle window and over the run is summarised by source function.
 *
 * Run:  node --import tsx bench/connections.ts [--nodes 1000] [--procs 4] [--rounds 5] [--examples 32]
 *       [--data mnist|synthetic] [--limit-test 1000] [--idle-s 10] [--profile] [--auth on|off] [--transport ws|mqtt] [--timeout-s 3600]
 *       [--results-dir bench/results] [--coordinator-entry FILE]
 *       node --import tsx bench/connections.ts --report-only    (rewrite the .md from the .json)
 * Each run is merged into RESULTS_DIR/connections.json (replacing an earlier run with the same nodes,
 * procs, rounds and data) and RESULTS_DIR/connections.md is regenerated from every run in that file.
 */
import { tmpdir, loadavg, setPriority } from 'node:os';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { RoundRecord } from '../src/engine/round-engine.js';
import type { ClientStats } from './connections-client.js';
import { gitCommit, gitSrcDirty, machine as machineInfo, writeAtomic, printEnvironment } from './support/results-io.js';
import { BENCH, CLI, CLIENT, FLEET, SAMPLE_MS, type Args, parseCli } from './connections/options.js';
import {
  procMemory,
  procCpuSeconds,
  procIo,
  openFileLimits,
  threadCpuByName,
  threadSchedSeconds,
  threadNiceByName,
} from './connections/proc.js';
import { type MemPoint, gcMemory, loopDelayWindow, profileUntil } from './connections/inspector.js';
import { startBroker, BROKER_LIMITS } from './connections/broker.js';
import {
  coordinatorHelp,
  type Child,
  startChild,
  useBearer,
  lines,
  stopChild,
  sleep,
  getJson,
  until,
  healthProbe,
} from './connections/children.js';
import {
  r1,
  r3,
  mb,
  quantile,
  latency,
  type WindowStats,
  type RunRecord,
  loadResults,
  kb,
  mbOr,
  profileLine,
  clientProfileLine,
  loopDelayLine,
  schedLine,
  threadsLine,
  markdown,
} from './connections/results.js';
import { coordinatorMetrics, dropCausesOf, dropTable, listenCounters } from './connections/drop-causes.js';
import { ConnectFailed } from './connections/connect-failure.js';
import type { ClientProfile } from './connections/self-profile.js';

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
  const load0 = loadavg()[0];
  const perProc = Array.from(
    { length: a.procs },
    (_, p) => Math.floor(a.nodes / a.procs) + (p < a.nodes % a.procs ? 1 : 0),
  );
  const limits = openFileLimits('self');
  const needCoord = a.nodes + 256;
  const needClient = Math.max(...perProc) + 256;
  const need = Math.max(needCoord, needClient);
  let raisedTo: number | null = null;
  printEnvironment(BENCH);
  process.stderr.write(
    `${BENCH}: ${a.nodes} nodes over ${a.procs} client processes (${perProc.join('+')}), ${a.rounds} rounds; ` +
      `open files soft ${limits.soft} / hard ${limits.hard} (need about ${need})\n`,
  );
  if (limits.soft < need) {
    if (limits.hard < need)
      throw new Error(
        `the open-files hard limit is ${limits.hard}, below the ~${need} this run needs; run with fewer --nodes or raise it (ulimit -Hn as root)`,
      );
    raisedTo = need;
    process.stderr.write(
      `${BENCH}: open-files soft limit ${limits.soft} is too low; raising it to ${need} for the child processes only\n`,
    );
  }

  const dir = mkdtempSync(join(tmpdir(), 'edgefed-connections-'));
  const children: Child[] = [];
  const violations: string[] = [];
  let broker: Child | null = null;
  try {
    // 0. With --transport mqtt, a mosquitto of our own: every node and the coordinator are its clients.
    let mqttUrl = '';
    if (a.transport === 'mqtt') {
      const started = await startBroker(dir, a.nodes + 256, limits);
      broker = started.broker;
      mqttUrl = started.url;
      process.stderr.write(
        `${BENCH}: mosquitto ${mqttUrl} pid ${broker.child.pid}, config: ${BROKER_LIMITS.join(', ')}\n`,
      );
    }
    const mqttArgs = a.transport === 'mqtt' ? ['--mqtt', mqttUrl, '--fleet', FLEET] : [];
    // 1. The coordinator, through the CLI.
    // Coordinators that authenticate nodes (enrolled Ed25519 keys, signed hellos and replies) do so by default; with
    // --auth on every simulated node enrols a key and signs like the agent, with --auth off the coordinator trusts them.
    const hasAuth = coordinatorHelp(a.coordinatorEntry).includes('--auth <mode>');
    const authOff = hasAuth && a.auth === 'off';
    const authOn = hasAuth && a.auth === 'on';
    if (a.workerNice !== null && !coordinatorHelp(a.coordinatorEntry).includes('--worker-nice <n>'))
      throw new Error('--worker-nice: this coordinator has no --worker-nice option');
    if (a.transport === 'mqtt' && !coordinatorHelp(a.coordinatorEntry).includes('--mqtt <url>'))
      throw new Error('--transport mqtt: this coordinator has no --mqtt option');
    const entry = a.coordinatorEntry
      ? [...(/\.[cm]?ts$/.test(a.coordinatorEntry) ? ['--import', 'tsx'] : []), a.coordinatorEntry]
      : [CLI];
    const coord = startChild(
      'coordinator',
      [
        '--inspect=127.0.0.1:0',
        ...a.coordinatorNodeFlags,
        ...entry,
        'coordinator',
        '--port',
        '0',
        '--db',
        join(dir, 'bench.db'),
        ...(authOff ? ['--auth', 'off'] : []),
        ...(a.workerNice !== null ? ['--worker-nice', String(a.workerNice)] : []),
        ...mqttArgs,
      ],
      { ...process.env, EDGEFED_LOG: 'warn' },
      needCoord,
      limits,
    );
    children.push(coord);
    const coordPid = coord.child.pid!;
    let api = '';
    let adminToken = '';
    lines(coord, (l) => {
      try {
        const j = JSON.parse(l) as { api?: string; adminToken?: string };
        if (j.api) api = j.api;
        if (j.adminToken) {
          adminToken = j.adminToken;
          useBearer(adminToken);
        }
      } catch {
        // other stdout output (e.g. --trace-gc lines) is kept only when asked for
        if (a.coordinatorStdout) appendFileSync(a.coordinatorStdout, `${l}\n`);
      }
    });
    const alive = () => {
      for (const c of broker ? [...children, broker] : children) {
        if (c.child.exitCode !== null || c.child.signalCode !== null) {
          throw new Error(
            `${c.name} exited (code ${c.child.exitCode}, signal ${c.child.signalCode}); stderr tail:\n${c.stderr().slice(-3000)}`,
          );
        }
      }
    };
    await until('the coordinator URL', 60_000, async () => (api ? api : undefined), 100, alive);
    await until(
      'coordinator health',
      60_000,
      async () => ((await fetch(`${api}/healthz`)).ok ? true : undefined),
      100,
      alive,
    );
    const inspectorUrl = /Debugger listening on (ws:\/\/\S+)/.exec(coord.stderr())?.[1] ?? '';
    const coordLimits = openFileLimits(coordPid);
    const cpuAtStart = procCpuSeconds(coordPid);
    await sleep(1000);
    const gcIdle = await gcMemory(inspectorUrl);
    process.stderr.write(
      `${BENCH}: coordinator ${api} pid ${coordPid}, RSS ${mb(gcIdle?.rss ?? NaN)} MB idle after GC\n`,
    );

    // 2. Memory sampler for every process.
    let phase: 'connecting' | 'run' | 'done' = 'connecting';
    let coordPeakConnected = 0;
    let coordPeakRun = 0;
    let coordHwm = 0;
    let brokerPeak = 0;
    let brokerHwm = 0;
    const clientPeak = new Map<number, number>();
    const clientHwm = new Map<number, number>();
    const ready = new Map<number, ClientStats>();
    // The nice value the OS gave the coordinator's named worker threads (verify pool), as seen during the run.
    const workerThreadsNice = new Map<string, number>();
    const sampler = setInterval(() => {
      if (phase === 'run') for (const [name, nice] of threadNiceByName(coordPid)) workerThreadsNice.set(name, nice);
      const c = procMemory(coordPid);
      if (c) {
        coordHwm = Math.max(coordHwm, c.hwm);
        if (phase === 'connecting') coordPeakConnected = Math.max(coordPeakConnected, c.rss);
        if (phase === 'run') coordPeakRun = Math.max(coordPeakRun, c.rss);
      }
      const b = broker?.child.pid ? procMemory(broker.child.pid) : null;
      if (b) {
        brokerPeak = Math.max(brokerPeak, b.rss);
        brokerHwm = Math.max(brokerHwm, b.hwm);
      }
      children.slice(1).forEach((ch, p) => {
        const m = procMemory(ch.child.pid!);
        if (!m) return;
        if (phase !== 'done' && ready.has(p)) clientPeak.set(p, Math.max(clientPeak.get(p) ?? 0, m.rss));
        clientHwm.set(p, Math.max(clientHwm.get(p) ?? 0, m.hwm));
      });
    }, SAMPLE_MS);

    // 3. The client processes.
    const listen0 = listenCounters();
    const tConnect = performance.now();
    const connecting = new Map<number, number>();
    const finals = new Map<number, ClientStats>();
    const statsReplies = new Map<number, ClientStats>();
    const clientProfiles = new Map<number, ClientProfile | null>();
    const progress = new Map<number, { welcomed: number; open: number; disconnects: number }>();
    let lastProgress = performance.now();
    let first = 0;
    for (let p = 0; p < a.procs; p++) {
      const c = startChild(
        `client ${p}`,
        [
          '--expose-gc',
          '--import',
          'tsx',
          CLIENT,
          '--url',
          api,
          '--proc',
          String(p),
          '--conns',
          String(perProc[p]),
          '--first',
          String(first),
          '--examples',
          String(a.examples),
          '--data',
          a.data,
          ...(authOn ? ['--auth'] : []),
          '--transport',
          a.transport,
          ...mqttArgs,
        ],
        { ...process.env, ...(authOn ? { EDGEFED_BENCH_ADMIN_TOKEN: adminToken } : {}) },
        needClient,
        limits,
      );
      first += perProc[p];
      // Raising a child's niceness needs no privilege; the coordinator and its worker threads keep theirs.
      if (a.clientNice > 0 && c.child.pid) setPriority(c.child.pid, a.clientNice);
      children.push(c);
      lines(c, (l) => {
        let j: ClientStats & { type: string };
        try {
          j = JSON.parse(l) as ClientStats & { type: string };
        } catch {
          return;
        }
        if (j.type === 'connecting') connecting.set(p, performance.now());
        if (j.type === 'progress')
          progress.set(p, j as unknown as { welcomed: number; open: number; disconnects: number });
        if (j.type === 'ready') ready.set(p, j);
        if (j.type === 'stats') statsReplies.set(p, j);
        if (j.type === 'final') finals.set(p, j);
        if (j.type === 'profile') clientProfiles.set(p, (j as unknown as { profile: ClientProfile | null }).profile);
      });
    }
    const clients = children.slice(1);
    if (authOn && !adminToken)
      throw new Error('the coordinator printed no admin token, so nodes cannot enrol; try --auth off');
    try {
      await until(
        'every client connection welcomed',
        600_000,
        async () => {
          if (ready.size === a.procs) return true;
          if (performance.now() - lastProgress > 10_000 && progress.size > 0) {
            lastProgress = performance.now();
            const v = [...progress.values()];
            process.stderr.write(
              `${BENCH}: connecting: ${v.reduce((x, q) => x + q.welcomed, 0)} of ${a.nodes} welcomed, ${v.reduce((x, q) => x + q.open, 0)} open, ` +
                `${v.reduce((x, q) => x + q.disconnects, 0)} closed by the coordinator so far (${ready.size} of ${a.procs} clients done)\n`,
            );
          }
          return undefined;
        },
        100,
        alive,
      );
    } catch (e) {
      // Not every node could be held: measure why before giving up (the clients' closes, the coordinator's count).
      const metricsText = await coordinatorMetrics(api, adminToken);
      statsReplies.clear();
      for (const c of clients) c.child.stdin!.write('stats\n');
      await until('client stats', 30_000, async () => (statsReplies.size === a.procs ? true : undefined), 20).catch(
        () => undefined,
      );
      const v = [...progress.values()];
      const dropCauses = dropCausesOf([...statsReplies.values()], metricsText, listen0, listenCounters());
      process.stderr.write(`${BENCH}: drops by cause:\n  ${dropTable(dropCauses).join('\n  ')}\n`);
      throw new ConnectFailed({
        key: `${a.nodes}x${a.procs}:${a.data}:auth-${a.auth}${a.transport === 'mqtt' ? ':mqtt' : ''}`,
        date: new Date().toISOString(),
        nodes: a.nodes,
        procs: a.procs,
        auth: hasAuth ? a.auth : 'n/a',
        transport: a.transport,
        data: a.data,
        welcomed: v.reduce((x, q) => x + q.welcomed, 0),
        open: v.reduce((x, q) => x + q.open, 0),
        waited_seconds: since(tConnect),
        error: (e as Error).message,
        drop_causes: dropCauses,
        machine,
        load_average: { start: Math.round(load0 * 100) / 100, end: Math.round(loadavg()[0] * 100) / 100 },
        git_commit: gitCommit(),
      });
    }
    const online = await until(
      `${a.nodes} nodes online in /v1/nodes`,
      120_000,
      async () => {
        const { json } = await getJson<{ nodes: { online: boolean }[] }>(`${api}/v1/nodes`);
        const n = json.nodes.filter((x) => x.online).length;
        return n >= a.nodes ? n : undefined;
      },
      250,
      alive,
    );
    const clientsStartSeconds = (Math.max(...connecting.values()) - tConnect) / 1000;
    const connectSeconds = since(Math.min(...connecting.values()));
    process.stderr.write(
      `${BENCH}: clients built their data in ${r1(clientsStartSeconds)} s; ${online} nodes online ${r1(connectSeconds)} s after the first client began connecting\n`,
    );

    // 4. Idle with every node connected: what holding the connections costs (heartbeats).
    const clientTotals = async () => {
      statsReplies.clear();
      for (const c of clients) c.child.stdin!.write('stats\n');
      await until('client stats', 30_000, async () => (statsReplies.size === a.procs ? true : undefined), 20, alive);
      const all = [...statsReplies.values()];
      return { hb: all.reduce((x, s) => x + s.heartbeatsSent, 0), drops: all.reduce((x, s) => x + s.disconnects, 0) };
    };
    const clientsCpu = () => clients.reduce((t, c) => t + procCpuSeconds(c.child.pid!), 0);
    const win0 = {
      t: performance.now(),
      cpu: procCpuSeconds(coordPid),
      clientsCpu: clientsCpu(),
      io: procIo(coordPid),
      ...(await clientTotals()),
    };
    const idleProbe = healthProbe(api);
    const idleProfile = a.profile
      ? profileUntil(inspectorUrl, sleep(a.idleS * 1000))
      : sleep(a.idleS * 1000).then(() => null);
    const idleProfileSummary = await idleProfile;
    const idleHealth = await idleProbe.stop();
    const win1 = {
      t: performance.now(),
      cpu: procCpuSeconds(coordPid),
      clientsCpu: clientsCpu(),
      io: procIo(coordPid),
      ...(await clientTotals()),
    };
    alive();
    const idleWindow: WindowStats = {
      seconds: (win1.t - win0.t) / 1000,
      cpu_seconds: win1.cpu - win0.cpu,
      clients_cpu_seconds: win1.clientsCpu - win0.clientsCpu,
      disk_write_bytes: win1.io.writeBytes - win0.io.writeBytes,
      write_syscalls: win1.io.syscw - win0.io.syscw,
      healthz_ms: latency(idleHealth),
      profile: idleProfileSummary,
    };
    const heartbeatsPerSecond = (win1.hb - win0.hb) / idleWindow.seconds;
    const dropsBeforeRun = win1.drops;
    const gcConnected = await gcMemory(inspectorUrl);
    process.stderr.write(
      `${BENCH}: idle ${r1(idleWindow.seconds)} s with ${online} nodes: ${r1(heartbeatsPerSecond)} heartbeats/s, coordinator CPU ${r1(idleWindow.cpu_seconds)} s, ` +
        `/healthz p99 ${r1(idleWindow.healthz_ms.p99)} ms, ${profileLine(idleProfileSummary)}; RSS ${mb(gcConnected?.rss ?? NaN)} MB after GC\n`,
    );

    // 5. The run, with /healthz probed every 200 ms.
    phase = 'run';
    const runConfig = {
      model: 'linear',
      rounds: a.rounds,
      minNodes: a.nodes,
      fraction: 1,
      limitTest: a.limitTest,
      roundTimeoutMs: 600_000,
      localEpochs: 1,
      batchSize: 32,
      seed: 1,
    };
    const runSample = () => ({
      t: performance.now(),
      cpu: procCpuSeconds(coordPid),
      clientsCpu: clientsCpu(),
      io: procIo(coordPid),
      load: loadavg()[0],
      sched: threadSchedSeconds(coordPid),
      threads: threadCpuByName(coordPid),
    });
    if (a.profile) for (const c of clients) c.child.stdin!.write('profile-start\n');
    let runFinished: () => void = () => {};
    let profiling: () => void = () => {};
    const profileStarted = new Promise<void>((res) => (profiling = res));
    const runProfile = a.profile
      ? profileUntil(inspectorUrl, new Promise<void>((res) => (runFinished = res)), profiling)
      : Promise.resolve(null);
    // Starting the profiler stops the coordinator for 0.1-0.5 s at thousands of connections: the run's figures
    // (CPU, /healthz, loop delay) begin once it has started.
    if (a.profile) await profileStarted;
    const loopDelay = await loopDelayWindow(inspectorUrl);
    const run0 = runSample();
    const created = await getJson<{ id?: number; error?: { message: string } }>(`${api}/v1/runs`, runConfig);
    if (created.status !== 201 || created.json.id === undefined)
      throw new Error(`POST /v1/runs answered ${created.status}: ${JSON.stringify(created.json)}`);
    const runId = created.json.id;
    const runProbe = healthProbe(api);
    const seenAt = new Map<number, number>();
    const view = await until(
      `run ${runId} to finish`,
      a.timeoutS * 1000,
      async () => {
        // The run list is small; the run itself carries every round record (three 10,000-long node lists each at
        // 10,000 nodes), so it is read only once a round is committed: polling it 4 times a second cost the
        // coordinator's loop more than some phases of the round being measured.
        const { json: list } = await getJson<{ runs: { id: number; status: string; roundsCompleted: number }[] }>(
          `${api}/v1/runs`,
        );
        const brief = list.runs.find((x) => x.id === runId);
        const finished = ['completed', 'failed', 'stopped'].includes(brief?.status ?? '');
        if (!brief || (brief.roundsCompleted <= seenAt.size && !finished)) return undefined;
        const { json } = await getJson<RunView>(`${api}/v1/runs/${runId}`);
        for (let r = 1; r <= json.roundsCompleted; r++) {
          if (!seenAt.has(r)) {
            seenAt.set(r, since(run0.t));
            const rec = json.rounds[r - 1];
            process.stderr.write(
              `${BENCH}: round ${r} committed: ${rec?.contributed.length}/${rec?.selected.length} contributed, ` +
                `${rec?.failures.length} failures, ${r3(rec?.seconds ?? NaN)} s, coordinator RSS ${mb(procMemory(coordPid)?.rss ?? NaN)} MB\n`,
            );
          }
        }
        return ['completed', 'failed', 'stopped'].includes(json.status) ? json : undefined;
      },
      250,
      alive,
    );
    const run1 = runSample();
    runFinished();
    if (a.profile) for (const c of clients) c.child.stdin!.write('profile-stop\n');
    const runHealth = await runProbe.stop();
    const runLoopDelay = await loopDelay.stop();
    if (a.profile)
      await until(
        'client profiles',
        30_000,
        async () => (clientProfiles.size === a.procs ? true : undefined),
        20,
      ).catch(() => process.stderr.write(`${BENCH}: not every client process sent its profile\n`));
    const runWindow: WindowStats = {
      seconds: (run1.t - run0.t) / 1000,
      cpu_seconds: run1.cpu - run0.cpu,
      clients_cpu_seconds: run1.clientsCpu - run0.clientsCpu,
      disk_write_bytes: run1.io.writeBytes - run0.io.writeBytes,
      write_syscalls: run1.io.syscw - run0.io.syscw,
      healthz_ms: latency(runHealth),
      profile: await runProfile,
      ...(runLoopDelay ? { loop_delay_ms: runLoopDelay } : {}),
      // Threads that started during the run (verify pool) count from zero.
      cpu_by_thread: Object.fromEntries(
        [...run1.threads]
          .map(([name, cpu]) => [name, Math.round((cpu - (run0.threads.get(name) ?? 0)) * 100) / 100] as const)
          .filter(([, cpu]) => cpu > 0)
          .sort((x, y) => y[1] - x[1]),
      ),
      main_thread_sched: {
        on_cpu_seconds: run1.sched.onCpu - run0.sched.onCpu,
        waiting_seconds: run1.sched.waiting - run0.sched.waiting,
      },
      ...(a.profile
        ? { client_profiles: [...clientProfiles.values()].filter((x): x is ClientProfile => x !== null) }
        : {}),
    };
    phase = 'done';
    const gcAfterRun = await gcMemory(inspectorUrl);
    const events = (await getJson<{ events: { kind: string }[] }>(`${api}/v1/runs/${runId}/events`)).json.events;
    const eventCounts: Record<string, number> = {};
    for (const e of events) eventCounts[e.kind] = (eventCounts[e.kind] ?? 0) + 1;
    const nodesOnlineAtEnd = (await getJson<{ nodes: { online: boolean }[] }>(`${api}/v1/nodes`)).json.nodes.filter(
      (x) => x.online,
    ).length;
    const checkpoint = await getJson<{ numParams?: number }>(`${api}/v1/runs/${runId}/checkpoint`);
    const finalMem = procMemory(coordPid);
    if (finalMem) coordHwm = Math.max(coordHwm, finalMem.hwm);
    const cpuTotal = procCpuSeconds(coordPid) - cpuAtStart;
    // The coordinator's count of ended connections, read before the clients leave (their exit would count too).
    const metricsText = await coordinatorMetrics(api, adminToken);
    const listen1 = listenCounters();

    // 6. Stop the clients (they report first), then the coordinator.
    clearInterval(sampler);
    for (const c of clients) await stopChild(c, () => c.child.stdin!.write('stop\n'), 15_000);
    const clientFinal = [...finals.entries()].sort((x, y) => x[0] - y[0]).map(([, s]) => s);
    const dropCauses = dropCausesOf(clientFinal, metricsText, listen0, listen1);
    process.stderr.write(`${BENCH}: drops by cause:\n  ${dropTable(dropCauses).join('\n  ')}\n`);
    const allOffline = await until(
      'every node offline',
      60_000,
      async () => {
        const { json } = await getJson<{ nodes: { online: boolean }[] }>(`${api}/v1/nodes`);
        return json.nodes.some((x) => x.online) ? undefined : true;
      },
      250,
    ).catch(() => false);
    const gcDisconnected = allOffline ? await gcMemory(inspectorUrl) : null;
    const coordCode = await stopChild(coord, () => coord.child.kill('SIGTERM'), 15_000);

    // 7. Lost updates and anything else that went wrong.
    if (view.status !== 'completed')
      violations.push(`run ended '${view.status}'${view.error ? `: ${view.error}` : ''}`);
    if (view.rounds.length !== a.rounds) violations.push(`${view.rounds.length} of ${a.rounds} rounds committed`);
    for (const r of view.rounds) {
      if (r.selected.length !== a.nodes)
        violations.push(`round ${r.round}: ${r.selected.length} nodes selected, not ${a.nodes}`);
      if (r.contributed.length !== a.nodes)
        violations.push(`round ${r.round}: ${r.contributed.length} updates fused, not ${a.nodes}`);
      if (r.failures.length > 0)
        violations.push(
          `round ${r.round}: ${r.failures.length} failures, e.g. node ${r.failures[0].nodeId}: ${r.failures[0].error}`,
        );
      if (!r.fused) violations.push(`round ${r.round} was not fused`);
    }
    for (const k of ['late_update', 'node_failure', 'rejected'])
      if (eventCounts[k]) violations.push(`${eventCounts[k]} '${k}' events`);
    if (clientFinal.length !== a.procs)
      violations.push(`${clientFinal.length} of ${a.procs} client processes reported`);
    const sum = (f: (s: ClientStats) => number) => clientFinal.reduce((acc, s) => acc + f(s), 0);
    if (sum((s) => s.trainRequests) !== a.nodes * a.rounds)
      violations.push(`clients answered ${sum((s) => s.trainRequests)} train requests, expected ${a.nodes * a.rounds}`);
    if (sum((s) => s.disconnects) > 0) violations.push(`${sum((s) => s.disconnects)} client connections dropped`);
    if (sum((s) => s.errorReplies) > 0) violations.push(`${sum((s) => s.errorReplies)} error replies from NodeHost`);
    if (sum((s) => s.coordinatorErrors) > 0)
      violations.push(`${sum((s) => s.coordinatorErrors)} error messages from the coordinator`);
    if (nodesOnlineAtEnd !== a.nodes) violations.push(`${nodesOnlineAtEnd} nodes online at the end, not ${a.nodes}`);
    if (coordCode !== 0) violations.push(`coordinator exited with code ${coordCode}`);

    const secs = view.rounds.map((r) => r.seconds);
    const sorted = [...secs].sort((x, y) => x - y);
    const coordErr = coord
      .stderr()
      .split('\n')
      .filter(
        (l) =>
          !/^(Debugger listening on|Debugger ending on|For help, see|Debugger attached|Waiting for the debugger)/.test(
            l.trim(),
          ),
      )
      .join('\n');
    const perConn = (k: keyof MemPoint) => (gcIdle && gcConnected ? (gcConnected[k] - gcIdle[k]) / a.nodes : null);
    const released = (k: keyof MemPoint) =>
      gcAfterRun && gcDisconnected ? (gcAfterRun[k] - gcDisconnected[k]) / a.nodes : null;
    const record: RunRecord = {
      key:
        `${a.nodes}x${a.procs}:${a.rounds}:${a.data}:auth-${hasAuth ? a.auth : 'none'}${a.transport === 'mqtt' ? ':mqtt' : ''}` +
        `${a.coordinatorEntry ? `:${a.coordinatorEntry}` : ''}${a.clientNice ? `:nice-${a.clientNice}` : ''}` +
        `${a.workerNice !== null ? `:worker-nice-${a.workerNice}` : ''}` +
        `${a.coordinatorNodeFlags.length ? `:${a.coordinatorNodeFlags.join(' ')}` : ''}`,
      ...(a.clientNice ? { client_nice: a.clientNice } : {}),
      ...(a.workerNice !== null ? { worker_nice_flag: a.workerNice } : {}),
      ...(workerThreadsNice.size ? { worker_threads_nice: Object.fromEntries(workerThreadsNice) } : {}),
      ...(a.coordinatorNodeFlags.length ? { coordinator_node_flags: a.coordinatorNodeFlags } : {}),
      transport: a.transport,
      broker: broker ? { config: BROKER_LIMITS, rss_peak_sampled_bytes: brokerPeak, vm_hwm_bytes: brokerHwm } : null,
      date: new Date().toISOString(),
      ok: violations.length === 0,
      violations,
      nodes: a.nodes,
      procs: a.procs,
      rounds: a.rounds,
      data: a.data,
      examples_per_node: a.examples,
      run_config: runConfig,
      model_params: checkpoint.json.numParams ?? null,
      trainer: clientFinal[0]?.trainer ?? null,
      kernels: clientFinal[0]?.kernels ?? null,
      open_files_limit: {
        soft: Number.isFinite(coordLimits.soft) ? coordLimits.soft : null,
        hard: Number.isFinite(coordLimits.hard) ? coordLimits.hard : null,
        raised_for_children_to: raisedTo,
      },
      connections_held: online,
      clients_start_seconds: clientsStartSeconds,
      connect_seconds: connectSeconds,
      run_wall_seconds: runWindow.seconds,
      total_wall_seconds: since(t0),
      round_seconds: {
        mean: secs.reduce((x, y) => x + y, 0) / secs.length,
        median: quantile(sorted, 0.5),
        min: sorted[0] ?? NaN,
        max: sorted[sorted.length - 1] ?? NaN,
      },
      rounds_detail: view.rounds.map((r) => ({
        round: r.round,
        seconds: r.seconds,
        selected: r.selected.length,
        contributed: r.contributed.length,
        failures: r.failures.length,
        fused: r.fused,
        test_accuracy: r.testAccuracy,
        train_loss: r.trainLoss,
        bytes_sent: r.bytesSent,
        bytes_received: r.bytesReceived,
        seen_committed_at_s: seenAt.get(r.round) ?? NaN,
      })),
      bytes_per_round: {
        sent_mean: view.rounds.reduce((x, r) => x + r.bytesSent, 0) / view.rounds.length,
        received_mean: view.rounds.reduce((x, r) => x + r.bytesReceived, 0) / view.rounds.length,
        sent_per_node: view.rounds.reduce((x, r) => x + r.bytesSent, 0) / view.rounds.length / a.nodes,
        received_per_node: view.rounds.reduce((x, r) => x + r.bytesReceived, 0) / view.rounds.length / a.nodes,
      },
      heartbeats_per_second: heartbeatsPerSecond,
      disconnects: {
        while_connecting: win0.drops,
        idle_window: win1.drops - win0.drops,
        run: sum((s) => s.disconnects) - dropsBeforeRun,
      },
      drop_causes: dropCauses,
      coordinator_entry: a.coordinatorEntry,
      auth: hasAuth ? a.auth : null,
      enrol_seconds: authOn ? Math.max(...clientFinal.map((x) => x.enrolSeconds)) : null,
      client_sign_seconds: authOn ? sum((x) => x.signSeconds) : null,
      coordinator: {
        gc_idle: gcIdle,
        gc_connected: gcConnected,
        gc_after_run: gcAfterRun,
        gc_disconnected: gcDisconnected,
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
      const tail = c
        .stderr()
        .split('\n')
        .filter((l) => l.trim() !== '' && !l.includes('configured for run'));
      if (tail.length)
        process.stderr.write(`${BENCH}: ${c.name} stderr (${tail.length} lines):\n${tail.slice(-20).join('\n')}\n`);
    }
    if (coordErr.trim()) process.stderr.write(`${BENCH}: coordinator stderr tail:\n${coordErr.slice(-3000)}\n`);
    return record;
  } catch (e) {
    // Say why connections closed: the clients log every close with the coordinator's close code and reason.
    for (const c of children.slice(1)) {
      const why = new Map<string, number>();
      for (const m of c.stderr().matchAll(/closed: (\d+ [^;]*);/g)) why.set(m[1], (why.get(m[1]) ?? 0) + 1);
      if (why.size)
        process.stderr.write(
          `${BENCH}: ${c.name}: connections closed by the coordinator: ${[...why].map(([k, v]) => `${v} x '${k.trim()}'`).join(', ')}\n`,
        );
    }
    throw e;
  } finally {
    const all = broker ? [...children, broker] : children;
    for (const c of all) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
    await Promise.all(all.map((c) => c.exited));
    rmSync(dir, { recursive: true, force: true });
  }
}

function printTable(r: RunRecord): void {
  const c = r.coordinator;
  const rows: [string, string][] = [
    ['transport', r.transport === 'mqtt' ? 'MQTT (one mosquitto)' : 'WebSocket'],
    ['connections held', String(r.connections_held)],
    ...(r.broker
      ? [
          [
            'broker peak RSS sampled / VmHWM',
            `${mb(r.broker.rss_peak_sampled_bytes)} / ${mb(r.broker.vm_hwm_bytes)} MB`,
          ] as [string, string],
        ]
      : []),
    ['lost updates / problems', r.ok ? 'none' : r.violations.join('; ')],
    ['connect (all enrolled)', `${r1(r.connect_seconds)} s (+ ${r1(r.clients_start_seconds)} s client start-up)`],
    ...r.rounds_detail.map((d): [string, string] => [
      `round ${d.round}`,
      `${r3(d.seconds)} s, ${d.contributed}/${d.selected} fused, ${d.failures} failures, ` +
        `acc ${(d.test_accuracy * 100).toFixed(1)}%, ${mb(d.bytes_sent)} MB sent / ${mb(d.bytes_received)} MB received`,
    ]),
    [
      'round seconds mean / median / max',
      `${r3(r.round_seconds.mean)} / ${r3(r.round_seconds.median)} / ${r3(r.round_seconds.max)}`,
    ],
    ['run wall time', `${r1(r.run_wall_seconds)} s`],
    ['total wall time', `${r1(r.total_wall_seconds)} s`],
    [
      'coord RSS after GC idle / connected / after run',
      `${mbOr(c.gc_idle, 'rss')} / ${mbOr(c.gc_connected, 'rss')} / ${mbOr(c.gc_after_run, 'rss')}`,
    ],
    [
      'coord JS heap after GC idle / connected / after run',
      `${mbOr(c.gc_idle, 'heap_used')} / ${mbOr(c.gc_connected, 'heap_used')} / ${mbOr(c.gc_after_run, 'heap_used')}`,
    ],
    [
      'coord RSS / JS heap after clients left',
      `${mbOr(c.gc_disconnected, 'rss')} / ${mbOr(c.gc_disconnected, 'heap_used')}`,
    ],
    [
      'per connection JS heap connect / release',
      `${kb(c.heap_per_connection_bytes)} / ${kb(c.heap_released_per_connection_bytes)} (RSS ${kb(c.rss_per_connection_bytes)} / ${kb(c.rss_released_per_connection_bytes)}, noisy)`,
    ],
    [
      'coord peak RSS sampled connecting / run; VmHWM',
      `${mb(c.rss_peak_sampled_connected_bytes)} / ${mb(c.rss_peak_sampled_run_bytes)} MB; ${mb(c.vm_hwm_bytes)} MB`,
    ],
    ['heartbeats/s', `${r1(r.heartbeats_per_second)}`],
    [
      'dropped connections connecting / idle / run',
      `${r.disconnects.while_connecting} / ${r.disconnects.idle_window} / ${r.disconnects.run}`,
    ],
    ...(r.drop_causes ? dropTable(r.drop_causes).map((l, i): [string, string] => [i ? '' : 'drops by cause', l]) : []),
    [
      'idle window: CPU s, disk MB, /healthz p99 / max',
      `${r1(c.idle_connected.cpu_seconds)} s of ${r1(c.idle_connected.seconds)} s, ${mb(c.idle_connected.disk_write_bytes)} MB, ${r1(c.idle_connected.healthz_ms.p99)} / ${r1(c.idle_connected.healthz_ms.max)} ms`,
    ],
    ['idle window profile', profileLine(c.idle_connected.profile)],
    [
      'run: CPU s (coordinator; clients), disk MB, /healthz median / p99 / max',
      `${r1(c.run.cpu_seconds)} s; ${r1(c.run.clients_cpu_seconds ?? NaN)} s of ${r1(c.run.seconds)} s, ${mb(c.run.disk_write_bytes)} MB, ${r1(c.run.healthz_ms.median)} / ${r1(c.run.healthz_ms.p99)} / ${r1(c.run.healthz_ms.max)} ms`,
    ],
    [
      'run: coordinator event-loop delay p50 / p99 / max; main thread',
      `${loopDelayLine(c.run.loop_delay_ms)}; ${schedLine(c.run.main_thread_sched, c.run.seconds)}`,
    ],
    ['run: coordinator CPU s by thread', threadsLine(c.run.cpu_by_thread)],
    ['run profile', profileLine(c.run.profile)],
    ['client processes run profile', clientProfileLine(c.run.client_profiles, r.nodes * r.rounds)],
    [
      'client RSS peak (holding connections)',
      `${r.clients.rss_peak_sampled_bytes.map(mb).join(' / ')} MB (sum ${mb(r.clients.rss_peak_sampled_total_bytes)} MB)`,
    ],
    ['client VmHWM (incl. MNIST load)', `${r.clients.vm_hwm_bytes.map(mb).join(' / ')} MB`],
    [
      'bytes per round sent / received',
      `${mb(r.bytes_per_round.sent_mean)} MB / ${mb(r.bytes_per_round.received_mean)} MB`,
    ],
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
  let record: RunRecord;
  try {
    record = await bench(a);
  } catch (e) {
    if (!(e instanceof ConnectFailed)) throw e;
    file.connect_failures = [...(file.connect_failures ?? []).filter((f) => f.key !== e.failure.key), e.failure];
    writeAtomic(jsonPath, `${JSON.stringify(file, null, 2)}\n`);
    writeAtomic(mdPath, markdown(file));
    process.stderr.write(`${BENCH}: FAILED to hold every node; wrote the drop table to ${jsonPath} and ${mdPath}\n`);
    throw e;
  }
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
