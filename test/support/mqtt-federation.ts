/** A coordinator serving an MQTT fleet and its node processes, some over MQTT, for the MQTT tests. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ADMIN_TOKEN,
  api,
  freePort,
  killAll,
  runView,
  startCoordinator,
  startNodeEnrolled,
  waitFor,
  waitHealthy,
  waitOnline,
  type Proc,
} from '../deploy-harness.js';
import type { Broker } from './mosquitto.js';

export const FLEET = 'plant1';

export async function admin<T>(url: string, path: string, body?: unknown): Promise<T> {
  const r = await fetch(url + path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return (await r.json()) as T;
}

export interface Federation {
  url: string;
  procs: Proc[];
}

/** A coordinator (serving the fleet over `broker` when given) and nodes n0..: `mqttNodes` of them over MQTT. */
export async function federation(
  broker: Broker | null,
  nodes: number,
  mqttNodes: number,
  parts: number,
): Promise<Federation> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const db = join(mkdtempSync(join(tmpdir(), 'edgefed-mqtt-')), 'c.db');
  const procs = [startCoordinator(port, db, undefined, broker ? ['--mqtt', broker.url, '--fleet', FLEET] : [])];
  try {
    await waitHealthy(url);
    for (let i = 0; i < nodes; i++) {
      const link = i < mqttNodes ? ['--coordinator', broker!.url, '--fleet', FLEET, '--api', url] : [];
      // Later flags win: an MQTT node's --coordinator is the broker, its --api the coordinator's HTTP.
      procs.push(await startNodeEnrolled(url, `mnist-partition:${i}/${parts}`, `n${i}`, link));
      await waitOnline(url, `n${i}`);
    }
    return { url, procs };
  } catch (e) {
    killAll(procs);
    throw new Error(`${(e as Error).message}\n${procs.map((p) => p.output().slice(-1500)).join('\n---\n')}`);
  }
}

export async function runToEnd(f: Federation, config: object, timeoutMs = 300_000) {
  const { id } = await admin<{ id: number }>(f.url, '/v1/runs', config);
  await waitFor(
    `run ${id} completed`,
    async () => ((await runView(f.url, id)).status === 'completed' ? true : undefined),
    timeoutMs,
  );
  return {
    id,
    run: await runView(f.url, id),
    checkpoint: (await api<{ sha256: string; round: number }>(f.url, `/v1/runs/${id}/checkpoint`)).json,
  };
}
