/**
 * The read-only live feed: WebSocket /v1/live pushes runs, committed rounds, events and the node table
 * to dashboards as they are committed (messages in live-protocol.ts).
 *
 * Access: it carries exactly what the unauthenticated GET routes (/v1/runs, /v1/runs/:id/events,
 * /v1/nodes) serve to readers without the admin token, so it asks for no token, like them: records of
 * differentially private runs arrive redacted (run-visibility.ts). Because browsers let any page open a
 * WebSocket to any origin, a browser connection must come from the coordinator's own origin (its Origin
 * header must name the Host it connects to); clients without an Origin (curl, scripts) are let in.
 * Clients may not send: a message closes the connection (1008). At most MAX_LIVE_CLIENTS at once, and a
 * client that stops reading (over MAX_BUFFERED_BYTES queued) is dropped rather than buffered without end.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from 'pino';
import type { Store, StoreChange } from './store.js';
import type { Registry } from './registry.js';
import { LIVE_PROTOCOL, type LiveMessage, type NodeView } from './live-protocol.js';
import { anyDpRun, isDpConfig, visibleEvents, visibleNodes, visibleRound } from './run-visibility.js';

export const MAX_LIVE_CLIENTS = 64;
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** Node-table pushes are coalesced to at most one per this many ms. */
const NODES_COALESCE_MS = 250;

/** The node table as the API and the feed show it: stored rows, whether connected, freshest last-seen. */
export function nodeViews(store: Store, registry: Registry): NodeView[] {
  return store.listNodes().map((n) => {
    const live = registry.get(n.id);
    return { ...n, resources: n.resources as NodeView['resources'], online: live !== undefined, lastSeen: Math.max(n.lastSeen, live?.lastSeen ?? 0) };
  });
}

/** Why an upgrade request may not join the feed, or null when it may. */
export function liveRefusal(req: Pick<IncomingMessage, 'headers'>, clients: number): { status: number; reason: string } | null {
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let host: string | null = null;
    try {
      host = new URL(origin).host;
    } catch {
      // an unparseable Origin is refused below
    }
    if (host === null || host !== req.headers.host) return { status: 403, reason: 'cross-origin connections to the live feed are refused' };
  }
  if (clients >= MAX_LIVE_CLIENTS) return { status: 503, reason: `the live feed has its maximum of ${MAX_LIVE_CLIENTS} clients` };
  return null;
}

export class LiveFeed {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 1024 });
  private readonly clients = new Set<WebSocket>();
  private nodesTimer: NodeJS.Timeout | null = null;
  private readonly refresh: NodeJS.Timeout;
  private readonly unsubscribe: (() => void)[];

  constructor(private readonly store: Store, private readonly registry: Registry, private readonly log: Logger, refreshMs: number) {
    this.unsubscribe = [store.onChange((c) => this.onStoreChange(c)), registry.subscribe(() => this.nodesChanged())];
    // Last-seen times move with heartbeats, which are not store changes: refresh the table now and then.
    this.refresh = setInterval(() => this.clients.size > 0 && this.nodesChanged(), refreshMs);
    this.refresh.unref();
  }

  get size(): number {
    return this.clients.size;
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const refusal = liveRefusal(req, this.clients.size);
    if (refusal) {
      socket.end(`HTTP/1.1 ${refusal.status} ${refusal.status === 403 ? 'Forbidden' : 'Service Unavailable'}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${refusal.reason}\n`);
      this.log.info({ origin: req.headers.origin, reason: refusal.reason }, 'live feed connection refused');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.join(ws));
  }

  private join(ws: WebSocket): void {
    this.clients.add(ws);
    ws.on('message', () => ws.close(1008, 'the live feed is read-only'));
    ws.on('close', () => this.clients.delete(ws));
    ws.on('error', () => ws.terminate());
    this.send(ws, { type: 'snapshot', protocol: LIVE_PROTOCOL, runs: this.store.listRuns(), nodes: this.publicNodes() });
  }

  private onStoreChange(c: StoreChange): void {
    if (c.kind === 'run') this.broadcast({ type: 'run', run: c.run });
    else if (c.kind === 'event') for (const event of visibleEvents([c.event], (id) => this.isDpRun(id), 'public')) this.broadcast({ type: 'event', event });
    else {
      const record = visibleRound(c.record as unknown as Record<string, unknown>, this.isDpRun(c.runId), 'public');
      this.broadcast({ type: 'round', runId: c.runId, record: record as unknown as Extract<LiveMessage, { type: 'round' }>['record'] });
      this.nodesChanged(); // rounds contributed and bytes moved
    }
  }

  private nodesChanged(): void {
    if (this.nodesTimer || this.clients.size === 0) return;
    this.nodesTimer = setTimeout(() => {
      this.nodesTimer = null;
      if (this.clients.size > 0) this.broadcast({ type: 'nodes', nodes: this.publicNodes() });
    }, NODES_COALESCE_MS);
  }

  private isDpRun(runId: number): boolean {
    return isDpConfig(this.store.getRun(runId)?.config);
  }

  /** The feed is for readers without the admin token (run-visibility.ts). */
  private publicNodes(): NodeView[] {
    return visibleNodes(nodeViews(this.store, this.registry), anyDpRun(this.store), 'public') as NodeView[];
  }

  private broadcast(m: LiveMessage): void {
    if (this.clients.size === 0) return;
    const text = JSON.stringify(m);
    for (const ws of this.clients) this.send(ws, text);
  }

  private send(ws: WebSocket, m: LiveMessage | string): void {
    if (ws.readyState !== ws.OPEN) return;
    if (ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.log.warn({ bufferedBytes: ws.bufferedAmount }, 'live feed client is not reading; dropped');
      ws.terminate();
      return;
    }
    ws.send(typeof m === 'string' ? m : JSON.stringify(m));
  }

  close(): void {
    for (const u of this.unsubscribe) u();
    clearInterval(this.refresh);
    if (this.nodesTimer) clearTimeout(this.nodesTimer);
    for (const ws of this.clients) ws.terminate();
    this.wss.close();
  }
}
