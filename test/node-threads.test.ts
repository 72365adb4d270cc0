// `edgefed node --threads 2` as a real process against a real coordinator: it enrols, reports its training threads
// in its registry entry (resources.platform) with a training speed measured on them, and SIGTERM still ends it
// with code 0 (its worker threads do not hold it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import {
  api,
  freePort,
  killAll,
  startCoordinator,
  startNodeEnrolled,
  waitHealthy,
  waitOnline,
  type Proc,
} from './deploy-harness.js';

test('a node on 2 training threads says so in its registry entry and exits on SIGTERM', async () => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const coordinator = startCoordinator(port, join(mkdtempSync(join(tmpdir(), 'edgefed-threads-')), 'state.db'));
  const procs: Proc[] = [coordinator];
  try {
    await waitHealthy(url);
    const node = await startNodeEnrolled(url, 'mnist-partition:0/20', 'two-threads', ['--threads', '2']);
    procs.push(node);
    await waitOnline(url, 'two-threads').catch((e: Error) => {
      throw new Error(`${e.message}\n${node.output().slice(-2000)}`);
    });
    const { json } = await api<{
      nodes: { name: string; resources: { platform?: string; samplesPerSecond?: number } }[];
    }>(url, '/v1/nodes');
    const entry = json.nodes.find((n) => n.name === 'two-threads')!;
    assert.match(entry.resources.platform ?? '', / threads=2$/);
    assert.ok((entry.resources.samplesPerSecond ?? 0) > 0, JSON.stringify(entry.resources));
    const exited = once(node.child, 'exit');
    node.child.kill('SIGTERM');
    const [code, signal] = (await exited) as [number | null, string | null];
    assert.equal(code, 0, `exit ${code} signal ${signal}\n${node.output().slice(-2000)}`);
  } finally {
    killAll(procs);
  }
});
