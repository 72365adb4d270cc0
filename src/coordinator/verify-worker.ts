/**
 * A verify-pool worker: checks signed node frames (SHA-256 of the frame, Ed25519 with node:crypto) with the
 * very function the coordinator's thread would use, so both accept and refuse the same bytes. Each batch's
 * buffers come in transferred and go back transferred: no copy either way.
 */
import { parentPort } from 'node:worker_threads';
import { openSignedFrame } from '../core/identity.js';
import { FrameError } from '../core/wire.js';
import { nodeCrypto } from '../net/node-crypto.js';
import type { VerifyJob, VerifyOutcome } from './verify-pool.js';

parentPort!.on('message', (jobs: VerifyJob[]) => {
  const outcomes: VerifyOutcome[] = jobs.map((j) => {
    try {
      openSignedFrame(j.bytes, j.publicKey, nodeCrypto);
      return { id: j.id, bytes: j.bytes, ok: true };
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
parentPort!.postMessage('ready');
