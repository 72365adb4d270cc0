/** The mosquitto the load lab starts for `--transport mqtt`: its own config on a free loopback port. */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import type { Child } from './children.js';

export const MOSQUITTO = '/usr/sbin/mosquitto';

/**
 * Limits raised from mosquitto's defaults, because one coordinator client receives every node's messages:
 * the default 20 in flight and 1000 queued per client would drop QoS 1 replies in a round's burst.
 */
export const BROKER_LIMITS = [
  'max_connections -1',
  'max_inflight_messages 1000',
  'max_queued_messages 1000000',
  'max_queued_bytes 0',
  'set_tcp_nodelay true',
];

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function listening(port: number, timeoutMs: number, child: Child): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const code = child.child.exitCode;
    if (code !== null) throw new Error(`mosquitto exited with code ${code}: ${child.stderr().slice(-2000)}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`mosquitto did not listen on 127.0.0.1:${port} in ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts mosquitto with its config in `dir`; the caller kills it (it is one of the bench's children). */
export async function startBroker(
  dir: string,
  needFiles: number,
  limits: { soft: number },
): Promise<{ url: string; broker: Child }> {
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  const lines = [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'persistence false',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    ...BROKER_LIMITS,
    '',
  ];
  writeFileSync(conf, lines.join('\n'));
  const cmd =
    limits.soft >= needFiles
      ? [MOSQUITTO, '-c', conf]
      : ['/bin/sh', '-c', `ulimit -Sn ${needFiles} && exec ${MOSQUITTO} -c '${conf}'`];
  const child = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  const keep = (d: Buffer) => {
    err += d.toString('utf8');
    if (err.length > 200_000) err = err.slice(-100_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  const broker: Child = { name: 'mosquitto', child, stderr: () => err, exited };
  await listening(port, 10_000, broker);
  return { url: `mqtt://127.0.0.1:${port}`, broker };
}
