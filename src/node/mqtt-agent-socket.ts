/**
 * A node's link to its coordinator through an MQTT broker, as the AgentSocket the agent already speaks
 * (net/mqtt-envelope.ts has the topics and envelope). The link URL is `mqtt[s]://[user:password@]host:port/
 * <fleet>/<name>`. The broker session is persistent, so what either side publishes while the node is offline
 * waits at the broker (QoS 1), and what the node publishes while the broker is unreachable waits in this
 * client: a node that loses its link mid-training keeps its signed reply and delivers it when the link is back.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import {
  bytesText,
  decodeEnvelope,
  encodeEnvelope,
  mqttTopics,
  SequenceGate,
  textBytes,
  type EnvelopeKind,
} from '../net/mqtt-envelope.js';
import type { AgentSocket, AgentSocketEvents } from './platform.js';

/** Sessions persist at the broker this long after a node drops (MQTT 5 session expiry), in seconds. */
const SESSION_EXPIRY_S = 600;

export function mqttAgentSocket(url: string, maxPayload: number, on: AgentSocketEvents): AgentSocket {
  const u = new URL(url);
  const [fleet, name] = u.pathname.split('/').filter(Boolean);
  const topics = mqttTopics(fleet, name);
  const session = randomBytes(8).toString('hex');
  const inbound = new SequenceGate();
  let seq = 0;
  let opened = false;
  let ended = false;
  const ca = process.env.EDGEFED_MQTT_CA;
  // Loaded here, not at startup: a node on WebSocket never needs the MQTT client.
  const mqtt = createRequire(import.meta.url)('mqtt') as typeof import('mqtt');
  const client = mqtt.connect(`${u.protocol}//${u.host}`, {
    protocolVersion: 5,
    clientId: `edgefed-node-${fleet}-${name}`,
    clean: false,
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
    properties: { sessionExpiryInterval: SESSION_EXPIRY_S, maximumPacketSize: maxPayload + 1024 },
    will: { topic: topics.presence, payload: Buffer.from(`${session}:offline`), qos: 1, retain: false },
    ...(u.username ? { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) } : {}),
    ...(ca ? { ca: readFileSync(ca) } : {}),
  });
  const publish = (kind: EnvelopeKind, payload: Uint8Array, cb?: (err?: Error) => void) => {
    client.publish(
      topics.toCoordinator,
      Buffer.from(encodeEnvelope({ kind, session, seq: seq++, payload })),
      { qos: 1 },
      (err) => cb?.(err ?? undefined),
    );
  };
  const end = () => {
    if (ended) return;
    ended = true;
    client.publish(topics.presence, `${session}:offline`, { qos: 1 }, () => client.end());
    on.close();
  };
  client.on('connect', () => {
    client.publish(topics.presence, `${session}:online`, { qos: 1 });
    if (opened) return; // a reconnect: the same session goes on
    opened = true;
    client.subscribe(topics.toNode, { qos: 1 }, (err) => {
      if (err) return on.error(`MQTT subscribe ${topics.toNode}: ${err.message}`);
      publish('open', new Uint8Array());
      on.open();
    });
  });
  client.on('message', (_topic, payload) => {
    let e;
    try {
      e = decodeEnvelope(new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength));
    } catch {
      return;
    }
    if (e.session !== session || !inbound.accept(e.seq)) return;
    if (e.kind === 'chunk') return on.message(e.payload.slice());
    if (e.kind !== 'control') return;
    const text = bytesText(e.payload);
    if (/^\{"type":"closed"/.test(text)) return end();
    on.message(text);
  });
  client.on('error', (e) => on.error(`MQTT: ${e.message}`));
  // Before the first connection a broker that cannot be reached is a failed connect, as a refused WebSocket is.
  client.on('close', () => {
    if (!opened) {
      client.end(true);
      if (!ended) {
        ended = true;
        on.close();
      }
    }
  });
  return {
    get isOpen() {
      return opened && !ended;
    },
    send: (data, _options, cb) => publish('chunk', data, cb),
    sendText: (text) => publish('control', textBytes(text)),
    close: end,
  };
}
