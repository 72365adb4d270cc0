// A deployed run gives the same model whether the coordinator checks the nodes' signatures on its event loop
// or in worker threads: same nodes, same seed, same rounds, same checkpoint bytes (sha256).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { startCoordinator } from '../src/coordinator/server.js';
import { Agent } from '../src/node/agent.js';
import { loadNodeData } from '../src/node/data.js';
import { newIdentity } from '../src/core/identity.js';
import { parseRunConfig } from '../src/coordinator/config.js';
import { waitFor } from './deploy-harness.js';

const quiet = pino({ level: 'silent' });

/** One coordinator, two agents joining in order, one seeded run: the final checkpoint's sha256 and round. */
async function runOnce(
  verifyThreads: number,
): Promise<{ sha256: string; round: number; fused: number[]; offThread: boolean }> {
  const db = join(mkdtempSync(join(tmpdir(), 'edgefed-verify-')), 'coordinator.db');
  // verifyOffThreadFrom 0: the pool starts with the coordinator, so every signed reply goes through it.
  const c = await startCoordinator({
    port: 0,
    db,
    logger: quiet,
    heartbeatMs: 1000,
    verifyThreads,
    verifyOffThreadFrom: 0,
  });
  const agents: Agent[] = [];
  try {
    for (const [i, name] of ['v-a', 'v-b'].entries()) {
      const agent = new Agent({
        coordinator: c.url,
        name,
        data: loadNodeData(`mnist-partition:${i}/30`, name),
        tags: {},
        log: quiet,
        secretKey: newIdentity().secretKey,
        joinToken: c.createJoinToken(),
      });
      agents.push(agent);
      await agent.start();
      await waitFor(`${name} connected`, async () => (agent.connected ? true : undefined), 30_000);
    }
    const config = parseRunConfig({ name: 'v', model: 'linear', rounds: 2, minNodes: 2, limitTest: 200, seed: 5 });
    const id = c.store.createRun(config, config.seed);
    await c.runs.start(id).done;
    assert.equal(c.store.getRun(id)?.status, 'completed');
    const rounds = c.store.roundRecords<{ contributed: number[] }>(id);
    const last = c.store.lastCheckpoint(id)!;
    const counted = /^edgefed_frames_verified_off_thread_total (\d+)/m.exec((await c.metrics.text()).body);
    const offThread = Number(counted?.[1] ?? 0) >= 4; // two train replies per round at least
    const sha256 = createHash('sha256').update(last.weights).digest('hex');
    return { sha256, round: last.round, fused: rounds.map((r) => r.contributed.length), offThread };
  } finally {
    for (const a of agents) a.stop();
    await c.close();
  }
}

test('signatures checked in worker threads or on the event loop: the same rounds fused, the same model bytes', {
  timeout: 300_000,
}, async () => {
  const inThread = await runOnce(0);
  const offThread = await runOnce(1);
  assert.deepEqual(inThread.fused, [2, 2]);
  assert.equal(inThread.offThread, false);
  assert.equal(offThread.offThread, true, 'the replies went through the worker threads');
  assert.deepEqual({ ...offThread, offThread: false }, inThread);
});
