/** Readers of /proc/PID for the coordinator and client processes: memory, CPU time, disk writes, file limits. */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** VmRSS and VmHWM of a live process, bytes; null once it is gone. */
export function procMemory(pid: number): { rss: number; hwm: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return null;
  }
}

export let clockTicks = 100;
try {
  clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  // 100 is the Linux default
}

/** User + system CPU seconds a live process has used so far (all threads); NaN once it is gone. */
export function procCpuSeconds(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = s.slice(s.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
    return (Number(fields[11]) + Number(fields[12])) / clockTicks; // utime (14), stime (15)
  } catch {
    return NaN;
  }
}

/** Bytes a process caused to be written to storage, and its write syscalls (/proc/PID/io). */
export function procIo(pid: number): { writeBytes: number; syscw: number } {
  try {
    const s = readFileSync(`/proc/${pid}/io`, 'utf8');
    const v = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
    return { writeBytes: v('write_bytes'), syscw: v('syscw') };
  } catch {
    return { writeBytes: NaN, syscw: NaN };
  }
}

/** The soft and hard limits on open files of a process (from /proc/PID/limits). */
export function openFileLimits(pid: number | 'self'): { soft: number; hard: number } {
  const line =
    readFileSync(`/proc/${pid}/limits`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files')) ?? '';
  const [soft, hard] = line.replace('Max open files', '').trim().split(/\s+/);
  const n = (s: string | undefined) => (s === 'unlimited' ? Infinity : Number(s));
  return { soft: n(soft), hard: n(hard) };
}

/**
 * A thread's time on a CPU and time runnable but waiting for one (the run queue), seconds, from
 * /proc/PID/task/TID/schedstat; NaN when unreadable. The main thread's TID is the PID. On a machine with fewer
 * cores than busy threads, the wait is latency the event loop adds to every request without being blocked itself.
 */
export function threadSchedSeconds(pid: number, tid = pid): { onCpu: number; waiting: number } {
  try {
    const [run, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
    return { onCpu: run / 1e9, waiting: wait / 1e9 };
  } catch {
    return { onCpu: NaN, waiting: NaN };
  }
}

/** Each live thread of a process: its id, its name, and its /proc stat fields from field 3 (state) on. */
function liveThreads(pid: number): { tid: string; name: string; fields: string[] }[] {
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out: { tid: string; name: string; fields: string[] }[] = [];
  for (const tid of tids) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const s = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      out.push({ tid, name, fields: s.slice(s.lastIndexOf(')') + 2).split(' ') });
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** CPU seconds (user + system) of a process's live threads: its main thread, and the others by name and id. */
export function threadCpuByName(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const { tid, name, fields } of liveThreads(pid)) {
    // Node leaves its threads (V8's GC and compiler workers, libuv's pool) named 'node': by id. The coordinator
    // names its own workers (edgefed-verify, edgefed-dataset).
    const key = tid === String(pid) ? 'main thread' : `${name} ${tid}`;
    out.set(key, (out.get(key) ?? 0) + (Number(fields[11]) + Number(fields[12])) / clockTicks);
  }
  return out;
}

/**
 * Nice values of a process's named threads (those whose name starts with `prefix`, e.g. the coordinator's
 * 'edgefed-verify'), by name: what the OS applied, from /proc/PID/task/TID/stat (field 19).
 */
export function threadNiceByName(pid: number, prefix = 'edgefed-'): Map<string, number> {
  const out = new Map<string, number>();
  for (const { name, fields } of liveThreads(pid)) if (name.startsWith(prefix)) out.set(name, Number(fields[16]));
  return out;
}
