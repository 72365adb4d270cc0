/**
 * What the edge-node agent needs from its runtime, so that one agent (agent-core.ts) runs in Node.js
 * (platform-node.ts: the `ws` package, node:os, the native/WASM/tfjs trainer picker) and in a browser tab
 * (platform-browser.ts: the browser's WebSocket, navigator, the engine on WASM kernels).
 * Timers and crypto.getRandomValues are globals in both and need no abstraction. BROWSER-SAFE.
 */
import type { ModelSpec } from '../model/spec.js';
import type { LocalTrainer } from '../model/trainer.js';
import type { ChunkSocket } from '../net/frame-link.js';
import type { NodeResources } from './resources.js';
import type { CryptoImpl } from '../core/identity.js';

/** An open (or opening) WebSocket to the coordinator, as the agent uses it. */
export interface AgentSocket extends ChunkSocket {
  readonly isOpen: boolean;
  sendText(text: string): void;
  close(): void;
}

/** Socket events; a binary message arrives as bytes the agent may keep, a text message as a string. */
export interface AgentSocketEvents {
  open(): void;
  message(data: Uint8Array | string): void;
  close(): void;
  error(message: string): void;
}

/** A request's method, headers and text body: the part of fetch's RequestInit the agent uses. */
export interface HttpInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

/** What the agent reads of an HTTP response (a fetch Response has these members). */
export interface HttpResponse {
  status: number;
  json(): Promise<unknown>;
  arrayBuffer(): Promise<ArrayBuffer>;
}

export interface AgentPlatform {
  /** Opens a WebSocket to `url` that accepts messages up to maxPayload bytes. */
  connect(url: string, maxPayload: number, on: AgentSocketEvents): AgentSocket;
  /** A trainer for the run's model on this device. */
  makeTrainer(spec: ModelSpec): Promise<LocalTrainer>;
  /** The device part of the resources report: cores, memory (MB, when known) and a platform label. */
  device(): Pick<NodeResources, 'cores' | 'memoryMb' | 'platform'>;
  /** Ed25519 and sha256 for the hello and signed replies: node:crypto in Node, noble in browsers. */
  crypto?: CryptoImpl;
  /** The agent's HTTP calls (enrolment, the bandwidth probe); absent: the global fetch. */
  fetch?(url: URL, init?: HttpInit): Promise<HttpResponse>;
}
