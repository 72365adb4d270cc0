/**
 * Checks one frame a node sent before anything reads it: is it signed by the node's enrolled key, bound to
 * this node and its run, an answer to the request pending (not a replay of an earlier one), and not for a
 * future round. Pure: no sockets, no clock, no store, so every refusal is tested on bytes alone.
 */
import { FrameError } from '../core/wire.js';
import {
  isSigned,
  nobleCrypto,
  openSignedFrame,
  readSignedFrameUnverified,
  type Binding,
  type CryptoImpl,
} from '../core/identity.js';

export interface FrameCheckContext {
  nodeId: number;
  /** The node's enrolled Ed25519 key; null when it has none (auth off). */
  publicKey: Uint8Array | null;
  /** Auth on: every frame must be signed with the enrolled key. */
  auth: boolean;
  /** The run the node is configured for (a binding must name it). */
  configuredRun: number | null;
  /** The binding of the request this node owes an answer to, if any. */
  pending: Binding | null;
  /** Nonces of replies already accepted from this node. */
  seenNonces: ReadonlySet<string>;
  crypto?: CryptoImpl;
  /** The signature was already checked against publicKey with the same function (the verify pool's thread). */
  signatureChecked?: boolean;
}

export interface VerifiedFrame {
  /** The binding the node signed; null for an unsigned frame (accepted only with auth off). */
  binding: Binding | null;
  /** The inner frame, without binding and signature. */
  frame: Uint8Array;
}

/** The frame's binding and inner frame when it passes every check; FrameError (with a code) otherwise. */
export function verifyNodeFrame(bytes: Uint8Array, ctx: FrameCheckContext): VerifiedFrame {
  let binding: Binding | null = null;
  let frame = bytes;
  if (isSigned(bytes) && ctx.publicKey && ctx.signatureChecked) ({ binding, frame } = readSignedFrameUnverified(bytes));
  else if (isSigned(bytes) && ctx.publicKey)
    ({ binding, frame } = openSignedFrame(bytes, ctx.publicKey, ctx.crypto ?? nobleCrypto));
  else if (isSigned(bytes) && !ctx.auth) ({ binding, frame } = readSignedFrameUnverified(bytes));
  else if (ctx.auth) {
    throw new FrameError(
      isSigned(bytes) ? 'unauthenticated' : 'unsigned',
      "frames must be signed with the node's enrolled key",
    );
  }
  if (!binding) return { binding, frame };
  // A reply to a pending request names that request's run (an analytics pass may ask a node between runs).
  if (binding.node !== ctx.nodeId || binding.run !== (ctx.pending?.run ?? ctx.configuredRun)) {
    throw new FrameError('bad_binding', `frame is bound to node ${binding.node} run ${binding.run}`);
  }
  const pending = ctx.pending;
  if (
    ctx.seenNonces.has(binding.nonce) ||
    (pending && binding.round === pending.round && binding.nonce !== pending.nonce)
  ) {
    throw new FrameError('replayed', `frame answers a request that is not the one pending (round ${binding.round})`);
  }
  if (pending && binding.round > pending.round) {
    throw new FrameError(
      'wrong_round',
      `frame is bound to round ${binding.round}, the pending request is round ${pending.round}`,
    );
  }
  return { binding, frame };
}
