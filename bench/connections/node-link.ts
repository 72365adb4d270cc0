/**
 * One simulated node's link to the coordinator in the connections client: a raw WebSocket to /v1/ws, or the
 * agent's MQTT link through a broker (`mqttAgentSocket`, one MQTT client per node). The client speaks the same
 * protocol over either; only opening, sending and closing differ.
 */
// Before 'ws': ws then masks every reply a word at a time, as the agent does (ws-mask.ts), not byte by byte.
import '../../src/net/ws-mask.js';
import { WebSocket, type RawData } from 'ws';
import type { ChunkSocket } from '../../src/net/frame-link.js';
import { mqttAgentSocket } from '../../src/node/mqtt-agent-socket.js';

export type Transport = 'ws' | 'mqtt';

export interface NodeLink extends ChunkSocket {
  readonly isOpen: boolean;
  sendText(text: string): void;
  /** Closes without ceremony (the client process is about to exit). */
  terminate(): void;
}

export interface NodeLinkEvents {
  open(): void;
  binary(bytes: Uint8Array): void;
  text(text: string, size: number): void;
  /** `why`: the WebSocket close code and reason, or what the MQTT link said. */
  close(why: string): void;
  error(message: string): void;
}

function toBuffer(data: RawData): Buffer {
  return Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}

export function wsNodeLink(url: string, maxPayload: number, on: NodeLinkEvents): NodeLink {
  const ws = new WebSocket(url, { maxPayload });
  ws.on('open', () => on.open());
  ws.on('message', (data: RawData, isBinary: boolean) => {
    const bytes = toBuffer(data);
    if (isBinary) on.binary(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength).slice());
    else on.text(bytes.toString('utf8'), bytes.length);
  });
  ws.on('close', (code: number, reason: Buffer) => on.close(`${code} ${reason.toString('utf8')}`));
  ws.on('error', (e: Error) => on.error(e.message));
  return {
    get isOpen() {
      return ws.readyState === WebSocket.OPEN;
    },
    send: (data, options, cb) => ws.send(data, options, cb),
    sendText: (text) => ws.send(text),
    terminate: () => ws.terminate(),
  };
}

/** `linkUrl`: mqtt://host:port/<fleet>/<name>, as `mqttLinkUrl` builds it for the agent. */
export function mqttNodeLink(linkUrl: string, maxPayload: number, on: NodeLinkEvents): NodeLink {
  const socket = mqttAgentSocket(linkUrl, maxPayload, {
    open: () => on.open(),
    message: (data) => (typeof data === 'string' ? on.text(data, Buffer.byteLength(data)) : on.binary(data)),
    close: () => on.close('mqtt link closed'),
    error: (message) => on.error(message),
  });
  return {
    get isOpen() {
      return socket.isOpen;
    },
    send: socket.send,
    sendText: socket.sendText,
    terminate: () => socket.close(),
  };
}
