/** A simulation worker thread: hosts every virtual node (sim-host.ts) and answers request frames. */
import { parentPort, workerData } from 'node:worker_threads';
import { simNodeHost, type SimHostData } from './sim-host.js';
import { evaluateRangeReply, type EvalRangeRequest } from './central-eval.js';
import { adoptFrame } from '../core/wire.js';
import { joinParts, type PartsRequest } from './request-parts.js';

export interface SimWorkerData extends SimHostData {
  entry: string;
}

if (parentPort && workerData?.entry) {
  const data = workerData as SimWorkerData;
  const { host, trainerKind, trainer } = await simNodeHost(data);
  const port = parentPort;
  port.on('message', async (msg: { id: number; frame: Uint8Array } | PartsRequest | EvalRangeRequest) => {
    if ('evalRange' in msg) {
      port.postMessage({ evalRange: evaluateRangeReply(trainer, data.test, msg) });
      return;
    }
    // The frame was transferred to this thread, or joined here from its parts: the weights decode as a view into it.
    const frame = 'frame' in msg ? msg.frame : joinParts(msg.head, msg.body);
    const reply = await host.handle(adoptFrame(frame));
    port.postMessage({ id: msg.id, frame: reply }, [reply.buffer as ArrayBuffer]);
  });
  port.postMessage({ ready: true, trainer: trainerKind });
}
