/**
 * Connected nodes: their connection, enrolment data (resources, tags) and liveness. The registry answers
 * "which nodes can take work for this run now", and routes reply frames to whoever awaits them.
 */
import type { NodeConnection } from './node-connection.js';
import type { Binding } from '../core/identity.js';
import type { NodeResources } from '../node/resources.js';

export type { NodeResources };

export interface LiveNode {
  id: number;
  name: string;
  /** Sends frames and control messages to the node, whatever transport carries them. */
  connection: NodeConnection;
  resources: NodeResources;
  tags: Record<string, string>;
  lastSeen: number;
  /** The run whose model the node is configured for. */
  configuredRun: number | null;
  /** The node's enrolled Ed25519 public key (null when it has none and auth is off). */
  publicKey: Uint8Array | null;
  /** Whoever waits for this node's reply: accept() returns false for a frame that is not that reply. */
  waiter: {
    binding: Binding;
    accept(frame: Uint8Array, binding: Binding | null): boolean;
    fail(e: Error): void;
  } | null;
  /** Nonces of replies already accepted from this node (recent), to name replays as such. */
  seenNonces: Set<string>;
}

export interface Selection {
  tags: Record<string, string>;
  minCores?: number;
  minMemoryMb?: number;
  minSamplesPerSecond?: number;
}

export function qualifies(n: Pick<LiveNode, 'resources' | 'tags'>, selection: Selection): boolean {
  for (const [k, v] of Object.entries(selection.tags)) if (n.tags[k] !== v) return false;
  if (selection.minCores !== undefined && (n.resources.cores ?? 0) < selection.minCores) return false;
  if (selection.minMemoryMb !== undefined && (n.resources.memoryMb ?? 0) < selection.minMemoryMb) return false;
  if (
    selection.minSamplesPerSecond !== undefined &&
    (n.resources.samplesPerSecond ?? 0) < selection.minSamplesPerSecond
  )
    return false;
  return true;
}

export class Registry {
  private readonly nodes = new Map<number, LiveNode>();
  private readonly listeners = new Set<() => void>();

  add(node: LiveNode): void {
    const old = this.nodes.get(node.id);
    if (old && old.connection !== node.connection) old.connection.terminate(); // a reconnecting node replaces its old link
    this.nodes.set(node.id, node);
    this.changed();
  }

  remove(id: number, connection: NodeConnection): void {
    const node = this.nodes.get(id);
    if (node?.connection === connection) {
      this.nodes.delete(id);
      node.waiter?.fail(new Error('connection lost'));
      node.waiter = null;
      this.changed();
    }
  }

  get(id: number): LiveNode | undefined {
    return this.nodes.get(id);
  }

  /** Nodes connected now. */
  get size(): number {
    return this.nodes.size;
  }

  all(): LiveNode[] {
    return [...this.nodes.values()].sort((a, b) => a.id - b.id);
  }

  eligible(selection: Selection): number[] {
    return this.all()
      .filter((n) => qualifies(n, selection))
      .map((n) => n.id);
  }

  /** Calls `listener` whenever a node connects or disconnects; returns the unsubscribe. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves when `count` nodes qualify (true), or after timeoutMs or once `signal` aborts (false). */
  async waitFor(selection: Selection, count: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.eligible(selection).length >= count) return true;
    if (signal?.aborted) return false;
    return new Promise((resolve) => {
      const check = () => {
        if (this.eligible(selection).length >= count) done(true);
      };
      const abort = () => done(false);
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        signal?.removeEventListener('abort', abort);
        resolve(ok);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      this.listeners.add(check);
      signal?.addEventListener('abort', abort, { once: true });
    });
  }

  private changed(): void {
    for (const l of [...this.listeners]) l();
  }
}
