/**
 * A WebSocket client written on a bare TCP socket, for sending what a well-behaved client never would: one
 * message that declares hundreds of megabytes, streamed from a small buffer so the sender itself stays small.
 */
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';

/** Opens a WebSocket to `url` (ws://host:port/path) and resolves once the server answered 101. */
export async function rawWebSocket(url: string): Promise<Socket> {
  const u = new URL(url);
  const socket = connect(Number(u.port), u.hostname);
  await once(socket, 'connect');
  socket.write(
    [
      `GET ${u.pathname} HTTP/1.1`,
      `Host: ${u.host}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
      'Sec-WebSocket-Version: 13',
      '',
      '',
    ].join('\r\n'),
  );
  let head = '';
  while (!head.includes('\r\n\r\n')) {
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    head += chunk.toString('latin1');
  }
  if (!head.startsWith('HTTP/1.1 101')) throw new Error(`no WebSocket upgrade: ${head.split('\r\n')[0]}`);
  socket.on('data', () => undefined); // keep reading (the server's challenge, its close frame)
  return socket;
}

/**
 * Sends one binary message of `bytes` bytes (a zero mask: the payload goes as is) from a reused 1 MB buffer,
 * until it is all written or the server cuts the connection. Resolves with the bytes the socket accepted.
 */
export async function streamHugeMessage(socket: Socket, bytes: number): Promise<number> {
  const header = Buffer.alloc(14);
  header[0] = 0x82; // FIN, binary
  header[1] = 0x80 | 127; // masked, 64-bit length
  header.writeBigUInt64BE(BigInt(bytes), 2);
  // bytes 10..13: the mask key, zero
  const block = Buffer.alloc(1 << 20, 7);
  let written = 0;
  let closed = false;
  let wake: () => void = () => undefined;
  const end = () => {
    closed = true;
    wake();
  };
  socket.once('close', end);
  socket.on('error', end);
  socket.on('drain', () => wake());
  socket.write(header);
  while (written < bytes && !closed) {
    const n = Math.min(block.length, bytes - written);
    const flushed = socket.write(n === block.length ? block : block.subarray(0, n));
    written += n;
    if (!flushed && !closed) await new Promise<void>((r) => (wake = r));
  }
  return written;
}

/** Resident memory of a process, in MB (Linux /proc). */
export async function rssMb(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]);
  return kb / 1024;
}
