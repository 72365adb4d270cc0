/** The coordinator's inspector: forced GC for exact heap figures, and CPU profiles summarised by function. */
import { writeFileSync } from 'node:fs';
import { WebSocket } from 'ws';
import { BENCH } from './options.js';
import { summarisePhases, type PhaseSummary } from './profile-phases.js';

export interface CpuProfile {
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

export interface MemPoint {
  rss: number;
  heap_used: number;
  heap_total: number;
  external: number;
  array_buffers: number;
}

/** The coordinator's memory right after a full GC (two passes, so weakly held garbage goes too). */
export async function gcMemory(inspectorUrl: string): Promise<MemPoint | null> {
  let ins: Inspector | null = null;
  try {
    ins = await Inspector.open(inspectorUrl);
    await ins.call('HeapProfiler.collectGarbage');
    await ins.call('HeapProfiler.collectGarbage');
    const r = await ins.call<{ result: { value: string } }>('Runtime.evaluate', {
      expression: 'JSON.stringify(process.memoryUsage())',
      returnByValue: true,
    });
    const m = JSON.parse(r.result.value) as {
      rss: number;
      heapUsed: number;
      heapTotal: number;
      external: number;
      arrayBuffers: number;
    };
    return {
      rss: m.rss,
      heap_used: m.heapUsed,
      heap_total: m.heapTotal,
      external: m.external,
      array_buffers: m.arrayBuffers,
    };
  } catch (e) {
    process.stderr.write(
      `${BENCH}: could not read the coordinator's memory through the inspector: ${(e as Error).message}\n`,
    );
    return null;
  } finally {
    ins?.close();
  }
}

export interface ProfileSummary {
  seconds: number;
  /** Share of the main thread's wall time with no JS or native code running (waiting in epoll). */
  idle_fraction: number;
  /** Share of wall time by the innermost EdgeFed source function on the stack ('(outside src)' otherwise). */
  by_src_function: { where: string; fraction: number }[];
  /** By phase of the round, and the longest stretches the loop was blocked (profile-phases.ts); absent in old runs. */
  by_phase?: PhaseSummary;
}

export function summariseProfile(p: CpuProfile): ProfileSummary {
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
    else if (f.url.includes('/src/'))
      w = `${f.functionName || '(anonymous)'} ${f.url.slice(f.url.indexOf('/src/') + 1)}`;
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
    by_src_function: [...time]
      .filter(([k]) => k !== '(idle)')
      .sort((x, y) => y[1] - x[1])
      .slice(0, 8)
      .map(([k, v]) => ({ where: k, fraction: frac(v) })),
    by_phase: summarisePhases(p),
  };
}

/** Profiles the coordinator's main thread until `done` resolves; `started` is called once it runs (or failed). */
export async function profileUntil(
  inspectorUrl: string,
  done: Promise<unknown>,
  started: () => void = () => {},
): Promise<ProfileSummary | null> {
  let ins: Inspector | null = null;
  try {
    ins = await Inspector.open(inspectorUrl);
    await ins.call('Profiler.enable');
    await ins.call('Profiler.setSamplingInterval', { interval: 1000 });
    await ins.call('Profiler.start');
    started();
    await done;
    const r = await ins.call<{ profile: CpuProfile }>('Profiler.stop');
    await ins.call('Profiler.disable');
    // For a closer look in DevTools: EDGEFED_BENCH_CPUPROFILE=/tmp/run writes /tmp/run-<time>.cpuprofile.
    const out = process.env.EDGEFED_BENCH_CPUPROFILE;
    if (out) writeFileSync(`${out}-${Date.now()}.cpuprofile`, JSON.stringify(r.profile));
    return summariseProfile(r.profile);
  } catch (e) {
    process.stderr.write(`${BENCH}: CPU profile failed: ${(e as Error).message}\n`);
    return null;
  } finally {
    started();
    ins?.close();
  }
}

/** The coordinator's event-loop delay over a window (perf_hooks.monitorEventLoopDelay, 10 ms resolution), ms. */
export interface LoopDelay {
  p50: number;
  p99: number;
  max: number;
  /** Delay samples taken (one per 10 ms timer tick that ran). */
  samples: number;
}

/**
 * Starts a loop-delay histogram inside the coordinator; the returned stop() reads and removes it. It tells how
 * long the coordinator's own event loop was blocked, apart from what /healthz also waits for (the OS scheduler
 * on a shared machine, the probe's own process).
 */
export async function loopDelayWindow(inspectorUrl: string): Promise<{ stop(): Promise<LoopDelay | null> }> {
  const evaluate = async (expression: string): Promise<string | null> => {
    let ins: Inspector | null = null;
    try {
      ins = await Inspector.open(inspectorUrl);
      const r = await ins.call<{ result: { value: string } }>('Runtime.evaluate', { expression, returnByValue: true });
      return r.result.value;
    } catch (e) {
      process.stderr.write(`${BENCH}: loop delay through the inspector: ${(e as Error).message}\n`);
      return null;
    } finally {
      ins?.close();
    }
  };
  await evaluate(
    `(() => { const h = process.getBuiltinModule('perf_hooks').monitorEventLoopDelay({ resolution: 10 });
       h.enable(); globalThis.__edgefedBenchLoopDelay = h; return 'ok'; })()`,
  );
  return {
    async stop() {
      const v = await evaluate(
        `(() => { const h = globalThis.__edgefedBenchLoopDelay; if (!h) return 'null'; h.disable();
           delete globalThis.__edgefedBenchLoopDelay; const ms = (ns) => Math.round(ns / 1e5) / 10;
           return JSON.stringify({ p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max),
             samples: h.count }); })()`,
      );
      return v && v !== 'null' ? (JSON.parse(v) as LoopDelay) : null;
    },
  };
}
