/**
 * A verify-pool worker: checks signed node frames (SHA-256 of the frame, Ed25519 with node:crypto) with the
 * very function the coordinator's thread would use, so both accept and refuse the same bytes. Each batch's
 * buffers come in transferred and go back transferred: no copy either way, except a good frame whose inner frame
 * is not 4-byte aligned, copied here so that the event loop need not (alignedCopy).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openSignedFrame } from '../core/identity.js';
import { FrameError } from '../core/wire.js';
import { nodeCrypto } from '../net/node-crypto.js';
import type { VerifyBatch, VerifyOutcome } from './verify-pool.js';
import { alignedCopy, innerFrameAligned } from './aligned-frame.js';
import { lowerThisThread } from './thread-priority.js';

/** The keys this thread was sent, by keyId (each arrives once, with the first job that needs it). */
const keys = new Map<number, Uint8Array>();

parentPort!.on('message', ({ forget, jobs }: VerifyBatch) => {
  if (forget) keys.clear();
  const outcomes: VerifyOutcome[] = jobs.map((j) => {
    try {
      if (j.key) keys.set(j.keyId, j.key);
      const key = keys.get(j.keyId);
      if (!key) throw new Error(`verify worker has no key ${j.keyId}`);
      openSignedFrame(j.bytes, key, nodeCrypto);
      // Aligned here, off the event loop, so the event loop decodes the update without copying it (alignedCopy).
      return { id: j.id, bytes: innerFrameAligned(j.bytes) ? j.bytes : alignedCopy(j.bytes), ok: true };
    } catch (e) {
      const code = e instanceof FrameError ? e.code : 'bad_frame';
      return { id: j.id, bytes: j.bytes, ok: false, code, message: (e as Error).message };
    }
  });
  parentPort!.postMessage(
    outcomes,
    outcomes.map((outcome) => outcome.bytes.buffer as ArrayBuffer),
  );
});
// Before any work: the event loop's thread keeps the priority it has, this one yields to it (thread-priority.ts).
parentPort!.postMessage(lowerThisThread((workerData as { nice: number }).nice, 'edgefed-verify'));
