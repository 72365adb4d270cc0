/**
 * What a round's CPU profile spends the coordinator's main thread on, by phase of the round (the outermost phase
 * function on each sample's stack), and the longest stretches the loop was never idle: while one lasts, no
 * /healthz, heartbeat or socket read is served, so a stretch is exactly how long the loop was blocked.
 */
import type { CpuProfile } from './inspector.js';

const RECEIVE = 'frame receive (ws)';
const WS_PARSE = 'ws receive (frame parsing in ws)';
/** Phases that only say where work came in: a phase found deeper on the stack wins. */
const CONTAINERS = new Set([RECEIVE, WS_PARSE]);

/** A phase and the call frames that start it (the first match from the stack's root down wins). */
const PHASES: { phase: string; match: (fn: string, url: string) => boolean }[] = [
  { phase: 'run start (evaluation set, kernels)', match: (fn, url) => fn === 'start' && url.includes('run-manager') },
  { phase: 'fusion', match: (fn) => fn === 'aggregateTrain' || fn === 'fuseInOrder' },
  { phase: 'evaluation', match: (fn, url) => /evaluat/i.test(fn) && url.includes('/src/') },
  {
    phase: 'encode train request',
    match: (fn) => ['encodeTrainRequest', 'encodeTrainRequestHead', 'encodeEvalRequest'].includes(fn),
  },
  { phase: 'bind + send frame', match: (fn) => ['bindFrame', 'sendFrame', 'sendFrameParts'].includes(fn) },
  { phase: 'signature check', match: (fn) => fn === 'openSignedFrame' || fn === 'verify' || fn === 'verifyEd25519' },
  { phase: 'reply decode + check', match: (fn) => fn === 'parseTrainReply' || fn === 'verifyNodeFrame' },
  { phase: RECEIVE, match: (fn, url) => url.includes('ws-node-connection') || fn === 'receive' },
  { phase: 'hello / heartbeat (control)', match: (fn) => fn === 'control' },
  { phase: 'store (SQLite)', match: (_fn, url) => url.includes('/src/coordinator/store') },
  { phase: 'model version (SQLite)', match: (_fn, url) => url.includes('/src/coordinator/model-versions') },
  { phase: WS_PARSE, match: (_fn, url) => url.includes('/ws/lib/receiver') },
  { phase: 'socket writes', match: (fn) => fn === 'writev' || fn === 'writeBuffer' || fn === 'writeUtf8String' },
  { phase: 'JSON', match: (fn, url) => url === '' && (fn === 'parse' || fn === 'stringify') },
];

export interface BusyStretch {
  ms: number;
  /** Share of the stretch by phase, largest first. */
  phases: { phase: string; fraction: number }[];
  /** Share by the innermost EdgeFed source function on the stack (GC and V8 pseudo-frames by name); absent in old runs. */
  functions?: { phase: string; fraction: number }[];
  /** When the stretch began, seconds after the profile started; absent in old runs. */
  at_s?: number;
}

export interface PhaseSummary {
  /** Share of the profiled wall time by phase (idle excluded from the list). */
  phases: { phase: string; fraction: number }[];
  /** The longest stretches with no idle sample, longest first. */
  longest_busy: BusyStretch[];
}

function shares(time: Map<string, number>, total: number): { phase: string; fraction: number }[] {
  return [...time]
    .filter(([k]) => k !== '(idle)')
    .sort((x, y) => y[1] - x[1])
    .map(([phase, v]) => ({ phase, fraction: total > 0 ? Math.round((v / total) * 1000) / 1000 : NaN }));
}

export function summarisePhases(p: CpuProfile, stretches = 3): PhaseSummary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const phaseOf = new Map<number, string>();
  const locate = (id: number): string => {
    const known = phaseOf.get(id);
    if (known !== undefined) return known;
    const f = byId.get(id)!.callFrame;
    const up = parent.has(id) ? locate(parent.get(id)!) : null;
    let phase: string;
    // The socket handler only says where a frame came in: a phase found deeper (a hello's SQLite write, a
    // signature check, a decode) names the work better.
    const own = PHASES.find((x) => x.match(f.functionName, f.url))?.phase;
    if (up !== null && up !== 'other' && !(CONTAINERS.has(up) && own !== undefined)) phase = up;
    else if (f.functionName === '(idle)') phase = '(idle)';
    else if (f.functionName === '(garbage collector)') phase = 'garbage collector';
    else phase = own ?? up ?? 'other';
    phaseOf.set(id, phase);
    return phase;
  };
  // What a stalled stretch was doing, finer than its phase: the innermost src/ function on the stack.
  const fnOf = new Map<number, string>();
  const innermost = (id: number): string => {
    const known = fnOf.get(id);
    if (known !== undefined) return known;
    const f = byId.get(id)!.callFrame;
    let w: string;
    if (f.url.includes('/src/')) w = `${f.functionName || '(anonymous)'} ${f.url.slice(f.url.indexOf('/src/') + 5)}`;
    else if (f.functionName.startsWith('(') && f.url === '') w = f.functionName;
    else w = parent.has(id) ? innermost(parent.get(id)!) : '(outside src)';
    fnOf.set(id, w);
    return w;
  };
  const time = new Map<string, number>();
  let total = 0;
  type Stretch = { at: number; us: number; time: Map<string, number>; fns: Map<string, number> };
  const found: Stretch[] = [];
  let run: Stretch | null = null;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    const phase = locate(p.samples[i]);
    total += dt;
    time.set(phase, (time.get(phase) ?? 0) + dt);
    if (phase === '(idle)') {
      if (run) found.push(run);
      run = null;
      continue;
    }
    run ??= { at: total - dt, us: 0, time: new Map(), fns: new Map() };
    run.us += dt;
    run.time.set(phase, (run.time.get(phase) ?? 0) + dt);
    const fn = innermost(p.samples[i]);
    run.fns.set(fn, (run.fns.get(fn) ?? 0) + dt);
  }
  if (run) found.push(run);
  // The stretch the profile opens with is the profiler starting (V8 stops the thread to set up, 0.1-0.5 s at
  // thousands of connections): a cost of --profile, not of the coordinator, so it is not reported as a stall.
  if (found[0]?.at === 0) found.shift();
  found.sort((a, b) => b.us - a.us);
  return {
    phases: shares(time, total),
    longest_busy: found.slice(0, stretches).map((s) => ({
      ms: Math.round(s.us / 100) / 10,
      at_s: Math.round(s.at / 1e4) / 100,
      phases: shares(s.time, s.us).slice(0, 5),
      functions: shares(s.fns, s.us).slice(0, 5),
    })),
  };
}

const pct = (f: number) => `${Math.round(f * 1000) / 10}%`;

/** One line: phases by share, then the longest blocked stretch and what filled it. */
export function phaseLine(s: PhaseSummary | undefined): string {
  if (!s) return 'no phase summary';
  const top = s.phases
    .slice(0, 6)
    .map((x) => `${x.phase} ${pct(x.fraction)}`)
    .join(', ');
  const shown = (xs: { phase: string; fraction: number }[]) =>
    xs
      .slice(0, 3)
      .map((x) => `${x.phase} ${pct(x.fraction)}`)
      .join(', ');
  // The three longest, each with its phases and the functions that filled it (the stall's cause).
  const stalls = s.longest_busy
    .map(
      (b) =>
        `${b.ms} ms${b.at_s === undefined ? '' : ` at ${b.at_s} s`} (${shown(b.phases)}${b.functions ? `; in ${shown(b.functions)}` : ''})`,
    )
    .join('; ');
  return `${top}${stalls ? `; longest busy stretches (the loop never idle; /healthz waits through them): ${stalls}` : ''}`;
}
