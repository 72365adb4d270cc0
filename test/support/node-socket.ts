/** A raw node socket for tests that speak the node protocol by hand: answers the challenge with a hello. */
import type { WebSocket } from 'ws';
import { makeHello, type HelloDeclaration } from '../../src/net/node-protocol.js';

/** Sends a hello (signed when a key is given) when the challenge arrives; call before `open`: it may come with it. */
export function helloOnChallenge(ws: WebSocket, declared: HelloDeclaration, secretKey?: Uint8Array): void {
  ws.on('message', (data, binary) => {
    if (binary) return;
    const msg = JSON.parse(String(data)) as { type: string; challenge?: string };
    if (msg.type === 'challenge') ws.send(JSON.stringify(makeHello(String(msg.challenge), declared, secretKey)));
  });
}
