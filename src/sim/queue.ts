/**
 * Simulation across machines: virtual nodes served by worker processes that take request frames from a
 * BullMQ queue on Redis (`edgefed sim-worker`), in place of this process's worker threads. The job carries
 * the run's options (from which each worker derives the same shards, see setup.ts), the node id and the
 * request frame; the job's return value is the node's reply frame. Frames are the same bytes both
 * transports carry, so bytes are counted the same way and the same seed gives the same model.
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { Queue, QueueEvents, Worker, type Job } from 'bullmq';
import { DEFAULT_QUEUE_NAME_TEXT, redisConnection } from './queue-url.js';
import type { Transport } from '../engine/transport.js';
import { TrafficMeter } from '../engine/transport.js';
import { resolveOptions, type ResolvedOptions } from './options.js';
import { prepareRun } from './setup.js';
import { localDpHost, simNodeHost } from './sim-host.js';
import type { NodeHost } from '../node/host.js';

/** A node request as a queue job (JSON: the frame travels as base64). */
export interface NodeJob {
  /** sha256 of the options: workers keep one host per setup. */
  setupId: string;
  setup: ResolvedOptions;
  nodeId: number;
  frame: string;
}

export interface NodeJobResult {
  frame: string;
  /** hostname:pid of the worker process that served the job. */
  worker: string;
  trainer: string;
}

/** Finished jobs kept at most (per state, newest first) and for at most an hour, for waiters not yet done. */
const KEEP_FINISHED = { count: 10_000, age: 3600 };

/** The options workers need (everything but where the queue is): the same run always gets the same id. */
function jobSetup(options: ResolvedOptions): { setup: ResolvedOptions; setupId: string } {
  const { queue: _q, queueName: _n, workers: _w, ...setup } = options;
  return { setup: setup as ResolvedOptions, setupId: createHash('sha256').update(JSON.stringify(setup)).digest('hex') };
}

export class QueueTransport implements Transport {
  private readonly meter = new TrafficMeter();
  private readonly setup: ResolvedOptions;
  private readonly setupId: string;
  /** The worker processes that have served this run's jobs. */
  readonly servedBy = new Set<string>();
  trainerKind = '';

  private constructor(
    private readonly queue: Queue,
    private readonly events: QueueEvents,
    options: ResolvedOptions,
  ) {
    ({ setup: this.setup, setupId: this.setupId } = jobSetup(options));
  }

  /** Connects and waits (up to waitSeconds) for at least one worker on the queue. */
  static async start(options: ResolvedOptions, waitSeconds = 30): Promise<QueueTransport> {
    if (!options.queue) throw new Error('no queue URL in the options');
    const connection = redisConnection(options.queue);
    const name = options.queueName ?? DEFAULT_QUEUE_NAME_TEXT;
    const queue = new Queue(name, { connection });
    const events = new QueueEvents(name, { connection });
    try {
      await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
      const deadline = Date.now() + waitSeconds * 1000;
      while ((await queue.getWorkersCount()) === 0) {
        if (Date.now() > deadline)
          throw new Error(
            `no worker listens on queue '${name}' at ${options.queue}; start some with: edgefed sim-worker --redis ${options.queue}`,
          );
        await new Promise((r) => setTimeout(r, 200));
      }
    } catch (e) {
      await Promise.allSettled([queue.close(), events.close()]);
      throw e;
    }
    return new QueueTransport(queue, events, options);
  }

  nodeIds(): number[] {
    return Array.from({ length: this.setup.nodes }, (_, i) => i);
  }

  async request(nodeId: number, frame: Uint8Array): Promise<Uint8Array> {
    const data: NodeJob = {
      setupId: this.setupId,
      setup: this.setup,
      nodeId,
      frame: Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength).toString('base64'),
    };
    this.meter.count(nodeId, frame.length, 0);
    // Finished jobs stay until their waiter has read them: removed on completion, a job that finished before
    // waitUntilFinished looked (a loaded machine) read as "Missing key ... isFinished", and its node as failed.
    // KEEP_FINISHED bounds what a waiter that died leaves behind.
    const job = await this.queue.add('node', data, { removeOnComplete: KEEP_FINISHED, removeOnFail: KEEP_FINISHED });
    let result: NodeJobResult;
    try {
      result = (await job.waitUntilFinished(this.events)) as NodeJobResult;
    } finally {
      await job.remove().catch(() => {}); // already gone (trimmed by KEEP_FINISHED) is fine
    }
    if (typeof result?.frame !== 'string') throw new Error(`queue job for node ${nodeId} returned no frame`);
    const reply = new Uint8Array(Buffer.from(result.frame, 'base64'));
    this.meter.count(nodeId, 0, reply.length);
    this.servedBy.add(String(result.worker));
    this.trainerKind ||= String(result.trainer);
    return reply;
  }

  traffic() {
    return this.meter.snapshot();
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.queue.close(), this.events.close()]);
  }
}

/** Checks a job's data from Redis before use: it is input like any other. */
function readJob(data: unknown): NodeJob {
  const job = data as Partial<NodeJob> | null;
  if (typeof job !== 'object' || job === null) throw new Error('job data is not an object');
  if (typeof job.setupId !== 'string' || !/^[0-9a-f]{64}$/.test(job.setupId))
    throw new Error('job has no valid setupId');
  if (!Number.isInteger(job.nodeId) || (job.nodeId as number) < 0) throw new Error('job has no valid nodeId');
  if (typeof job.frame !== 'string') throw new Error('job has no frame');
  const setup = resolveOptions(job.setup as ResolvedOptions);
  if (jobSetup(setup).setupId !== job.setupId) throw new Error('job setupId does not match its setup');
  return { setupId: job.setupId, setup, nodeId: job.nodeId as number, frame: job.frame };
}

export interface QueueWorkerOptions {
  redis: string;
  queueName?: string;
  /** Jobs this process runs at once (training is CPU-bound: one per core). */
  concurrency?: number;
}

/**
 * A worker process's loop: takes node jobs, hosts the nodes of each run it sees (keeping the two most
 * recent runs' data), answers with the reply frame. Resolves with a handle to stop it.
 */
export async function startQueueWorker(
  options: QueueWorkerOptions,
): Promise<{ close: () => Promise<void>; worker: string }> {
  const id = `${hostname()}:${process.pid}`;
  const hosts = new Map<string, Promise<{ host: NodeHost; trainerKind: string }>>();
  const hostFor = (job: NodeJob) => {
    let h = hosts.get(job.setupId);
    if (!h) {
      h = prepareRun(job.setup).then((s) =>
        simNodeHost({
          data: s.train,
          parts: s.parts,
          validationFraction: job.setup.validationFraction,
          seed: job.setup.seed,
          spec: s.spec,
          trainer: job.setup.trainer,
          ...(s.nodeAttack ? { attack: s.nodeAttack } : {}),
          ...localDpHost(job.setup),
        }),
      );
      h.catch(() => hosts.delete(job.setupId));
      hosts.set(job.setupId, h);
      while (hosts.size > 2) hosts.delete(hosts.keys().next().value!);
    }
    return h;
  };
  const worker = new Worker(
    options.queueName ?? DEFAULT_QUEUE_NAME_TEXT,
    async (job: Job): Promise<NodeJobResult> => {
      const data = readJob(job.data);
      const { host, trainerKind } = await hostFor(data);
      const reply = await host.handle(new Uint8Array(Buffer.from(data.frame, 'base64')));
      return {
        frame: Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength).toString('base64'),
        worker: id,
        trainer: trainerKind,
      };
    },
    { connection: redisConnection(options.redis), concurrency: options.concurrency ?? 1 },
  );
  await worker.waitUntilReady();
  return { close: () => worker.close(), worker: id };
}
