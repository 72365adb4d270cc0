/**
 * The MQTT adapter of NodeConnection: the coordinator is one client of the fleet's broker, and each node link
 * (a node's session, see net/mqtt-envelope.ts) becomes a NodeConnection that the same node session code serves
 * as a WebSocket would. Nodes on WebSocket and on MQTT can take part in one run.
 *
 * Trust does not come from the broker: frames are checked against the node's enrolled key as over WebSocket,
 * so a frame another client publishes on a node's topic fails its signature and is refused; a hello must name
 * the node whose topic carries it. The broker's own ACLs are a second wall, not the first. Until a hello is
 * accepted a session may send MAX_HELLO_BYTES; the client asks the broker for nothing larger than one chunk.
 *
 * Links come and go: when the coordinator's broker connection drops, sessions stay open and messages queue in
 * the client (QoS 1) until it is back; a node's last will closes its session only when no request waits on it,
 * so a node that loses its link mid-training can still deliver its reply within the round's deadline.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { FrameLink } from '../net/frame-link.js';
import { FrameError } from '../core/wire.js';
import { CHUNK_HEADER_BYTES } from '../core/chunks.js';
import { concatBytes } from '../core/concat.js';
import { MAX_HELLO_BYTES, MAX_MESSAGE_BYTES, type CoordinatorMessage } from '../net/node-protocol.js';
import {
  bytesText,
  checkTopicLevel,
  coordinatorSubscriptions,
  decodeEnvelope,
  encodeEnvelope,
  ENVELOPE_HEADER_BYTES,
  mqttTopics,
  parseNodeTopic,
  SequenceGate,
  textBytes,
  type Envelope,
} from '../net/mqtt-envelope.js';
import type { CloseCause, NodeConnection, NodeConnectionEvents, NodeIdentity } from './node-connection.js';

export interface MqttEndpointOptions {
  /** mqtt://host:port or mqtts://host:port (user:password@ in the URL, or below). */
  url: string;
  fleet: string;
  username?: string;
  password?: string;
  /** PEM CA certificate(s) to trust for mqtts (besides the system's). */
  ca?: string;
  /** Chunk size for frames to nodes: keep it under the broker's message size limit. */
  chunkBytes: number;
  maxFrameBytes: number;
  log: Logger;
}

/** Close codes as over WebSocket, sent to the node as a control message before its session is dropped. */
const CLOSED_TEXT = (code: number, reason: string) => JSON.stringify({ type: 'closed', code, reason });

export class MqttNodeEndpoint {
  private readonly client: MqttClient;
  private readonly sessions = new Map<string, MqttNodeConnection>();

  private constructor(
    private readonly options: MqttEndpointOptions,
    private readonly open: (connection: NodeConnection) => NodeConnectionEvents,
    client: MqttClient,
  ) {
    this.client = client;
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
    client.on('offline', () =>
      options.log.warn({ broker: options.url }, 'MQTT broker unreachable: node sessions kept, messages queued'),
    );
    client.on('reconnect', () => options.log.info({ broker: options.url }, 'reconnecting to the MQTT broker'));
    client.on('error', (e) => options.log.warn({ broker: options.url, err: e.message }, 'MQTT client error'));
  }

  /** Connects to the broker and subscribes to the fleet's node topics; fails with the broker's reason. */
  static async start(
    options: MqttEndpointOptions,
    open: (connection: NodeConnection) => NodeConnectionEvents,
  ): Promise<MqttNodeEndpoint> {
    checkTopicLevel('--fleet', options.fleet);
    const clientOptions: IClientOptions = {
      protocolVersion: 5,
      clientId: `edgefed-coordinator-${options.fleet}-${Math.random().toString(16).slice(2, 10)}`,
      clean: true,
      reconnectPeriod: 500,
      connectTimeout: 10_000,
      resubscribe: true,
      // Nothing larger than one chunk (and its envelope) is ever delivered to the coordinator.
      properties: { maximumPacketSize: MAX_MESSAGE_BYTES + ENVELOPE_HEADER_BYTES + 1024 },
      ...(options.username !== undefined ? { username: options.username } : {}),
      ...(options.password !== undefined ? { password: options.password } : {}),
      ...(options.ca ? { ca: options.ca } : {}),
    };
    const client = await mqtt.connectAsync(options.url, clientOptions, false).catch((e: Error) => {
      throw new Error(`--mqtt ${redact(options.url)}: cannot connect to the broker (${e.message})`);
    });
    const endpoint = new MqttNodeEndpoint(options, open, client);
    await client.subscribeAsync(coordinatorSubscriptions(options.fleet), { qos: 1 });
    options.log.info({ broker: redact(options.url), fleet: options.fleet }, 'serving nodes over MQTT');
    return endpoint;
  }

  private onMessage(topic: string, payload: Buffer): void {
    const where = parseNodeTopic(this.options.fleet, topic);
    if (!where) return;
    const bytes = new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
    if (where.kind === 'presence') return this.presence(where.name, bytesText(bytes));
    let envelope: Envelope;
    try {
      envelope = decodeEnvelope(bytes);
    } catch (err) {
      this.options.log.warn({ node: where.name, err: (err as Error).message }, 'dropped a malformed MQTT message');
      return;
    }
    const current = this.sessions.get(where.name);
    if (envelope.kind === 'open') {
      if (current?.session === envelope.session) return; // a QoS 1 repeat of the open that started it
      current?.end({ by: 'node', code: 0, reason: 'replaced by a new session' });
      const conn = new MqttNodeConnection(
        this,
        where.name,
        envelope.session,
        this.options.maxFrameBytes,
        this.options.chunkBytes,
      );
      this.sessions.set(where.name, conn);
      conn.start(this.open(conn));
      return;
    }
    // What an earlier link left in flight, or a message for no open session, has no one to go to.
    if (current?.session !== envelope.session) return;
    current.receive(envelope);
  }

  /** `<session>:online|offline`; the will says offline. A node busy on a request keeps its session. */
  private presence(name: string, text: string): void {
    const [session, state] = text.split(':');
    const conn = this.sessions.get(name);
    if (!conn || conn.session !== session) return;
    conn.linkUp = state === 'online';
    if (state === 'offline') conn.onOffline();
  }

  publish(name: string, envelope: Envelope): void {
    this.client.publish(
      mqttTopics(this.options.fleet, name).toNode,
      Buffer.from(encodeEnvelope(envelope)),
      { qos: 1 },
      (err) => {
        if (err) this.options.log.warn({ node: name, err: err.message }, 'MQTT publish failed');
      },
    );
  }

  forget(conn: MqttNodeConnection): void {
    if (this.sessions.get(conn.name) === conn) this.sessions.delete(conn.name);
  }

  get log(): Logger {
    return this.options.log;
  }

  async close(): Promise<void> {
    for (const conn of [...this.sessions.values()]) conn.terminate();
    await this.client.endAsync().catch(() => undefined);
  }
}

class MqttNodeConnection implements NodeConnection {
  identity: NodeIdentity | null = null;
  linkUp = true;
  private events: NodeConnectionEvents | null = null;
  private readonly inbound = new SequenceGate();
  private outSeq = 0;
  private unauthenticatedBytes = 0;
  private authenticatedNow = false;
  private closed = false;
  private readonly link: FrameLink;

  constructor(
    private readonly endpoint: MqttNodeEndpoint,
    readonly name: string,
    readonly session: string,
    private readonly maxFrameBytes: number,
    chunkBytes: number,
  ) {
    this.link = new FrameLink(
      { send: (data, _options, cb) => this.send('chunk', data, cb) },
      maxFrameBytes,
      chunkBytes,
    );
  }

  get remote(): string {
    return `mqtt:${this.name}#${this.session.slice(0, 6)}`;
  }

  start(events: NodeConnectionEvents): void {
    this.events = events;
  }

  receive(envelope: Envelope): void {
    if (this.closed || !this.events || !this.inbound.accept(envelope.seq)) return;
    if (!this.authenticatedNow) {
      this.unauthenticatedBytes += envelope.payload.length + ENVELOPE_HEADER_BYTES;
      if (this.unauthenticatedBytes > MAX_HELLO_BYTES) return this.terminate();
    }
    if (envelope.kind === 'control') {
      const text = bytesText(envelope.payload);
      if (!this.identity && !this.namesThisTopic(text)) {
        this.endpoint.log.warn(
          { topic: this.name, remote: this.remote },
          "refused a hello published on another node's topic",
        );
        this.events.invalid('wrong_topic', `a hello on ${this.name}'s topic must name ${this.name}`);
        return this.close(4002, 'hello names another node');
      }
      return this.events.control(text);
    }
    if (envelope.kind !== 'chunk') return;
    let frame: Uint8Array | null;
    try {
      frame = this.link.receive(envelope.payload);
      if (frame && frame.length > this.maxFrameBytes)
        throw new FrameError('too_large', `frame of ${frame.length} bytes exceeds the limit of ${this.maxFrameBytes}`);
    } catch (err) {
      return this.events.invalid(err instanceof FrameError ? err.code : 'bad_frame', (err as Error).message);
    }
    if (frame) this.events.frame(frame);
  }

  /** A hello must declare the name its topic carries: the topic is how replies find the node. */
  private namesThisTopic(text: string): boolean {
    try {
      const m = JSON.parse(text) as { type?: unknown; name?: unknown };
      return m.type !== 'hello' || m.name === this.name;
    } catch {
      return true; // not JSON: the session refuses it as a bad hello
    }
  }

  onOffline(): void {
    // A node busy on a request may be back before the round's deadline; the deadline bounds the wait.
    if (this.identity === null) this.end({ by: 'node', code: 1006, reason: 'link offline' });
  }

  private send(kind: 'control' | 'chunk', payload: Uint8Array, cb?: (err?: Error) => void): void {
    if (this.closed) return cb?.(new Error('session closed'));
    this.endpoint.publish(this.name, { kind, session: this.session, seq: this.outSeq++, payload });
    cb?.();
  }

  sendFrame(frame: Uint8Array, onError?: (e: Error) => void): void {
    this.link.send(frame, onError);
  }

  /** An MQTT message is one buffer: the parts are joined. */
  sendFrameParts(parts: readonly Uint8Array[], onError?: (e: Error) => void): void {
    this.link.send(concatBytes(parts), onError);
  }

  sendControl(message: CoordinatorMessage): void {
    this.send('control', textBytes(JSON.stringify(message)));
  }

  authenticated(): void {
    this.authenticatedNow = true;
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.send('control', textBytes(CLOSED_TEXT(code, reason)));
    this.end({ by: 'coordinator', code, reason });
  }

  terminate(): void {
    this.end({ by: 'coordinator', code: 0, reason: 'terminated' });
  }

  /** Ends the session once, telling the session why. */
  end(cause: CloseCause): void {
    if (this.closed) return;
    this.closed = true;
    this.link.reset();
    this.endpoint.forget(this);
    this.events?.closed(cause);
  }
}

/** The broker URL without its password, for logs and errors. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}

export const MQTT_DEFAULT_CHUNK_BYTES = 256 * 1024;
export const mqttChunkBytes = (limit?: number) =>
  Math.max(1024, Math.min(limit ?? MQTT_DEFAULT_CHUNK_BYTES, MAX_MESSAGE_BYTES - CHUNK_HEADER_BYTES));
