/**
 * One node's session on the coordinator, over any NodeConnection: challenge, hello (validated, signature
 * checked against the enrolled key), registration, then verified frames routed to the request that awaits
 * them. Transport-neutral: the WebSocket adapter feeds it today, an MQTT adapter can tomorrow.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Logger } from 'pino';
import { fromHex, isSigned, toHex } from '../core/identity.js';
import { FrameError, readableFrame } from '../core/wire.js';
import { nodeCrypto } from '../net/node-crypto.js';
import { CLOSE, HEARTBEAT, HELLO_TIMEOUT_MS, PROTOCOL_VERSION, verifyHelloSignature } from '../net/node-protocol.js';
import { verifyNodeFrame } from './frame-verifier.js';
import type { NodeConnection, NodeConnectionEvents } from './node-connection.js';
import { disconnectLabel } from './disconnects.js';
import { stallAwareTimeout } from './loop-stall.js';
import type { VerifyPool } from './verify-pool.js';
import type { LiveNode, Registry } from './registry.js';
import type { RunManager } from './run-manager.js';
import type { Store } from './store.js';
import type { HelloBatcher } from './hello-batch.js';
import type { CoordinatorMetrics } from './metrics.js';

const HelloSchema = z
  .object({
    type: z.literal('hello'),
    protocol: z.literal(PROTOCOL_VERSION),
    name: z
      .string()
      .min(1)
      .max(128)
      .regex(/^[A-Za-z0-9_.:-]+$/),
    resources: z
      .object({
        cores: z.number().int().min(0).max(4096).optional(),
        memoryMb: z.number().min(0).max(1e9).optional(),
        samplesPerSecond: z.number().min(0).max(1e12).optional(),
        bandwidthMbps: z.number().min(0).max(1e6).optional(),
        powerClass: z.string().max(32).optional(),
        examples: z.number().int().min(0).optional(),
        platform: z.string().max(64).optional(),
        /** Examples per class (opt-in, `edgefed node --share-labels`): the dashboard's label histogram. */
        labelCounts: z.array(z.number().int().min(0).max(1e12)).max(1000).optional(),
      })
      .strict(),
    tags: z
      .record(z.string().max(64), z.string().max(256))
      .refine((t) => Object.keys(t).length <= 32, 'at most 32 tags'),
    /** Ed25519 over the connection's challenge and everything above (node-protocol.ts); required with auth on. */
    signature: z
      .string()
      .regex(/^[0-9a-f]{128}$/)
      .optional(),
  })
  .strict();

const ControlSchema = z.discriminatedUnion('type', [z.object({ type: z.literal('heartbeat') }).strict()]);

export interface NodeSessionDeps {
  store: Store;
  /** Commits enrolments in groups (hello-batch.ts): the welcome follows the commit. */
  hellos: HelloBatcher;
  registry: Registry;
  runs: RunManager;
  metrics: CoordinatorMetrics;
  log: Logger;
  auth: boolean;
  heartbeatMs: number;
  /** False once the coordinator is shutting down: new sessions are sent away. */
  accepting: () => boolean;
  /** Worker threads that check frame signatures off the event loop; null: check them here (verify-pool.ts). */
  verifyPool?: () => VerifyPool | null;
}

/** Starts a session on a new connection (sends the challenge) and returns what the adapter calls. */
export function openNodeSession(conn: NodeConnection, deps: NodeSessionDeps): NodeConnectionEvents {
  let node: LiveNode | null = null;
  /** A hello was accepted and its enrolment awaits its commit (no welcome yet). */
  let enrolling = false;
  /** The connection closed. */
  let gone = false;
  const challenge = toHex(new Uint8Array(randomBytes(16)));
  // Counted only while the loop is free to read the hello: a stalled coordinator does not time out its nodes.
  const helloTimer = stallAwareTimeout(HELLO_TIMEOUT_MS, () => conn.close(CLOSE.noHello, 'no hello'));
  const reject = (code: string, message: string) => {
    const runId = node?.configuredRun ?? null;
    deps.log.warn({ nodeId: node?.id, node: node?.name, runId, code, message }, 'rejected node message');
    deps.metrics.rejected(code);
    if (node)
      deps.store.recordEvent(runId !== null && deps.store.getRun(runId) ? runId : null, 'rejected', {
        nodeId: node.id,
        code,
        message,
      });
    conn.sendControl({ type: 'error', code, message });
  };
  if (!deps.accepting()) {
    helloTimer.stop();
    conn.close(CLOSE.shuttingDown, 'coordinator shutting down');
  } else {
    conn.sendControl({ type: 'challenge', protocol: PROTOCOL_VERSION, challenge });
  }

  const hello = (text: string): void => {
    let h: z.output<typeof HelloSchema>;
    try {
      h = HelloSchema.parse(JSON.parse(text));
    } catch (e) {
      reject('bad_hello', (e as Error).message.slice(0, 300));
      return conn.close(CLOSE.badHello, 'bad hello');
    }
    const keyHex = deps.store.nodeKey(h.name);
    const publicKey = keyHex ? fromHex(keyHex, 32, 'public key') : null;
    if (deps.auth && (!publicKey || !verifyHelloSignature(challenge, h, publicKey, nodeCrypto))) {
      const message = publicKey
        ? "hello signature does not verify over this connection's challenge and what the hello declares"
        : 'node is not enrolled: POST /v1/enroll with a join token first';
      deps.store.recordEvent(null, 'rejected', { name: h.name, code: 'unauthenticated', message });
      reject('unauthenticated', message);
      return conn.close(CLOSE.unauthenticated, 'unauthenticated');
    }
    helloTimer.stop();
    enrolling = true;
    deps.hellos.enrol(h.name, { resources: h.resources, tags: h.tags }).then(
      (id) => {
        enrolling = false;
        if (gone) return; // closed while its enrolment was being committed: it is a known node, not a live one
        node = {
          id,
          name: h.name,
          connection: conn,
          publicKey,
          resources: h.resources,
          tags: h.tags,
          lastSeen: Date.now(),
          configuredRun: null,
          waiter: null,
          seenNonces: new Set(),
        };
        conn.identity = { nodeId: id, name: h.name, publicKey };
        conn.authenticated();
        deps.registry.add(node);
        conn.sendControl({ type: 'welcome', nodeId: id, heartbeatMs: deps.heartbeatMs, protocol: PROTOCOL_VERSION });
        deps.log.info({ nodeId: id, name: h.name, tags: h.tags }, 'node enrolled');
      },
      (e: Error) => {
        enrolling = false;
        deps.log.error({ name: h.name, err: e.message }, 'node could not be enrolled');
        if (!gone) conn.close(CLOSE.internalError, 'the coordinator could not record the node');
      },
    );
  };

  // Set once a frame went to the verify pool: from then on this node's frames are handled in one queue.
  let inOrder: Promise<void> | null = null;
  const handleFrame = (node: LiveNode, bytes: Uint8Array, signatureChecked: boolean): void => {
    let verified;
    try {
      verified = verifyNodeFrame(bytes, {
        nodeId: node.id,
        publicKey: node.publicKey,
        auth: deps.auth,
        configuredRun: node.configuredRun,
        pending: node.waiter?.binding ?? null,
        seenNonces: node.seenNonces,
        crypto: nodeCrypto,
        signatureChecked,
      });
    } catch (e) {
      return reject(e instanceof FrameError ? e.code : 'bad_frame', (e as Error).message);
    }
    // Bytes back from the verify pool's thread are this session's alone; the socket's are copied once.
    const frame = readableFrame(verified.frame, signatureChecked);
    // Routing reads the frame's header: whatever a hostile header makes it throw is this node's bad frame, never an
    // exception out of the socket's handler (which would end the coordinator).
    try {
      if (node.waiter?.accept(frame, verified.binding)) return;
      if (node.configuredRun !== null) deps.runs.late(node.configuredRun, node.id, frame);
      else reject('unexpected_frame', 'no request is waiting for this frame');
    } catch (e) {
      reject('bad_frame', (e as Error).message);
    }
  };

  return {
    control(text) {
      if (!node && enrolling) return reject('bad_message', 'wait for the welcome: the hello is being recorded');
      if (!node) return hello(text);
      node.lastSeen = Date.now();
      // The one control message a node sends every few seconds (2,000 a second at 10,000 nodes), as nodes send it.
      if (text === HEARTBEAT) return;
      try {
        ControlSchema.parse(JSON.parse(text));
        // lastSeen lives in the registry; the store gets it in one batched write per heartbeat interval.
      } catch (e) {
        reject('bad_message', (e as Error).message.slice(0, 300));
      }
    },
    frame(bytes) {
      if (!node) return conn.close(CLOSE.helloFirst, 'hello first');
      node.lastSeen = Date.now();
      const pool = deps.verifyPool?.() ?? null;
      if (!pool && inOrder === null) return handleFrame(node, bytes, false);
      // Off the loop: the signature is checked in a worker, the rest here once it answers, in arrival order.
      const key = node.publicKey;
      const checked = pool && key && isSigned(bytes) ? pool.verify(bytes, key) : null;
      const sender = node;
      inOrder = (inOrder ?? Promise.resolve()).then(async () => {
        if (!checked) return handleFrame(sender, bytes, false);
        const outcome = await checked;
        deps.metrics.verifiedOffThread();
        if (outcome.ok) handleFrame(sender, outcome.bytes, true);
        else reject(outcome.code, outcome.message);
      });
    },
    invalid(code, message) {
      if (!node) return conn.close(CLOSE.helloFirst, 'hello first');
      node.lastSeen = Date.now();
      reject(code, message);
    },
    closed(cause) {
      gone = true;
      helloTimer.stop();
      const label = disconnectLabel(cause);
      deps.metrics.disconnected(label);
      if (node) {
        deps.registry.remove(node.id, conn);
        // The coordinator cutting a node (timeouts, refusals) or a socket error is worth a warning; a node going is not.
        const expected = ['node_closed', 'connection_lost', 'node_replaced', 'shutting_down'].includes(label);
        deps.log[expected ? 'info' : 'warn']({ nodeId: node.id, cause: label, detail: cause }, 'node disconnected');
      }
    },
  };
}
