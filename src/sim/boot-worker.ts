/**
 * Starting a worker thread the one way this library does: the entry module is resolved beside its caller (the .ts
 * in a checkout, run through tsx; the .js in the built library), loaded through boot.mjs (which registers tsx
 * first: Node 20 workers do not inherit the main thread's loader), and the caller waits for the worker's first
 * message (its "ready", or its one answer). It lives beside boot.mjs so both resolve the same way from src/ and
 * dist/. NODE-ONLY (worker_threads).
 */
import { Worker, type ResourceLimits, type TransferListItem } from 'node:worker_threads';

/** The URL of worker module `name` (no extension) beside the module at `callerUrl` (its import.meta.url). */
export function workerEntry(name: string, callerUrl: string): string {
  return new URL(`./${name}.${callerUrl.endsWith('.ts') ? 'ts' : 'js'}`, callerUrl).href;
}

/**
 * Starts `entry` (from workerEntry) in a worker thread through boot.mjs; `data` reaches it as workerData beside
 * `entry`, and `transferList` moves ports or buffers in it rather than copying them. `resourceLimits` sizes the
 * worker's V8 heap (Node's defaults without).
 */
export function bootWorker(
  entry: string,
  data: object = {},
  transferList?: TransferListItem[],
  resourceLimits?: ResourceLimits,
): Worker {
  return new Worker(new URL('./boot.mjs', import.meta.url), {
    workerData: { ...data, entry },
    ...(transferList ? { transferList } : {}),
    ...(resourceLimits ? { resourceLimits } : {}),
  });
}

/**
 * The worker's first message. Rejects when the worker fails or exits before sending one (`what` names it in the
 * error), so a worker that dies while starting never leaves its caller waiting.
 */
export function firstMessage<T>(worker: Worker, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onMessage = (message: T) => {
      settle();
      resolve(message);
    };
    const onError = (e: Error) => {
      settle();
      reject(new Error(`${what} failed while starting: ${e.message}`, { cause: e }));
    };
    const onExit = (code: number) => {
      settle();
      reject(new Error(`${what} exited (code ${code}) before it was ready`));
    };
    const settle = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
}
