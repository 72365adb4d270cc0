/**
 * The agent's Node.js platform: the `ws` WebSocket, node:http (not fetch: node-http.ts says why), node:os
 * resources and the usual trainer picker.
 */
// Before 'ws': lets ws mask the replies a word at a time (ws-mask.ts).
import '../net/ws-mask.js';
import { WebSocket } from 'ws';
import { availableParallelism, totalmem } from 'node:os';
import { makeNodeTrainer, nodeTrainingThreads } from '../model/parallel-choice.js';
import { loadNativeKernels, nativeKernelsInfo } from '../nn/kernels-native.js';
import { nodeCrypto } from '../net/node-crypto.js';
import type { AgentPlatform, AgentSocket } from './platform.js';
import { mqttAgentSocket } from './mqtt-agent-socket.js';
import { isMqttUrl } from '../net/mqtt-envelope.js';
import { nodeHttpFetch } from './node-http.js';

export const nodePlatform: AgentPlatform = {
  connect(url, maxPayload, on): AgentSocket {
    if (isMqttUrl(url)) return mqttAgentSocket(url, maxPayload, on);
    const ws = new WebSocket(url, { maxPayload });
    ws.on('open', () => on.open());
    ws.on('message', (data, isBinary) => {
      const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      // A copy: the agent may keep chunks while a frame is reassembled, and ws reuses nothing it hands out.
      on.message(
        isBinary ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength).slice() : bytes.toString('utf8'),
      );
    });
    ws.on('close', () => on.close());
    ws.on('error', (e) => on.error(e.message));
    return {
      get isOpen() {
        return ws.readyState === WebSocket.OPEN;
      },
      send: (data, options, cb) => ws.send(data, options, cb),
      sendText: (text) => ws.send(text),
      close: () => ws.close(),
    };
  },
  makeTrainer: (spec) => makeNodeTrainer(spec),
  crypto: nodeCrypto,
  fetch: nodeHttpFetch,
  device: () => ({
    cores: availableParallelism(),
    memoryMb: Math.round(totalmem() / 2 ** 20),
    platform: nodePlatformLabel(),
  }),
};

/**
 * e.g. 'node-v20.19.5 native-openblas/SkylakeX threads=2': the registry shows which kernels and OpenBLAS core a
 * node trains with, and its training threads when more than one (`edgefed node --threads`), in the hello schema's
 * `platform` field, so coordinators that do not know a newer field accept it.
 */
export function nodePlatformLabel(): string {
  const core = loadNativeKernels() ? nativeKernelsInfo()?.selection.core : null;
  const threads = nodeTrainingThreads() > 1 ? ` threads=${nodeTrainingThreads()}` : '';
  return `node-${process.version}${core ? ` native-openblas/${core}` : ''}${threads}`.slice(0, 64);
}
