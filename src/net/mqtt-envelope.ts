/**
 * Node protocol messages over an MQTT broker. A node's link is a pair of topics,
 * `edgefed/<fleet>/nodes/<name>/out` (node -> coordinator) and `.../in` (coordinator -> node), plus
 * `edgefed/<fleet>/presence/<name>` (online, and the broker's last will: offline). Every message is an
 * envelope: kind (u8), the node's session id (8 bytes, fresh for each link the node opens), a sequence number
 * (u32 LE, per direction and session) and the payload: a control text (UTF-8 JSON) or one frame chunk (the
 * same chunks as over WebSocket). QoS 1 may deliver a message twice; the sequence number drops the repeat, and
 * the session id drops what an earlier link of the node left in flight. BROWSER-SAFE.
 */
export const ENVELOPE_HEADER_BYTES = 13;

export const ENVELOPE_KIND = { open: 1, control: 2, chunk: 3 } as const;
export type EnvelopeKind = keyof typeof ENVELOPE_KIND;

export interface Envelope {
  kind: EnvelopeKind;
  /** 16 hex digits. */
  session: string;
  seq: number;
  payload: Uint8Array;
}

const NAME = /^[A-Za-z0-9_.:-]{1,128}$/;

/** A fleet or node name usable as one topic level (no wildcards, no separators). */
export function checkTopicLevel(what: string, value: string): string {
  if (!NAME.test(value))
    throw new Error(`${what} '${value}': use 1-128 letters, digits and _ . : - (it is an MQTT topic level)`);
  return value;
}

export const mqttTopics = (fleet: string, name: string) => ({
  toCoordinator: `edgefed/${fleet}/nodes/${name}/out`,
  toNode: `edgefed/${fleet}/nodes/${name}/in`,
  presence: `edgefed/${fleet}/presence/${name}`,
});

/** The subscriptions of a coordinator serving a fleet; `parseNodeTopic` reads the node name back. */
export const coordinatorSubscriptions = (fleet: string) => [
  `edgefed/${fleet}/nodes/+/out`,
  `edgefed/${fleet}/presence/+`,
];

export function parseNodeTopic(fleet: string, topic: string): { name: string; kind: 'out' | 'presence' } | null {
  const parts = topic.split('/');
  if (
    parts.length === 5 &&
    parts[0] === 'edgefed' &&
    parts[1] === fleet &&
    parts[2] === 'nodes' &&
    parts[4] === 'out' &&
    NAME.test(parts[3])
  ) {
    return { name: parts[3], kind: 'out' };
  }
  if (
    parts.length === 4 &&
    parts[0] === 'edgefed' &&
    parts[1] === fleet &&
    parts[2] === 'presence' &&
    NAME.test(parts[3])
  ) {
    return { name: parts[3], kind: 'presence' };
  }
  return null;
}

export function encodeEnvelope(e: Envelope): Uint8Array {
  if (!/^[0-9a-f]{16}$/.test(e.session)) throw new Error(`session must be 16 hex digits, got '${e.session}'`);
  const out = new Uint8Array(ENVELOPE_HEADER_BYTES + e.payload.length);
  out[0] = ENVELOPE_KIND[e.kind];
  for (let i = 0; i < 8; i++) out[1 + i] = parseInt(e.session.slice(2 * i, 2 * i + 2), 16);
  new DataView(out.buffer).setUint32(9, e.seq >>> 0, true);
  out.set(e.payload, ENVELOPE_HEADER_BYTES);
  return out;
}

/** Reads an envelope; throws on anything else (an unknown kind, too short). */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  if (bytes.length < ENVELOPE_HEADER_BYTES)
    throw new Error(`MQTT message of ${bytes.length} bytes is shorter than an envelope header`);
  const kind = (Object.keys(ENVELOPE_KIND) as EnvelopeKind[]).find((k) => ENVELOPE_KIND[k] === bytes[0]);
  if (!kind) throw new Error(`unknown envelope kind ${bytes[0]}`);
  let session = '';
  for (let i = 1; i < 9; i++) session += bytes[i].toString(16).padStart(2, '0');
  const seq = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(9, true);
  return { kind, session, seq, payload: bytes.subarray(ENVELOPE_HEADER_BYTES) };
}

/** Accepts each sequence number of a session once, in increasing order (QoS 1 redelivers, MQTT keeps order). */
export class SequenceGate {
  private last = -1;

  accept(seq: number): boolean {
    if (seq <= this.last) return false;
    this.last = seq;
    return true;
  }
}

export const textBytes = (s: string) => new TextEncoder().encode(s);
export const bytesText = (b: Uint8Array) => new TextDecoder().decode(b);

export const isMqttUrl = (url: string) => /^mqtts?:\/\//i.test(url);

/** The broker URL and fleet given to `edgefed node`, with the node's name: the link URL the platform opens. */
export function mqttLinkUrl(broker: string, fleet: string | undefined, name: string): string {
  if (!fleet) throw new Error('an MQTT coordinator needs --fleet NAME (the topic prefix the coordinator serves)');
  const u = new URL(broker);
  u.pathname = `/${checkTopicLevel('--fleet', fleet)}/${checkTopicLevel('node name', name)}`;
  return u.toString();
}
