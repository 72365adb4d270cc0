/**
 * A real mosquitto broker for tests, on a free loopback port, with its own config file; it can be stopped
 * and started again on the same port (the broker-outage test). Needs /usr/sbin/mosquitto (Debian's mosquitto,
 * installed by .ci/run); `mosquittoMissing` is node:test's skip reason when it is absent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../deploy-harness.js';

export const MOSQUITTO = '/usr/sbin/mosquitto';
export const mosquittoMissing: false | string = existsSync(MOSQUITTO)
  ? false
  : `${MOSQUITTO} not found: apt-get install mosquitto to run the MQTT tests`;

export interface Broker {
  url: string;
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
  output(): string;
}

async function listening(port: number, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`mosquitto did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startBroker(extraConfig: string[] = []): Promise<Broker> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-mosquitto-'));
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence false',
      'max_queued_messages 100000',
      ...extraConfig,
      '',
    ].join('\n'),
  );
  let child: ChildProcess | null = null;
  let out = '';
  const broker: Broker = {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    async start() {
      child = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout!.on('data', (d) => (out += d));
      child.stderr!.on('data', (d) => (out += d));
      await listening(port);
    },
    async stop() {
      const c = child;
      child = null;
      if (!c || c.exitCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await exited;
    },
    output: () => out,
  };
  await broker.start();
  return broker;
}
