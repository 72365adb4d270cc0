/** The dashboard's end of the live feed: one WebSocket to /v1/live, reconnecting with backoff. */
import type { LiveMessage } from '../../src/coordinator/live-protocol.js';
import { liveProtocols } from '../shared/read-token.js';

export type LiveState = 'connecting' | 'open' | 'closed';

export function connectLive(onMessage: (m: LiveMessage) => void, onState: (s: LiveState) => void): void {
  const url = new URL('/v1/live', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  let attempt = 0;
  const open = () => {
    onState('connecting');
    const ws = new WebSocket(url, liveProtocols());
    ws.onopen = () => {
      attempt = 0;
      onState('open');
    };
    ws.onmessage = (e) => {
      let m: LiveMessage;
      try {
        m = JSON.parse(String(e.data)) as LiveMessage;
      } catch {
        return; // not ours to interpret
      }
      onMessage(m);
    };
    ws.onclose = () => {
      onState('closed');
      setTimeout(open, Math.min(10_000, 500 * 2 ** attempt++));
    };
  };
  open();
}
