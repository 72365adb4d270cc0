/**
 * The agent's browser platform: the browser's WebSocket, navigator's resource hints, and the training
 * engine on the kernels the page chose (WASM SIMD, else TypeScript). tfjs is not bundled, so a model the
 * engine cannot run is refused with a clear message.
 */
import type { AgentPlatform, AgentSocket } from './platform.js';
import { EngineTrainer } from '../model/engine-trainer.js';
import { engineUnsupportedReason } from '../model/spec.js';
import type { Kernels } from '../nn/kernels.js';

/** 'browser-chrome-131' and the like: short enough for the hello's 64-character platform field. */
function platformLabel(): string {
  const m = /(Firefox|Edg|Chrome|Safari)\/(\d+)/.exec(navigator.userAgent);
  return m ? `browser-${m[1].toLowerCase()}-${m[2]}` : 'browser';
}

export function browserPlatform(kernels: Kernels): AgentPlatform {
  return {
    connect(url, _maxPayload, on): AgentSocket {
      const ws = new WebSocket(url);
      ws.binaryType = 'arraybuffer';
      ws.onopen = () => on.open();
      ws.onmessage = (ev: MessageEvent<ArrayBuffer | string>) =>
        on.message(typeof ev.data === 'string' ? ev.data : new Uint8Array(ev.data));
      ws.onclose = () => on.close();
      // The browser tells a page no more than that (the close event follows).
      ws.onerror = () => on.error(`WebSocket to ${url} failed`);
      return {
        get isOpen() {
          return ws.readyState === WebSocket.OPEN;
        },
        send: (data, _options, cb) => {
          try {
            ws.send(data as Uint8Array<ArrayBuffer>);
            cb();
          } catch (e) {
            cb(e instanceof Error ? e : new Error(String(e)));
          }
        },
        sendText: (text) => ws.send(text),
        close: () => ws.close(),
      };
    },
    makeTrainer: async (spec) => {
      const reason = engineUnsupportedReason(spec);
      if (reason !== null)
        throw new Error(`the browser node trains on the engine only, which cannot run model ${spec.name}: ${reason}`);
      return new EngineTrainer(spec, kernels);
    },
    device: () => {
      // navigator.deviceMemory (GB, rounded by the browser) is Chromium-only.
      const gb = (navigator as Navigator & { deviceMemory?: number }).deviceMemory;
      return {
        cores: navigator.hardwareConcurrency || undefined,
        memoryMb: gb ? Math.round(gb * 1024) : undefined,
        platform: platformLabel(),
      };
    },
  };
}
