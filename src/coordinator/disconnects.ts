/**
 * A fixed name for why a node's connection ended, for the disconnects metric and the log: label values come
 * from these fixed sets, never from what a node sent.
 */
import { CLOSE } from '../net/node-protocol.js';
import type { CloseCause } from './node-connection.js';

const BY_COORDINATOR: Record<number, string> = {
  [CLOSE.noHello]: 'hello_timeout',
  [CLOSE.helloFirst]: 'hello_first',
  [CLOSE.badHello]: 'bad_hello',
  [CLOSE.unauthenticated]: 'unauthenticated',
  [CLOSE.heartbeatTimeout]: 'heartbeat_timeout',
  [CLOSE.shuttingDown]: 'shutting_down',
  0: 'terminated',
};

/** ws error codes worth their own label (ws's `WS_ERR_*`, Node's socket errors). */
const SOCKET_ERRORS: Record<string, string> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: 'socket_error_max_payload',
  ECONNRESET: 'socket_error_reset',
  EPIPE: 'socket_error_reset',
};

export function disconnectLabel(cause: CloseCause | undefined): string {
  if (!cause) return 'unknown';
  if (cause.by === 'coordinator') return BY_COORDINATOR[cause.code] ?? 'coordinator_other';
  if (cause.by === 'socket_error') return SOCKET_ERRORS[cause.reason] ?? 'socket_error';
  if (cause.code === 1000 || cause.code === 1001) return 'node_closed';
  if (cause.code === 1006) return 'connection_lost';
  return cause.code === 0 ? 'node_replaced' : 'node_closed_other';
}
