/**
 * The read-only live feed: WebSocket /v1/live pushes runs, committed rounds, events and the node table
 * to dashboards as they are committed (messages in live-protocol.ts).
 *
 * Access: it carries what GET /v1/runs, /v1/runs/:id/events and /v1/nodes serve, so it asks for what
 * they ask (LIVE_POLICY): a token with runs:read and nodes:read (or the admin token), or nothing when the
 * coordinator runs with --public-read. Browsers cannot set headers on a WebSocket, so the token may come as
 * a subprotocol `edgefed-token.<token>` beside `edgefed-live` (never in the URL, which logs and proxies
 * keep); other clients may send `Authorization: Bearer <token>`. Records of differentially private runs arrive
 * redacted for every reader but the admin (run-visibility.ts). Because browsers let any page open a
 * WebSocket to any origin, a browser connection must come from the coordinator's own origin (its Origin
 * header must name the Host it connects to); clients without an Origin (curl, scripts) are let in.
 * Clients may not send: a message closes the connection (1008). A client that stops reading (over
 * MAX_BUFFERED_BYTES queued) is dropped rather than buffered without end.
 *
 * Slots: anonymous clients (--public-read) share MAX_LIVE_CLIENTS, at most MAX_LIVE_PER_SOURCE per
 * address. Each token has its own MAX_LIVE_PER_TOKEN; its newest connection always gets in (its oldest is
 * closed), so idle anonymous clients, or a tab left open, can never lock the operator out.
 */
// Before 'ws': lets ws unmask the nodes' frames a word at a time (ws-mask.ts).
import '../net/ws-mask.js';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from 'pino';
import type { Store, StoreChange } from './store.js';
import type { Registry } from './registry.js';
import { LIVE_PROTOCOL, type LiveMessage, type NodeView } from './live-protocol.js';
import { anyDpRun, isDpConfig, visibleEvents, visibleNodes, visibleRound } from './run-visibility.js';
import type { ApiTokens } from './api-tokens.js';
import { bearerOf } from './route-policy.js';

export const MAX_LIVE_CLIENTS = 64;
export const MAX_LIVE_PER_SOURCE = 16;
export const MAX_LIVE_PER_TOKEN = 8;
/** The subprotocol the dashboard speaks; a token rides beside it as `${TOKEN_PROTOCOL_PREFIX}<token>`. */
export const LIVE_SUBPROTOCOL = 'edgefed-live';
export const TOKEN_PROTOCOL_PREFIX = 'edgefed-token.';
export const LIVE_POLICY = { access: 'read', scopes: ['runs:read', 'nodes:read'] } as const;

export interface LiveAccess {
  auth: boolean;
  publicRead: boolean;
  tokens: ApiTokens;
}
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** Node-table pushes are coalesced to at most one per this many ms. */
const NODES_COALESCE_MS = 250;

/** The node table as the API and the feed show it: stored rows, whether connected, freshest last-seen. */
export function nodeViews(store: Store, registry: Registry): NodeView[] {
  return store.listNodes().map((n) => {
    const live = registry.get(n.id);
    return {
      ...n,
      resources: n.resources as NodeView['resources'],
      online: live !== undefined,
      lastSeen: Math.max(n.lastSeen, live?.lastSeen ?? 0),
    };
  });
}

/** The token a live-feed upgrade carries (subprotocol or Authorization header), '' for a malformed one. */
export function liveToken(req: Pick<IncomingMessage, 'headers'>): string | null {
  const offered = String(req.headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .map((p) => p.trim());
  const viaProtocol = offered.find((p) => p.startsWith(TOKEN_PROTOCOL_PREFIX));
  return viaProtocol !== undefined ? viaProtocol.slice(TOKEN_PROTOCOL_PREFIX.length) : bearerOf(req);
}

/** Which slot pool a live-feed upgrade belongs to, or why it may not join. */
export function liveCredential(
  req: Pick<IncomingMessage, 'headers' | 'socket'>,
  access: LiveAccess,
): { key: string; token: boolean } | { status: number; reason: string } {
  const token = liveToken(req);
  if (token !== null) {
    const cred = access.tokens.identify(token);
    if (!cred) return { status: 401, reason: 'the token is unknown, revoked or expired' };
    if (cred.kind === 'token' && !LIVE_POLICY.scopes.every((s) => cred.scopes.includes(s))) {
      return { status: 403, reason: `the live feed needs a token with ${LIVE_POLICY.scopes.join(' and ')}` };
    }
    return { key: cred.kind === 'admin' ? 'admin' : `token:${cred.id}`, token: true };
  }
  if (access.auth && !access.publicRead) {
    return {
      status: 401,
      reason: `the live feed needs a token with ${LIVE_POLICY.scopes.join(' and ')} (subprotocol ${TOKEN_PROTOCOL_PREFIX}<token>)`,
    };
  }
  return { key: `source:${req.socket.remoteAddress ?? '?'}`, token: false };
}

/** Why an upgrade request's origin may not join the feed, or null when it may. */
export function liveRefusal(req: Pick<IncomingMessage, 'headers'>): { status: number; reason: string } | null {
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let host: string | null = null;
    try {
      host = new URL(origin).host;
    } catch {
      // an unparseable Origin is refused below
    }
    if (host === null || host !== req.headers.host)
      return { status: 403, reason: 'cross-origin connections to the live feed are refused' };
  }
  return null;
}

export class LiveFeed {
  private readonly wss = new WebSocketServer({
    noServer: true,
    maxPayload: 1024,
    handleProtocols: (offered) => (offered.has(LIVE_SUBPROTOCOL) ? LIVE_SUBPROTOCOL : false),
  });
  private readonly clients = new Set<WebSocket>();
  /** Open connections per slot key (a token, or an anonymous source), oldest first. */
  private readonly byKey = new Map<string, WebSocket[]>();
  /** Upgrades accepted but not yet joined, per slot key: they hold their slot already. */
  private readonly pending = new Map<string, number>();
  /** Sockets whose upgrade completed (their slot is released when the WebSocket closes). */
  private readonly joined = new WeakSet<Duplex>();
  private anonymous = 0;
  private nodesTimer: NodeJS.Timeout | null = null;
  private readonly refresh: NodeJS.Timeout;
  private readonly unsubscribe: (() => void)[];

  constructor(
    private readonly store: Store,
    private readonly registry: Registry,
    private readonly log: Logger,
    refreshMs: number,
    private readonly access: LiveAccess,
  ) {
    this.unsubscribe = [store.onChange((c) => this.onStoreChange(c)), registry.subscribe(() => this.nodesChanged())];
    // Last-seen times move with heartbeats, which are not store changes: refresh the table now and then.
    this.refresh = setInterval(() => this.clients.size > 0 && this.nodesChanged(), refreshMs);
    this.refresh.unref();
  }

  get size(): number {
    return this.clients.size;
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const slot = liveCredential(req, this.access);
    const held = 'key' in slot ? (this.byKey.get(slot.key)?.length ?? 0) + (this.pending.get(slot.key) ?? 0) : 0;
    const refusal = liveRefusal(req) ?? ('key' in slot ? this.slotRefusal(slot, held) : slot);
    if (refusal) {
      const text = { 401: 'Unauthorized', 403: 'Forbidden' }[refusal.status] ?? 'Service Unavailable';
      socket.end(
        `HTTP/1.1 ${refusal.status} ${text}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${refusal.reason}\n`,
      );
      // The reason only: the upgrade's headers may carry a token.
      this.log.info({ origin: req.headers.origin, reason: refusal.reason }, 'live feed connection refused');
      return;
    }
    const { key, token } = slot as { key: string; token: boolean };
    if (token && held >= MAX_LIVE_PER_TOKEN) this.evictOldest(key);
    if (!token) this.anonymous++;
    this.pending.set(key, (this.pending.get(key) ?? 0) + 1);
    const settle = () => {
      const left = (this.pending.get(key) ?? 1) - 1;
      if (left > 0) this.pending.set(key, left);
      else this.pending.delete(key);
    };
    socket.once('close', () => {
      if (!this.joined.has(socket)) {
        settle();
        if (!token) this.anonymous--;
      }
    });
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.joined.add(socket);
      settle();
      this.join(ws, key, token);
    });
  }

  private evictOldest(key: string): void {
    const oldest = this.byKey.get(key)?.[0];
    if (!oldest) return;
    this.byKey.set(key, this.byKey.get(key)!.slice(1));
    oldest.close(4008, 'replaced by a newer connection with this token');
  }

  private slotRefusal(slot: { key: string; token: boolean }, held: number): { status: number; reason: string } | null {
    if (slot.token) {
      // Room is made by closing this token's oldest open connection; upgrades still in flight cannot be closed.
      const open = this.byKey.get(slot.key)?.length ?? 0;
      return held >= MAX_LIVE_PER_TOKEN && open === 0
        ? { status: 503, reason: 'too many connections with this token at once' }
        : null;
    }
    if (this.anonymous >= MAX_LIVE_CLIENTS)
      return {
        status: 503,
        reason: `the live feed has its maximum of ${MAX_LIVE_CLIENTS} anonymous clients; a read token always gets a slot`,
      };
    if (held >= MAX_LIVE_PER_SOURCE)
      return { status: 503, reason: `at most ${MAX_LIVE_PER_SOURCE} anonymous live-feed clients per address` };
    return null;
  }

  private join(ws: WebSocket, key: string, token: boolean): void {
    this.clients.add(ws);
    const mine = this.byKey.get(key) ?? [];
    mine.push(ws);
    this.byKey.set(key, mine);
    ws.on('message', () => ws.close(1008, 'the live feed is read-only'));
    ws.on('close', () => {
      this.clients.delete(ws);
      const left = (this.byKey.get(key) ?? []).filter((w) => w !== ws);
      if (left.length) this.byKey.set(key, left);
      else this.byKey.delete(key);
      if (!token) this.anonymous--;
    });
    ws.on('error', () => ws.terminate());
    this.send(ws, {
      type: 'snapshot',
      protocol: LIVE_PROTOCOL,
      runs: this.store.listRuns(),
      nodes: this.publicNodes(),
    });
  }

  private onStoreChange(change: StoreChange): void {
    if (change.kind === 'run') this.broadcast({ type: 'run', run: change.run });
    else if (change.kind === 'event')
      for (const event of visibleEvents([change.event], (id) => this.isDpRun(id), 'public'))
        this.broadcast({ type: 'event', event });
    else {
      const record = visibleRound(
        change.record as unknown as Record<string, unknown>,
        this.isDpRun(change.runId),
        'public',
      );
      this.broadcast({
        type: 'round',
        runId: change.runId,
        record: record as unknown as Extract<LiveMessage, { type: 'round' }>['record'],
      });
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

  private broadcast(message: LiveMessage): void {
    if (this.clients.size === 0) return;
    const text = JSON.stringify(message);
    for (const ws of this.clients) this.send(ws, text);
  }

  private send(ws: WebSocket, message: LiveMessage | string): void {
    if (ws.readyState !== ws.OPEN) return;
    if (ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.log.warn({ bufferedBytes: ws.bufferedAmount }, 'live feed client is not reading; dropped');
      ws.terminate();
      return;
    }
    ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  close(): void {
    for (const u of this.unsubscribe) u();
    clearInterval(this.refresh);
    if (this.nodesTimer) clearTimeout(this.nodesTimer);
    for (const ws of this.clients) ws.terminate();
    this.wss.close();
  }
}
