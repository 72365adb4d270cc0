/**
 * The Node.js edge-node agent: AgentCore (agent-core.ts, shared with the browser node) on the Node.js
 * platform (the `ws` WebSocket, node:os resources, the native/WASM/tfjs trainer picker).
 */
import { AgentCore, type AgentOptions } from './agent-core.js';
import { nodePlatform } from './platform-node.js';

export type { AgentEvent, AgentLog, AgentOptions, AgentStats, RequestHandler } from './agent-core.js';

export class Agent extends AgentCore {
  constructor(o: AgentOptions) {
    super(o, nodePlatform);
  }
}
