/**
 * Lower OS priority for the coordinator's worker threads. On a machine with fewer cores than busy threads, a worker
 * checking signatures takes CPU time the event loop needed for heartbeats, /healthz and round commits: measured at
 * 10,000 nodes on 2 cores, the main thread was runnable but waiting for a CPU most of the run. On Linux a thread's
 * nice value is its own (setpriority with the thread's id), so a worker can yield to the event loop without
 * slowing the process as a whole; raising one's own nice value needs no privilege. Elsewhere nice is per process,
 * so nothing is changed there. Each call runs in the thread it changes. NODE-ONLY.
 */
import { readlinkSync, writeFileSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** Nice value of the coordinator's worker threads by default (measured: bench/connections.ts, --worker-nice). */
export const DEFAULT_WORKER_NICE = 10;
export const MAX_NICE = 19;

/** What a worker reports after trying: its thread id (null where unknown), and why nothing changed if so. */
export interface ThreadPriorityReport {
  tid: number | null;
  nice: number | null;
  refused: string | null;
}

/** The calling thread's kernel id: /proc/thread-self links to `<pid>/task/<tid>`; null off Linux. */
export function currentThreadId(): number | null {
  try {
    const tid = Number(/\/task\/(\d+)$/.exec(readlinkSync('/proc/thread-self'))?.[1]);
    return Number.isInteger(tid) && tid > 0 ? tid : null;
  } catch {
    return null;
  }
}

/**
 * Gives the calling thread nice value `nice` (0 leaves it as it is) and, for ps/top and the bench's per-thread
 * CPU, the name `name` (15 bytes at most, Linux's limit). Never throws: a refusal comes back in `refused`.
 */
export function lowerThisThread(nice: number, name: string): ThreadPriorityReport {
  const tid = currentThreadId();
  // Nice 0 asks for nothing, so there is nothing to refuse where thread ids are unknown.
  if (tid === null)
    return { tid, nice: null, refused: nice === 0 ? null : 'thread priorities are per thread only on Linux' };
  try {
    // A thread's name is only a label: a kernel that refuses it changes nothing else.
    writeFileSync(`/proc/thread-self/comm`, name.slice(0, 15));
  } catch {
    // unnamed threads still run
  }
  if (nice === 0) return { tid, nice: getPriority(tid), refused: null };
  try {
    // Never raise a thread above what it has (a coordinator started with nice 15 keeps its workers at >= 15).
    setPriority(tid, Math.max(nice, getPriority(tid)));
    return { tid, nice: getPriority(tid), refused: null };
  } catch (e) {
    return { tid, nice: null, refused: (e as Error).message };
  }
}

/** A --worker-nice value checked: a whole number 0..19. */
export function checkWorkerNice(nice: number, where: string): number {
  if (!Number.isInteger(nice) || nice < 0 || nice > MAX_NICE)
    throw new RangeError(`${where}: expected a whole number from 0 to ${MAX_NICE}, got ${nice}`);
  return nice;
}
