/**
 * Signature checks of node frames off the coordinator's event loop. At 10,000 nodes a round brings 10,000
 * signed replies; hashing and verifying each on the main thread delays heartbeats, /healthz and the round
 * itself. The pool's worker threads run the same check (verify-worker.ts); frames travel as transferred
 * ArrayBuffers (one copy at most, only when the frame shares its buffer with other bytes), batched per turn of
 * the event loop so a burst of replies costs a few messages, not thousands.
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { bootWorker, firstMessage, workerEntry } from '../sim/boot-worker.js';
import { alignedCopy } from './aligned-frame.js';
import type { ThreadPriorityReport } from './thread-priority.js';

/**
 * One frame to check, as a worker receives it. Keys travel once per thread: structured-cloning a 32-byte key
 * with every job cost the loop ~45 us each (a 2,000-job batch blocked it ~90 ms), against ~1 us for the frame
 * itself (transferred). `key` comes with the first job of its keyId on that thread; the worker keeps it.
 */
export interface VerifyJob {
  id: number;
  bytes: Uint8Array;
  keyId: number;
  key?: Uint8Array;
}

/** A batch for one thread; `forget`: drop every key kept so far first (the sender then sends them again). */
export interface VerifyBatch {
  forget: boolean;
  jobs: VerifyJob[];
}

/** Keys a thread keeps before it is told to forget them all (a fresh key object per node session). */
const MAX_KEYS_PER_THREAD = 65_536;

export type VerifyOutcome =
  | { id: number; bytes: Uint8Array; ok: true }
  | { id: number; bytes: Uint8Array; ok: false; code: string; message: string };

interface Queued {
  id: number;
  bytes: Uint8Array;
  publicKey: Uint8Array;
}

interface Slot {
  worker: Worker;
  outstanding: number;
  batch: Queued[];
  /** keyIds whose key this thread holds. */
  known: Set<number>;
}

/** Worker threads for a machine: leave one core to the event loop, and two are plenty for Ed25519. */
export function defaultVerifyThreads(): number {
  return Math.max(1, Math.min(2, availableParallelism() - 1));
}

export class VerifyPool {
  private readonly waiting = new Map<number, (outcome: VerifyOutcome) => void>();
  private nextId = 1;
  /** One id per key object (a node session's key), so a thread is sent each key once. */
  private readonly keyIds = new WeakMap<Uint8Array, number>();
  private nextKeyId = 1;
  private flushing = false;
  private closed = false;

  private constructor(
    private readonly slots: Slot[],
    /** Each thread's id and nice value as it reported them when it started (thread-priority.ts). */
    readonly priorities: ThreadPriorityReport[],
  ) {
    for (const slot of slots)
      slot.worker.on('message', (outcomes: VerifyOutcome[]) => {
        slot.outstanding -= outcomes.length;
        // Idle threads do not keep the process alive; busy ones do until their answers are in.
        if (slot.outstanding === 0) slot.worker.unref();
        for (const outcome of outcomes) {
          const done = this.waiting.get(outcome.id);
          this.waiting.delete(outcome.id);
          done?.(outcome);
        }
      });
  }

  /** Starts `threads` workers at nice value `nice` (0: the coordinator's own; Linux only, see thread-priority.ts). */
  static async start(threads = defaultVerifyThreads(), nice = 0): Promise<VerifyPool> {
    const entry = workerEntry('verify-worker', import.meta.url);
    const workers = Array.from({ length: threads }, () => bootWorker(entry, { nice }));
    // Listening from the start: a thread that fails before the pool exists must not crash the process.
    const started: { pool?: VerifyPool } = {};
    for (const worker of workers) {
      worker.on('error', (e) => started.pool?.failAll(e));
      worker.on('exit', (code) => started.pool?.failAll(new Error(`verify worker exited with code ${code}`)));
    }
    let priorities: ThreadPriorityReport[];
    try {
      priorities = await Promise.all(
        workers.map((worker) => firstMessage<ThreadPriorityReport>(worker, 'verify worker')),
      );
    } catch (e) {
      // One thread that cannot start fails the pool: the others must not keep the process alive.
      await Promise.all(workers.map((worker) => worker.terminate()));
      throw e;
    }
    const slots = workers.map((worker): Slot => ({ worker, outstanding: 0, batch: [], known: new Set() }));
    started.pool = new VerifyPool(slots, priorities);
    for (const worker of workers) worker.unref();
    return started.pool;
  }

  get threads(): number {
    return this.slots.length;
  }

  /**
   * Checks a signed frame against a node's key off the main thread. Resolves with the frame's bytes (the
   * caller's array, or its one copy when it did not own its buffer: the caller's array is unusable after); a
   * good frame's inner frame comes back 4-byte aligned (alignedCopy), so the event loop reads it in place.
   */
  verify(bytes: Uint8Array, publicKey: Uint8Array): Promise<VerifyOutcome> {
    if (this.closed) return Promise.reject(new Error('verify pool is closed'));
    const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && !isShared(bytes);
    const job: Queued = { id: this.nextId++, bytes: own ? bytes : alignedCopy(bytes), publicKey };
    const slot = this.slots.reduce((a, b) => (b.outstanding + b.batch.length < a.outstanding + a.batch.length ? b : a));
    slot.batch.push(job);
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => this.flush());
    }
    return new Promise((resolve) => this.waiting.set(job.id, resolve));
  }

  private flush(): void {
    this.flushing = false;
    for (const slot of this.slots) {
      if (slot.batch.length === 0) continue;
      const queued = slot.batch;
      slot.batch = [];
      slot.outstanding += queued.length;
      const forget = slot.known.size > MAX_KEYS_PER_THREAD;
      if (forget) slot.known.clear();
      const jobs = queued.map(({ id, bytes, publicKey }): VerifyJob => {
        let keyId = this.keyIds.get(publicKey);
        if (keyId === undefined) this.keyIds.set(publicKey, (keyId = this.nextKeyId++));
        if (slot.known.has(keyId)) return { id, bytes, keyId };
        slot.known.add(keyId);
        return { id, bytes, keyId, key: publicKey.slice() };
      });
      slot.worker.ref();
      const batch: VerifyBatch = { forget, jobs };
      slot.worker.postMessage(
        batch,
        jobs.map((j) => j.bytes.buffer as ArrayBuffer),
      );
    }
  }

  private failAll(e: Error): void {
    for (const [id, done] of this.waiting)
      done({ id, bytes: new Uint8Array(0), ok: false, code: 'internal', message: `verify pool: ${e.message}` });
    this.waiting.clear();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.failAll(new Error('closed'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}

function isShared(bytes: Uint8Array): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && bytes.buffer instanceof SharedArrayBuffer;
}

/**
 * The pool a coordinator uses, started the first time its fleet reaches `fromNodes` connections: a small
 * deployment (and every test with a few nodes) verifies on the event loop, where a frame costs a fraction of
 * a millisecond, and never pays for the threads. Both paths run the same check on the same bytes.
 */
export class LazyVerifyPool {
  private pool: VerifyPool | null = null;
  private starting: Promise<void> | null = null;

  constructor(
    private readonly threads: number,
    private readonly fromNodes: number,
    private readonly onError: (e: Error) => void,
    /** Nice value of the threads, and where to say (once) that the OS refused it; they run on regardless. */
    private readonly nice = 0,
    private readonly onRefused: (reason: string) => void = () => undefined,
  ) {}

  /** The pool once started, or null (verify on the event loop); starts it when the fleet is big enough. */
  forFleet(size: number): VerifyPool | null {
    if (this.pool || this.threads <= 0 || size < this.fromNodes) return this.pool;
    this.starting ??= VerifyPool.start(this.threads, this.nice).then(
      (p) => {
        this.pool = p;
        const refused = p.priorities.find((r) => r.refused !== null)?.refused;
        if (refused) this.onRefused(refused);
      },
      (e: Error) => this.onError(e),
    );
    return null;
  }

  async close(): Promise<void> {
    await this.starting;
    await this.pool?.close();
  }
}
