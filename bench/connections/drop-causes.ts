/**
 * Why connections dropped in the connections bench, from both ends: each client names every close it saw (the
 * coordinator's close code and reason, or the socket error before it, whether the node had been welcomed, and
 * how far the client's own event loop lagged just before: a load generator too busy to send heartbeats is a
 * cause of its own); the coordinator counts its side in edgefed_node_disconnects_total{cause}; the kernel's
 * listen-queue counters and limits say whether the OS refused connections.
 */
import { readFileSync } from 'node:fs';

/** A client's tally of closes by cause. */
export type CauseCounts = Record<string, { count: number; before_welcome: number; client_stalled: number }>;

/** Readable names for the coordinator's close codes (src/net/node-protocol.ts CLOSE) and the standard ones. */
const CODES: Record<number, string> = {
  1000: 'normal close',
  1001: 'going away',
  1006: 'no close frame (socket cut)',
  1009: 'message too big (maxPayload)',
  1011: 'server error',
  1012: 'coordinator shutting down',
  4000: 'hello timeout',
  4001: 'frame before hello',
  4002: 'bad hello',
  4003: 'unauthenticated',
  4004: 'heartbeat timeout',
};

/** One close as a table key: `CODE name` plus the socket error that preceded it, if any. */
export function clientCauseKey(why: string, lastError: string | null): string {
  const code = Number(/^(\d+)/.exec(why)?.[1] ?? NaN);
  const base = Number.isFinite(code) ? `${code} ${CODES[code] ?? why.slice(String(code).length).trim()}` : why;
  const err = lastError ? (/\b(E[A-Z]+|WS_ERR_[A-Z_]+)\b/.exec(lastError)?.[1] ?? lastError.slice(0, 60)) : null;
  return err ? `${base} after ${err}` : base;
}

/** Event-loop lag of this process, sampled every 100 ms; `maxSince(ms)` is the worst lag in that window. */
export function loopLagMonitor(): { maxSince(ms: number): number; stop(): void } {
  const samples: { at: number; lag: number }[] = [];
  let expected = performance.now() + 100;
  const timer = setInterval(() => {
    const now = performance.now();
    samples.push({ at: now, lag: Math.max(0, now - expected) });
    expected = now + 100;
    while (samples.length > 0 && now - samples[0].at > 60_000) samples.shift();
  }, 100);
  timer.unref();
  return {
    maxSince(ms) {
      const from = performance.now() - ms;
      let worst = Math.max(0, performance.now() - expected);
      for (const s of samples) if (s.at >= from) worst = Math.max(worst, s.lag);
      return worst;
    },
    stop: () => clearInterval(timer),
  };
}

export function mergeCauses(all: (CauseCounts | undefined)[]): CauseCounts {
  const out: CauseCounts = {};
  for (const c of all)
    for (const [k, v] of Object.entries(c ?? {})) {
      const o = (out[k] ??= { count: 0, before_welcome: 0, client_stalled: 0 });
      o.count += v.count;
      o.before_welcome += v.before_welcome;
      o.client_stalled += v.client_stalled;
    }
  return out;
}

/** edgefed_node_disconnects_total by cause, from the coordinator's /metrics text. */
export function coordinatorCauses(metricsText: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of metricsText.matchAll(/^edgefed_node_disconnects_total\{cause="([^"]+)"\} (\d+)/gm))
    out[m[1]] = Number(m[2]);
  return out;
}

/** The kernel's limits that bound how many connections one machine opens and accepts. */
export function osLimits(): Record<string, string> {
  const read = (p: string) => {
    try {
      return readFileSync(p, 'utf8').trim().replace(/\s+/g, ' ');
    } catch {
      return '?';
    }
  };
  return {
    somaxconn: read('/proc/sys/net/core/somaxconn'),
    tcp_max_syn_backlog: read('/proc/sys/net/ipv4/tcp_max_syn_backlog'),
    ip_local_port_range: read('/proc/sys/net/ipv4/ip_local_port_range'),
    file_max: read('/proc/sys/fs/file-max'),
  };
}

/** TcpExt ListenOverflows and ListenDrops (machine-wide): connections a full accept queue refused. */
export function listenCounters(): { overflows: number; drops: number } {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
    const i = lines.findIndex((l) => l.startsWith('TcpExt:'));
    const names = lines[i].split(/\s+/);
    const values = lines[i + 1].split(/\s+/).map(Number);
    const v = (k: string) => values[names.indexOf(k)] ?? NaN;
    return { overflows: v('ListenOverflows'), drops: v('ListenDrops') };
  } catch {
    return { overflows: NaN, drops: NaN };
  }
}

export interface DropCauses {
  /** Every close the clients saw, by cause (also those while connecting, which reconnect). */
  client: CauseCounts;
  /** The coordinator's count of ended connections by cause, over the whole bench (the clients' exit included). */
  coordinator: Record<string, number> | null;
  /** ListenOverflows / ListenDrops during the bench (machine-wide: other jobs' listeners count too). */
  listen_overflows: number;
  listen_drops: number;
  os: Record<string, string>;
  /** The worst event-loop lag a client process saw, ms (a load generator that stalls delays its heartbeats). */
  client_max_loop_lag_ms: number;
}

/** The coordinator's /metrics text, or '' when it does not answer (a coordinator too busy to is a finding too). */
export function coordinatorMetrics(api: string, adminToken: string): Promise<string> {
  return fetch(`${api}/metrics`, { headers: adminToken ? { authorization: `Bearer ${adminToken}` } : {} })
    .then((r) => (r.ok ? r.text() : ''))
    .catch(() => '');
}

/**
 * The drop causes of a bench: the clients' reports of their closes, the coordinator's /metrics text, and the
 * listen counters at the bench's start and now.
 */
export function dropCausesOf(
  clients: readonly { closeCauses?: CauseCounts; maxLoopLagMs?: number }[],
  metricsText: string,
  listenAtStart: { overflows: number; drops: number },
  listenNow: { overflows: number; drops: number },
): DropCauses {
  return {
    client: mergeCauses(clients.map((s) => s.closeCauses)),
    coordinator: metricsText.includes('edgefed_node_disconnects_total') ? coordinatorCauses(metricsText) : null,
    listen_overflows: listenNow.overflows - listenAtStart.overflows,
    listen_drops: listenNow.drops - listenAtStart.drops,
    os: osLimits(),
    client_max_loop_lag_ms: Math.max(0, ...clients.map((s) => s.maxLoopLagMs ?? 0)),
  };
}

/** The drop table as text lines: one row per cause, clients' view and the coordinator's. */
export function dropTable(d: DropCauses): string[] {
  const rows = Object.entries(d.client).sort((a, b) => b[1].count - a[1].count);
  const out = rows.map(
    ([k, v]) =>
      `client saw ${k}: ${v.count} (${v.before_welcome} before the welcome, ${v.client_stalled} while the client's loop lagged > 5 s)`,
  );
  if (rows.length === 0) out.push('clients saw no close');
  const coord = Object.entries(d.coordinator ?? {}).filter(([k, n]) => n > 0 && k !== 'node_closed');
  out.push(
    d.coordinator === null
      ? 'coordinator: no disconnect counter (older coordinator)'
      : `coordinator ended, by cause (besides the clients' own closes at the end): ${coord.length ? coord.map(([k, n]) => `${k} ${n}`).join(', ') : 'none'}`,
  );
  out.push(
    `OS: listen overflows ${d.listen_overflows}, listen drops ${d.listen_drops} (machine-wide); ` +
      `somaxconn ${d.os.somaxconn}, tcp_max_syn_backlog ${d.os.tcp_max_syn_backlog}, ` +
      `ephemeral ports ${d.os.ip_local_port_range}; worst client loop lag ${Math.round(d.client_max_loop_lag_ms)} ms`,
  );
  return out;
}
