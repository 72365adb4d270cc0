// Worker threads do not inherit the main thread's TypeScript loader on Node 20: register tsx here,
// then load the real worker named in workerData (worker.ts in a checkout; the built library names worker.js).
import { workerData } from 'node:worker_threads';
if (workerData.entry.endsWith('.ts')) {
  const { register } = await import('tsx/esm/api');
  register();
}
await import(workerData.entry);
