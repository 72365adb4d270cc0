/** A simulation worker thread: hosts every virtual node (sim-host.ts) and answers request frames. */
import { parentPort, workerData } from 'node:worker_threads';
import { simNodeHost, type SimHostData } from './sim-host.js';

export interface SimWorkerData extends SimHostData {
  entry: string;
}

if (parentPort && workerData?.entry) {
  const { host, trainerKind } = await simNodeHost(workerData as SimWorkerData);
  const port = parentPort;
  port.on('message', async (msg: { id: number; frame: Uint8Array }) => {
    const reply = await host.handle(msg.frame);
    port.postMessage({ id: msg.id, frame: reply }, [reply.buffer as ArrayBuffer]);
  });
  port.postMessage({ ready: true, trainer: trainerKind });
}
