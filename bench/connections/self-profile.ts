/**
 * A client process's CPU profile of itself (node:inspector, main thread), started and stopped by the parent
 * bench around the run: where the simulated nodes' CPU goes per request, by function (self time).
 */
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import type { CpuProfile } from './inspector.js';

export interface SelfTime {
  /** `function file:line`, or the V8 pseudo-frames `(garbage collector)`, `(program)`. */
  where: string;
  seconds: number;
}

export interface ClientProfile {
  proc: number;
  /** Profiled wall time and the part of it the main thread was busy, seconds. */
  seconds: number;
  busy_seconds: number;
  /** Busy time by function, self time only, largest first. */
  top: SelfTime[];
}

/** Self time by call frame, largest first (idle excluded). */
export function selfTimes(p: CpuProfile, limit: number): { total: number; busy: number; top: SelfTime[] } {
  const frameOf = new Map(p.nodes.map((n) => [n.id, n.callFrame]));
  const time = new Map<string, number>();
  let total = 0;
  let busy = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = (p.timeDeltas[i] ?? 0) / 1e6;
    total += dt;
    const f = frameOf.get(p.samples[i]);
    if (!f || f.functionName === '(idle)') continue;
    busy += dt;
    const file = f.url ? `${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'}${file ? ` ${file}` : ''}`;
    time.set(key, (time.get(key) ?? 0) + dt);
  }
  const top = [...time]
    .sort((x, y) => y[1] - x[1])
    .slice(0, limit)
    .map(([where, seconds]) => ({ where, seconds: Math.round(seconds * 1000) / 1000 }));
  return { total, busy, top };
}

/** Profiles this process between start() and stop(); stop() summarises (and writes the profile if asked). */
export class SelfProfiler {
  private session: Session | null = null;

  constructor(private readonly proc: number) {}

  start(): void {
    if (this.session) return;
    const s = new Session();
    s.connect();
    s.post('Profiler.enable');
    s.post('Profiler.setSamplingInterval', { interval: 1000 });
    s.post('Profiler.start');
    this.session = s;
  }

  stop(): Promise<ClientProfile | null> {
    const s = this.session;
    if (!s) return Promise.resolve(null);
    this.session = null;
    return new Promise((resolve) => {
      s.post('Profiler.stop', (err, r) => {
        s.disconnect();
        if (err) return resolve(null);
        const profile = r.profile as unknown as CpuProfile;
        // As for the coordinator's: EDGEFED_BENCH_CPUPROFILE=/tmp/run also writes /tmp/run-client<P>-<time>.cpuprofile.
        const out = process.env.EDGEFED_BENCH_CPUPROFILE;
        if (out) writeFileSync(`${out}-client${this.proc}-${Date.now()}.cpuprofile`, JSON.stringify(profile));
        const { total, busy, top } = selfTimes(profile, 12);
        resolve({ proc: this.proc, seconds: total, busy_seconds: busy, top });
      });
    });
  }
}
