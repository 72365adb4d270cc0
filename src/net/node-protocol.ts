/**
 * The node protocol: the control messages a coordinator and an edge node exchange (challenge, hello, welcome,
 * configure, heartbeat, error), its version, and the size limits both sides enforce. Both sides import this one
 * module, so the coordinator, the Node.js agent and the browser agent cannot drift apart. BROWSER-SAFE.
 *
 * Connecting: the coordinator speaks first with a fresh random challenge; the node answers with a hello that it
 * signs together with the challenge and everything it declares (name, protocol, resources, tags). A captured
 * hello is worthless on any other connection (the challenge differs, also after a coordinator restart), and a
 * hello whose tags or resources were changed after signing no longer verifies.
 */
import { CHUNK_HEADER_BYTES } from '../core/chunks.js';
import type { ModelSpec } from '../model/spec.js';
import type { NodeResources } from '../node/resources.js';
import { fromHex, nobleCrypto, toHex, type CryptoImpl } from '../core/identity.js';

export const PROTOCOL_VERSION = 2;
/** Largest whole frame (a model update after reassembly); EDGEFED_MAX_FRAME_BYTES lowers it on a coordinator. */
export const MAX_FRAME_BYTES = 256 * 1024 * 1024;
/** Largest chunk payload a sender uses: frames above it always travel in chunks. */
export const MAX_CHUNK_BYTES = 4 * 1024 * 1024;
/** Largest single message after hello: one chunk with its header (bigger frames are chunked). */
export const MAX_MESSAGE_BYTES = MAX_CHUNK_BYTES + CHUNK_HEADER_BYTES;
/** What an unauthenticated peer may send before its hello is accepted, in bytes on the wire. */
export const MAX_HELLO_BYTES = 64 * 1024;
/** A connection that has not said hello within this time is closed. */
export const HELLO_TIMEOUT_MS = 10_000;

/** Close codes the coordinator uses, so a node (or a test) can tell why it was sent away. */
export const CLOSE = {
  noHello: 4000,
  helloFirst: 4001,
  badHello: 4002,
  unauthenticated: 4003,
  /** No heartbeat (and no request in progress) for three heartbeat intervals. */
  heartbeatTimeout: 4004,
  /** The coordinator failed to do its part (e.g. to record the node); the node may retry later. */
  internalError: 1011,
  shuttingDown: 1012,
} as const;

/** What a node declares about itself; the hello signature covers all of it. */
export interface HelloDeclaration {
  name: string;
  resources: NodeResources;
  tags: Record<string, string>;
}

export interface ChallengeMessage {
  type: 'challenge';
  protocol: number;
  /** 32 hex digits, fresh for every connection. */
  challenge: string;
}

export interface HelloMessage extends HelloDeclaration {
  type: 'hello';
  protocol: number;
  /** Ed25519 signature (128 hex digits) over helloSignedBytes; required when the coordinator has auth on. */
  signature?: string;
}

export interface WelcomeMessage {
  type: 'welcome';
  nodeId: number;
  heartbeatMs: number;
  protocol: number;
}

/** The federation's statistics a run scales raw CSV features with: (x - mean) / std, column by column. */
export interface FeatureStandardization {
  columns: string[];
  mean: number[];
  std: number[];
}

export interface ConfigureMessage {
  type: 'configure';
  runId: number;
  spec: ModelSpec;
  /** A federated-standardised run: the node scales its raw training and validation rows with these. */
  standardization?: FeatureStandardization;
}

export interface ErrorMessage {
  type: 'error';
  code: string;
  message: string;
}

export type CoordinatorMessage = ChallengeMessage | WelcomeMessage | ConfigureMessage | ErrorMessage;

export const HEARTBEAT = '{"type":"heartbeat"}';
const HELLO_DOMAIN = 'edgefed-hello-v2';
const enc = new TextEncoder();

/** JSON with object keys sorted at every level: the same value gives the same bytes on both sides. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The bytes a hello signature covers: the connection's challenge and everything the hello declares. */
export function helloSignedBytes(challenge: string, protocol: number, d: HelloDeclaration): Uint8Array {
  return enc.encode(
    `${HELLO_DOMAIN}|${canonicalJson({ challenge, protocol, name: d.name, resources: d.resources, tags: d.tags })}`,
  );
}

/** The hello a node sends in answer to `challenge`, signed when it holds a key (node:crypto in Node, noble in browsers). */
export function makeHello(
  challenge: string,
  d: HelloDeclaration,
  secretKey?: Uint8Array,
  crypto: CryptoImpl = nobleCrypto,
): HelloMessage {
  const hello: HelloMessage = {
    type: 'hello',
    protocol: PROTOCOL_VERSION,
    name: d.name,
    resources: d.resources,
    tags: d.tags,
  };
  if (secretKey) hello.signature = toHex(crypto.sign(helloSignedBytes(challenge, PROTOCOL_VERSION, d), secretKey));
  return hello;
}

/** Whether `hello` carries a valid signature by `publicKey` over this connection's challenge. */
export function verifyHelloSignature(
  challenge: string,
  hello: HelloMessage,
  publicKey: Uint8Array,
  crypto: CryptoImpl = nobleCrypto,
): boolean {
  if (!hello.signature) return false;
  try {
    return crypto.verify(
      fromHex(hello.signature, 64, 'signature'),
      helloSignedBytes(challenge, hello.protocol, hello),
      publicKey,
    );
  } catch {
    return false;
  }
}
