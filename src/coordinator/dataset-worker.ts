/**
 * Loads one dataset spec's test split in a worker thread (datasets.ts, DatasetCatalog.prepare): decoding
 * MNIST's IDX files takes about a second of CPU, which on the coordinator's thread would hold every
 * heartbeat, /healthz and node frame while a run starts. The split's arrays come back transferred, not copied.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadDatasetSpec } from '../data/load.js';
import type { Dataset } from '../data/types.js';
import { lowerThisThread } from './thread-priority.js';

const { spec, nice } = workerData as { spec: string; nice: number };
// The event loop keeps its priority; a refusal only means this load competes with it, as it did before.
lowerThisThread(nice, 'edgefed-dataset');
try {
  const test: Dataset = loadDatasetSpec(spec).test;
  const buffers = new Set<ArrayBuffer>([test.x.buffer as ArrayBuffer, test.y.buffer as ArrayBuffer]);
  parentPort!.postMessage({ ok: true, test }, [...buffers]);
} catch (e) {
  parentPort!.postMessage({ ok: false, message: (e as Error).message });
}
