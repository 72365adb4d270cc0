/**
 * The in-process transport: virtual nodes served by a pool of worker threads. Any idle worker takes the
 * next request of an unpinned node (every worker can host every node), so the cores stay busy however the
 * sample falls. A pinned node (Transport.pin) is served by the worker that first took it, so state it keeps
 * between requests lives in one place: secure-aggregation sessions pin for a round; with `pinNodes` (compression
 * error feedback, strategies with node state) every node is pinned for the whole run. Models do not depend on
 * which worker holds a node.
 * Frames cross threads as transferred buffers; their lengths are the bytes counted. A transferred frame belongs to
 * its receiver alone, so it is adopted (wire.ts): the weights or update in it are decoded without a copy. A round's
 * train requests come in parts (requestParts): the weights every node gets are put in shared memory once per round,
 * and each request carries only its node's small head; the worker joins the two (request-parts.ts).
 */
import type { Worker } from 'node:worker_threads';
import { bootWorker, firstMessage, workerEntry } from './boot-worker.js';
import type { Transport } from '../engine/transport.js';
import { TrafficMeter } from '../engine/transport.js';
import { adoptFrame } from '../core/wire.js';
import type { SimWorkerData } from './worker.js';
import { SharedBodies, type PartsRequest } from './request-parts.js';
import type { EvalRangeReply, EvalRangeRequest, RangeEvaluators } from './central-eval.js';

/**
 * A simulation worker's young generation, in MiB (V8's default is 48). A worker allocates few JS objects (models,
 * frames and data live outside the JS heap), yet with the default V8 ran a full mark-compact of each worker's small
 * heap every two or three rounds of the 2NN non-IID bench, its helper threads taking ~20 ms of CPU per round (V8
 * starts marking when the old generation's headroom is below the young generation's capacity). With 4 MiB: about
 * one per run, ~4-13 ms. Results do not depend on it; only garbage collection does.
 */
const WORKER_YOUNG_GENERATION_MB = 4;

interface Job {
  nodeId: number;
  /** The whole frame, or its head and the round's shared body (requestParts). */
  frame: Uint8Array | { head: Uint8Array; body: Uint8Array };
  /** Bytes counted as sent: the frame's length (head and body together). */
  bytes: number;
  resolve: (frame: Uint8Array) => void;
  reject: (e: Error) => void;
}

/** A central-evaluation range waiting for a worker with no training request to serve (evaluateQueued). */
interface EvalJob {
  range: [number, number];
  weights: Float32Array;
  resolve: (reply: EvalRangeReply) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  job: Job | null;
  /** A central-evaluation range this worker is computing (central-eval.ts). */
  evaluating: { resolve: (reply: EvalRangeReply) => void; reject: (e: Error) => void } | null;
}

export class WorkerPoolTransport implements Transport, RangeEvaluators {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private readonly evalQueue: EvalJob[] = [];
  private readonly meter = new TrafficMeter();
  /** Pinned nodes and the worker holding their state (null until their next request is placed). */
  private readonly pins = new Map<number, Slot | null>();
  private nextId = 0;
  private closed = false;
  private readonly bodies = new SharedBodies();
  /** The weights central evaluation reads, shared with every worker (evaluateRanges). */
  private sharedWeights: Float32Array | null = null;
  /** Every node pinned for the whole run: a round's unpin (secure aggregation) must not undo it. */
  private pinnedForRun = false;
  trainerKind = '';

  private constructor(private readonly numNodes: number) {}

  static async start(
    data: Omit<SimWorkerData, 'entry'>,
    workers: number,
    pinNodes = false,
  ): Promise<WorkerPoolTransport> {
    const pool = new WorkerPoolTransport(data.parts.length);
    if (pinNodes) for (let nodeId = 0; nodeId < data.parts.length; nodeId++) pool.pin(nodeId);
    pool.pinnedForRun = pinNodes;
    const entry = workerEntry('worker', import.meta.url);
    const started: Worker[] = [];
    const starting = Promise.all(
      Array.from({ length: workers }, async () => {
        const worker = bootWorker(entry, data, undefined, { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB });
        started.push(worker);
        const slot: Slot = { worker, job: null, evaluating: null };
        worker.on('error', (e) => pool.fail(slot, e));
        worker.on('exit', (code) => pool.fail(slot, new Error(`simulation worker exited with code ${code}`)));
        const ready = await firstMessage<{ ready?: boolean; trainer?: string }>(worker, 'simulation worker');
        pool.trainerKind = ready.trainer ?? '';
        worker.on('message', (reply: { frame: Uint8Array } | { evalRange: EvalRangeReply }) =>
          'evalRange' in reply ? pool.evaluated(slot, reply.evalRange) : pool.finish(slot, reply.frame),
        );
        pool.slots.push(slot);
      }),
    );
    try {
      await starting;
    } catch (e) {
      // One worker that cannot start fails the pool: the others must not keep the process alive.
      pool.closed = true;
      await Promise.all(started.map((worker) => worker.terminate()));
      throw e;
    }
    return pool;
  }

  nodeIds(): number[] {
    return Array.from({ length: this.numNodes }, (_, i) => i);
  }

  request(nodeId: number, frame: Uint8Array): Promise<Uint8Array> {
    return this.enqueue(nodeId, frame, frame.length);
  }

  /**
   * A request whose frame is head + body, the body the same for every node of a round: it goes into shared memory
   * once (not once per node, as whole frames would), and each worker joins it to the node's head.
   */
  requestParts(nodeId: number, head: Uint8Array, body: Uint8Array): Promise<Uint8Array> {
    return this.enqueue(nodeId, { head, body: this.bodies.share(body) }, head.length + body.length);
  }

  private enqueue(nodeId: number, frame: Job['frame'], bytes: number): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new Error('transport is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ nodeId, frame, bytes, resolve, reject });
      this.dispatch();
    });
  }

  idle(): number {
    return this.slots.filter((s) => !s.job && !s.evaluating).length;
  }

  /**
   * One central-evaluation range to each of as many workers, all idle (the synchronous engine evaluates between
   * rounds). The weights go in shared memory, written once for all of them; while another evaluation is still
   * reading it, they travel as a copy instead.
   */
  evaluateRanges(weights: Float32Array, ranges: [number, number][]): Promise<EvalRangeReply[]> {
    if (this.closed) return Promise.reject(new Error('transport is closed'));
    const idle = this.slots.filter((s) => !s.job && !s.evaluating);
    if (idle.length < ranges.length)
      return Promise.reject(new Error(`central evaluation needs ${ranges.length} idle workers, ${idle.length} are`));
    const shared = this.share(weights);
    return Promise.all(
      ranges.map(
        (range, i) =>
          new Promise<EvalRangeReply>((resolve, reject) =>
            this.evaluate(idle[i], { range, weights: shared, resolve, reject }),
          ),
      ),
    );
  }

  /**
   * Central-evaluation ranges queued behind the training requests: a worker takes one when no request waits for it,
   * so an evaluation fills the time the last nodes of a round leave the other workers idle. Replies in range order.
   */
  evaluateQueued(weights: Float32Array, ranges: [number, number][]): Promise<EvalRangeReply[]> {
    if (this.closed) return Promise.reject(new Error('transport is closed'));
    const shared = this.share(weights);
    const replies = Promise.all(
      ranges.map(
        (range) =>
          new Promise<EvalRangeReply>((resolve, reject) =>
            this.evalQueue.push({ range, weights: shared, resolve, reject }),
          ),
      ),
    );
    this.dispatch();
    return replies;
  }

  /** The last queued evaluation range, taken off the queue by the caller (the main thread helping, central-eval.ts). */
  takeQueuedEvaluation(): { range: [number, number]; weights: Float32Array; done: (r: EvalRangeReply) => void } | null {
    const job = this.evalQueue.pop();
    return job ? { range: job.range, weights: job.weights, done: job.resolve } : null;
  }

  /**
   * The weights in shared memory, written once for every worker: the pool's buffer, or a new one while an earlier
   * evaluation still reads that.
   */
  private share(weights: Float32Array): Float32Array {
    const reading = this.evalQueue.length > 0 || this.slots.some((s) => s.evaluating);
    if (reading || this.sharedWeights?.length !== weights.length)
      this.sharedWeights = new Float32Array(new SharedArrayBuffer(weights.byteLength));
    this.sharedWeights.set(weights);
    return this.sharedWeights;
  }

  private evaluate(slot: Slot, job: EvalJob): void {
    slot.evaluating = { resolve: job.resolve, reject: job.reject };
    const request: EvalRangeRequest = { evalRange: { start: job.range[0], end: job.range[1] }, weights: job.weights };
    slot.worker.postMessage(request);
  }

  private evaluated(slot: Slot, reply: EvalRangeReply): void {
    const waiting = slot.evaluating;
    slot.evaluating = null;
    waiting?.resolve(reply);
    this.dispatch();
  }

  pin(nodeId: number): void {
    if (!this.pins.has(nodeId)) this.pins.set(nodeId, null);
  }

  unpin(nodeId: number): void {
    if (this.pinnedForRun) return;
    this.pins.delete(nodeId);
    this.dispatch();
  }

  /** The first queued job this idle worker may take: any unpinned job, or one pinned to it (or not yet placed). */
  private takeFor(slot: Slot): Job | undefined {
    const i = this.queue.findIndex((j) => {
      const pinned = this.pins.get(j.nodeId);
      return pinned === undefined || pinned === null || pinned === slot;
    });
    if (i < 0) return undefined;
    const job = this.queue.splice(i, 1)[0];
    if (this.pins.has(job.nodeId)) this.pins.set(job.nodeId, slot);
    return job;
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.job || slot.evaluating) continue;
      const job = this.queue.length > 0 ? this.takeFor(slot) : undefined;
      if (!job) {
        const evaluation = this.evalQueue.shift();
        if (evaluation) this.evaluate(slot, evaluation);
        continue;
      }
      slot.job = job;
      this.meter.count(job.nodeId, job.bytes, 0);
      const id = this.nextId++;
      if (job.frame instanceof Uint8Array)
        slot.worker.postMessage({ id, frame: job.frame }, [job.frame.buffer as ArrayBuffer]);
      else slot.worker.postMessage({ id, head: job.frame.head, body: job.frame.body } satisfies PartsRequest);
    }
  }

  private finish(slot: Slot, frame: Uint8Array): void {
    const job = slot.job;
    slot.job = null;
    if (job) {
      this.meter.count(job.nodeId, 0, frame.length);
      job.resolve(adoptFrame(frame)); // transferred here: the update decodes as a view into it
    }
    this.dispatch();
  }

  private fail(slot: Slot, e: Error): void {
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    // Nodes pinned to a dead worker lost their state: their queued requests fail rather than wait forever.
    for (const [nodeId, pinned] of this.pins) {
      if (pinned !== slot) continue;
      this.pins.delete(nodeId);
      for (const j of this.queue.filter((q) => q.nodeId === nodeId)) {
        this.queue.splice(this.queue.indexOf(j), 1);
        j.reject(new Error(`the worker holding node ${nodeId}'s session exited`));
      }
    }
    slot.job?.reject(e);
    slot.job = null;
    slot.evaluating?.reject(e);
    slot.evaluating = null;
    if (this.slots.length === 0 && !this.closed) {
      for (const j of this.queue.splice(0)) j.reject(e);
      for (const j of this.evalQueue.splice(0)) j.reject(e);
    }
  }

  traffic() {
    return this.meter.snapshot();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const j of this.evalQueue.splice(0)) j.reject(new Error('transport is closed'));
    await Promise.all(this.slots.splice(0).map((s) => s.worker.terminate()));
  }
}
