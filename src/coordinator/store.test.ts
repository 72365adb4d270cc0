import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { ServerOptState } from '../core/server-opt.ts';
import { SCHEMA_VERSION, Store, StoreError, type Checkpoint } from './store.ts';

// ---------- helpers ----------

/** Runs body with a database path in a fresh temporary directory, removed once body has finished or failed. */
async function withTempDb(body: (file: string, dir: string) => void | Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-store-'));
  try {
    await body(join(dir, 'edgefed.db'), dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A clock that ticks one millisecond per reading, so timestamps are predictable and distinct. */
function clock(start = 1_700_000_000_000): () => number {
  let t = start;
  return () => ++t;
}

function bytesOf(a: Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** Float32 values with awkward bit patterns: -0, a subnormal, infinities, a NaN with a payload. */
function weightsFor(round: number, n = 37): Float32Array {
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) w[i] = Math.sin(round * 1000 + i) * 10 ** ((i % 7) - 3);
  const dv = new DataView(w.buffer);
  dv.setUint32(0, 0x80000000, true); // -0
  dv.setUint32(4, 0x00000001, true); // smallest subnormal
  dv.setUint32(8, 0x7fc00abc, true); // NaN with payload
  w[3] = Infinity;
  w[4] = -Infinity;
  return w;
}

function stateFor(round: number, n = 37): ServerOptState {
  const m = new Float32Array(n).map((_, i) => Math.cos(round + i) / 3);
  const v = new Float32Array(n).map((_, i) => 1e-18 + (round * i) / 7);
  return { name: 'fedadam', round, slots: { m, v }, hyper: { eta: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-9 } };
}

function checkpointFor(round: number): Checkpoint {
  return {
    weights: weightsFor(round),
    strategyState: stateFor(round),
    extra: { rng: [round, 2, 3, 4], note: `after ${round}` },
  };
}

function recordFor(round: number): Record<string, unknown> {
  return {
    round,
    selected: [0, 1, 2],
    contributed: [0, 2],
    failures: [{ nodeId: 1, error: 'timeout' }],
    fused: true,
    trainLoss: 1 / round,
    testAccuracy: 0.5 + round / 100,
  };
}

function trafficFor(round: number) {
  return [
    { nodeId: 0, sent: 1000 * round, received: 900, contributed: true },
    { nodeId: 1, sent: 1000 * round, received: 0, contributed: false },
    { nodeId: 2, sent: 1000 * round, received: 950, contributed: true },
  ];
}

/** Everything the store holds, for "a failing call changes nothing" checks. */
function snapshot(store: Store): unknown {
  const runs = store.listRuns();
  return {
    runs,
    nodes: store.listNodes(),
    perRun: runs.map((r) => {
      const cp = store.lastCheckpoint(r.id);
      return {
        records: store.roundRecords(r.id),
        traffic: store.nodeTraffic(r.id),
        events: store.events(r.id, 1000),
        checkpoint: cp && {
          ...cp,
          weights: bytesOf(cp.weights),
          slots: Object.fromEntries(Object.entries(cp.strategyState.slots).map(([k, v]) => [k, bytesOf(v)])),
        },
      };
    }),
    globalEvents: store.events(null, 1000),
  };
}

function assertUnchanged(store: Store, action: () => unknown, pattern: RegExp): void {
  const before = snapshot(store);
  assert.throws(action, (e: unknown) => e instanceof StoreError && pattern.test(e.message));
  assert.deepEqual(snapshot(store), before);
}

function assertSameCheckpoint(actual: ReturnType<Store['lastCheckpoint']>, round: number): void {
  assert.ok(actual);
  const expected = checkpointFor(round);
  assert.equal(actual.round, round);
  assert.ok(bytesOf(actual.weights).equals(bytesOf(expected.weights)), 'weights are bit-identical');
  assert.equal(actual.strategyState.name, 'fedadam');
  assert.equal(actual.strategyState.round, round);
  assert.deepEqual(actual.strategyState.hyper, expected.strategyState.hyper);
  assert.deepEqual(Object.keys(actual.strategyState.slots).sort(), ['m', 'v']);
  for (const k of ['m', 'v']) {
    assert.ok(actual.strategyState.slots[k] instanceof Float32Array);
    assert.ok(
      bytesOf(actual.strategyState.slots[k]).equals(bytesOf(expected.strategyState.slots[k])),
      `slot ${k} is bit-identical`,
    );
  }
  assert.deepEqual(actual.extra, expected.extra);
}

/** A store file holding run 1 with nodes a, b, c (ids 0, 1, 2) and rounds 1..3 committed. */
function seededStore(file: string): { store: Store; runId: number } {
  const store = new Store(file, { now: clock() });
  const runId = store.createRun({ strategy: 'fedadam', rounds: 10, model: { layers: [784, 64, 10] } }, 42);
  for (const name of ['a', 'b', 'c']) store.upsertNode(name, { resources: { cores: 4 }, tags: { site: name } });
  store.setRunStatus(runId, 'running');
  for (let r = 1; r <= 3; r++) store.commitRound(runId, r, recordFor(r), checkpointFor(r), trafficFor(r));
  return { store, runId };
}

// ---------- tests ----------

test('a new file store: WAL, synchronous FULL, foreign keys, schema version', async () => {
  await withTempDb((file) => {
    const store = new Store(file, { busyTimeoutMs: 1234 });
    assert.deepEqual(store.settings(), {
      journalMode: 'wal',
      synchronous: 2,
      foreignKeys: true,
      busyTimeoutMs: 1234,
      schemaVersion: SCHEMA_VERSION,
    });
    store.close();
    store.close(); // idempotent
    const raw = new Database(file, { readonly: true });
    try {
      assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal', 'WAL is recorded in the file itself');
      assert.equal(
        raw.prepare("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get(),
        String(SCHEMA_VERSION),
      );
    } finally {
      raw.close();
    }
  });
});

test('runs, nodes and rounds 1..3 survive close and reopen bit for bit', async () => {
  await withTempDb((file) => {
    let store = new Store(file, { now: clock() });
    const config = { strategy: 'fedadam', rounds: 10, model: { layers: [784, 64, 10] }, note: 'ünïcode ✓' };
    const runId = store.createRun(config, 42);
    assert.equal(runId, 1);
    const created = store.getRun(runId)!;
    assert.equal(created.status, 'created');
    assert.equal(created.roundsCompleted, 0);
    assert.deepEqual(created.config, config);
    assert.equal(created.seed, 42);
    assert.equal(created.error, undefined);
    assert.equal(store.lastCheckpoint(runId), null);

    // Ids 0, 1, 2 in enrolment order; re-enrolling keeps the id and updates resources, tags, lastSeen.
    assert.equal(store.upsertNode('pi-kitchen', { resources: { cores: 4, memMb: 2048 }, tags: { site: 'home' } }), 0);
    assert.equal(store.upsertNode('laptop', { resources: { cores: 8 }, tags: {} }), 1);
    const kitchen = store.getNode(0)!;
    assert.equal(
      store.upsertNode('pi-kitchen', { resources: { cores: 4, memMb: 4096 }, tags: { site: 'home', gpu: 'no' } }),
      0,
    );
    const kitchen2 = store.getNode(0)!;
    assert.deepEqual(kitchen2.resources, { cores: 4, memMb: 4096 });
    assert.deepEqual(kitchen2.tags, { site: 'home', gpu: 'no' });
    assert.equal(kitchen2.firstSeen, kitchen.firstSeen);
    assert.ok(kitchen2.lastSeen > kitchen.lastSeen);
    store.close();

    // Reopen: ids are kept and the next enrolment gets the next id.
    store = new Store(file, { now: clock(1_800_000_000_000) });
    assert.equal(store.upsertNode('phone', { resources: {}, tags: {} }), 2);
    assert.equal(store.upsertNode('laptop', { resources: { cores: 8 }, tags: {} }), 1);
    assert.deepEqual(
      store.listNodes().map((n) => [n.id, n.name]),
      [
        [0, 'pi-kitchen'],
        [1, 'laptop'],
        [2, 'phone'],
      ],
    );
    store.touchNode(2, 1_900_000_000_000);
    store.touchNode(2, 1_000); // lastSeen never moves backwards
    assert.equal(store.getNode(2)!.lastSeen, 1_900_000_000_000);

    store.setRunStatus(runId, 'running');
    for (let r = 1; r <= 3; r++) {
      store.commitRound(runId, r, recordFor(r), checkpointFor(r), trafficFor(r));
      assert.equal(store.getRun(runId)!.roundsCompleted, r);
      assertSameCheckpoint(store.lastCheckpoint(runId), r);
    }
    store.close();

    store = new Store(file);
    try {
      assertSameCheckpoint(store.lastCheckpoint(runId), 3);
      const run = store.getRun(runId)!;
      assert.equal(run.roundsCompleted, 3);
      assert.equal(run.status, 'running');
      assert.deepEqual(run.config, config);
      assert.deepEqual(store.roundRecords(runId), [recordFor(1), recordFor(2), recordFor(3)]);
      assert.deepEqual(
        store.nodeTraffic(runId),
        [1, 2, 3].flatMap((round) => trafficFor(round).map((t) => ({ round, ...t }))),
      );
      // Counters: 3 rounds; node 1 never contributed.
      const nodes = store.listNodes();
      assert.deepEqual(
        nodes.map((n) => n.roundsContributed),
        [3, 0, 3],
      );
      assert.deepEqual(
        nodes.map((n) => n.bytesSent),
        [6000, 6000, 6000],
      );
      assert.deepEqual(
        nodes.map((n) => n.bytesReceived),
        [2700, 0, 2850],
      );
      assert.deepEqual(
        store.listRuns().map((r) => r.id),
        [runId],
      );
    } finally {
      store.close();
    }
  });
});

test('a round committed twice, or out of order, throws and changes nothing', async () => {
  await withTempDb((file) => {
    seededStore(file).store.close();
    const store = new Store(file);
    try {
      assertUnchanged(
        store,
        () => store.commitRound(1, 3, recordFor(3), checkpointFor(3), trafficFor(3)),
        /round 3 of run 1 is already committed/,
      );
      assertUnchanged(store, () => store.commitRound(1, 1, recordFor(1), checkpointFor(1), []), /already committed/);
      assertUnchanged(
        store,
        () => store.commitRound(1, 5, recordFor(5), checkpointFor(5), trafficFor(5)),
        /next round is 4, not 5/,
      );
      assertUnchanged(store, () => store.commitRound(2, 1, recordFor(1), checkpointFor(1), []), /run 2 does not exist/);
      assertUnchanged(
        store,
        () =>
          store.commitRound(1, 4, recordFor(4), checkpointFor(4), [
            { nodeId: 9, sent: 1, received: 1, contributed: true },
          ]),
        /node 9, which is not enrolled/,
      );
      assertSameCheckpoint(store.lastCheckpoint(1), 3);
      // Round 4 is still accepted afterwards.
      store.commitRound(1, 4, recordFor(4), checkpointFor(4), trafficFor(4));
      assertSameCheckpoint(store.lastCheckpoint(1), 4);
    } finally {
      store.close();
    }
  });
});

test('a failure midway through commitRound rolls back every write of the round', async () => {
  await withTempDb((file) => {
    const { store } = seededStore(file);
    try {
      // Make the third traffic insert fail, after the round row, the checkpoint, the run and node 0/1 were written.
      const raw = new Database(file);
      raw.exec(
        "CREATE TRIGGER fail_node_2 BEFORE INSERT ON node_traffic WHEN NEW.node_id = 2 BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
      );
      raw.close();
      const before = snapshot(store);
      assert.throws(() => store.commitRound(1, 4, recordFor(4), checkpointFor(4), trafficFor(4)), /injected failure/);
      assert.deepEqual(snapshot(store), before);
      const raw2 = new Database(file);
      raw2.exec('DROP TRIGGER fail_node_2');
      raw2.close();
      store.commitRound(1, 4, recordFor(4), checkpointFor(4), trafficFor(4));
      assert.equal(store.getRun(1)!.roundsCompleted, 4);
    } finally {
      store.close();
    }
  });
});

test('invalid arguments throw clear errors and write nothing', () => {
  const store = new Store(':memory:', { now: clock() });
  try {
    const runId = store.createRun({ a: 1 }, 7);
    store.upsertNode('a', { resources: {}, tags: {} });
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    assertUnchanged(store, () => store.createRun({ f: () => 1 }, 1), /config\.f is a function/);
    assertUnchanged(store, () => store.createRun(cycle, 1), /cycle/);
    assertUnchanged(store, () => store.createRun({ when: new Date() }, 1), /config\.when is a Date/);
    assertUnchanged(store, () => store.createRun(undefined, 1), /config is undefined/);
    assertUnchanged(store, () => store.createRun({}, 1.5), /seed must be a whole number/);
    assertUnchanged(
      store,
      () => store.upsertNode('', { resources: {}, tags: {} }),
      /node name must be a string of 1 to 128/,
    );
    assertUnchanged(store, () => store.upsertNode('x'.repeat(129), { resources: {}, tags: {} }), /node name/);
    assertUnchanged(
      store,
      () => store.upsertNode('b', { resources: { big: 10n } as unknown as Record<string, unknown>, tags: {} }),
      /resources\.big is a bigint/,
    );
    assertUnchanged(
      store,
      () => store.upsertNode('b', { resources: {}, tags: { n: 5 } as unknown as Record<string, string> }),
      /tag 'n' must be a string/,
    );
    assertUnchanged(store, () => store.touchNode(5, 1), /node 5 is not enrolled/);
    assertUnchanged(store, () => store.touchNode(-1, 1), /node id must be a whole number >= 0/);
    assertUnchanged(store, () => store.getRun('1' as unknown as number), /run id must be a whole number/);
    const good = checkpointFor(1);
    const commit = (over: Partial<{ record: object; cp: Checkpoint; traffic: unknown[] }>) => () =>
      store.commitRound(runId, 1, over.record ?? recordFor(1), over.cp ?? good, (over.traffic ?? []) as never);
    assertUnchanged(
      store,
      commit({ record: { ...recordFor(1), round: 2 } }),
      /says round 2 but is committed as round 1/,
    );
    assertUnchanged(store, commit({ record: [1, 2] }), /round record must be a plain object/);
    assertUnchanged(
      store,
      commit({ cp: { ...good, weights: new Float64Array(3) as unknown as Float32Array } }),
      /weights must be a Float32Array/,
    );
    assertUnchanged(
      store,
      commit({
        cp: { ...good, strategyState: { ...good.strategyState, slots: { m: [1, 2] as unknown as Float32Array } } },
      }),
      /slots\.m must be a Float32Array/,
    );
    assertUnchanged(
      store,
      commit({ cp: { ...good, strategyState: { ...good.strategyState, hyper: { eta: Infinity } } } }),
      /hyper\.eta must be a finite number/,
    );
    assertUnchanged(
      store,
      commit({
        traffic: [
          { nodeId: 0, sent: 1, received: 1, contributed: true },
          { nodeId: 0, sent: 1, received: 1, contributed: true },
        ],
      }),
      /node 0 twice/,
    );
    assertUnchanged(
      store,
      commit({ traffic: [{ nodeId: 0, sent: -1, received: 1, contributed: true }] }),
      /traffic\[0\]\.sent/,
    );
    assertUnchanged(
      store,
      commit({ traffic: [{ nodeId: 0, sent: 1, received: 1, contributed: 'yes' }] }),
      /contributed must be true or false/,
    );
    assertUnchanged(
      store,
      commit({ traffic: [{ nodeId: 1.5, sent: 1, received: 1, contributed: true }] }),
      /traffic\[0\]\.nodeId/,
    );
    assertUnchanged(
      store,
      () => store.commitRound(runId, 0, recordFor(0), good, []),
      /round must be a whole number >= 1/,
    );
    assert.equal(store.getRun(runId)!.roundsCompleted, 0);
    store.commitRound(
      runId,
      1,
      recordFor(1),
      { weights: new Float32Array(0), strategyState: { name: 'fedavg', round: 0, slots: {}, hyper: { eta: 1 } } },
      [],
    );
    const cp = store.lastCheckpoint(runId)!;
    assert.equal(cp.weights.length, 0);
    assert.deepEqual(cp.strategyState, { name: 'fedavg', round: 0, slots: {}, hyper: { eta: 1 } });
    assert.deepEqual(cp.extra, {});
  } finally {
    store.close();
  }
  assert.throws(() => store.listRuns(), /not open/);
});

test('numbers JSON cannot hold (NaN, +-Infinity, -0) and NUL-prefixed strings come back exactly', () => {
  const store = new Store(':memory:', { now: clock() });
  try {
    const odd = {
      nan: NaN,
      inf: Infinity,
      ninf: -Infinity,
      nzero: -0,
      zero: 0,
      nul: '\u0000NaN',
      nul2: '\u0000\u0000x',
      list: [NaN, -0, 'a'],
      deep: { x: [{ y: -Infinity }] },
    };
    const runId = store.createRun(odd, 3);
    assert.deepEqual(store.getRun(runId)!.config, odd);
    assert.ok(Object.is((store.getRun(runId)!.config as typeof odd).nzero, -0));
    const nodeId = store.upsertNode('n', { resources: odd, tags: { t: '\u0000kept' } });
    assert.deepEqual(store.getNode(nodeId)!.resources, odd);
    assert.deepEqual(store.getNode(nodeId)!.tags, { t: '\u0000kept' });
    // A RoundRecord without evaluation carries NaN metrics.
    const record = { ...recordFor(1), federatedLoss: NaN, federatedAccuracy: NaN, testLoss: NaN, testAccuracy: NaN };
    store.commitRound(runId, 1, record, { ...checkpointFor(1), extra: odd }, []);
    assert.deepEqual(store.roundRecords(runId), [record]);
    assert.deepEqual(store.lastCheckpoint(runId)!.extra, odd);
    store.recordEvent(runId, 'failure', odd);
    assert.deepEqual(store.events(runId, 1)[0].data, odd);
  } finally {
    store.close();
  }
});

test('run status transitions', () => {
  const store = new Store(':memory:', { now: clock() });
  try {
    const id = store.createRun({}, 1);
    const t0 = store.getRun(id)!.updatedAt;
    for (const s of ['running', 'paused', 'running'] as const) {
      store.setRunStatus(id, s);
      assert.equal(store.getRun(id)!.status, s);
    }
    assert.ok(store.getRun(id)!.updatedAt > t0);
    store.setRunStatus(id, 'failed', 'node pool exhausted');
    assert.deepEqual([store.getRun(id)!.status, store.getRun(id)!.error], ['failed', 'node pool exhausted']);
    store.setRunStatus(id, 'running'); // resumed: the old error is cleared
    assert.equal(store.getRun(id)!.error, undefined);
    store.setRunStatus(id, 'failed', 'x'.repeat(10_000));
    assert.equal(store.getRun(id)!.error!.length, 4096);
    store.setRunStatus(id, 'completed');
    assert.equal(store.getRun(id)!.status, 'completed');
    assertUnchanged(
      store,
      () => store.setRunStatus(id, 'finished' as never),
      /run status must be one of created, running, paused, stopped, completed, failed/,
    );
    assertUnchanged(store, () => store.setRunStatus(99, 'running'), /run 99 does not exist/);
    assert.equal(store.getRun(99), undefined);
    const id2 = store.createRun([1, 'two'], 2);
    store.setRunStatus(id2, 'stopped');
    assert.deepEqual(
      store.listRuns().map((r) => [r.id, r.status, r.config]),
      [
        [id, 'completed', {}],
        [id2, 'stopped', [1, 'two']],
      ],
    );
  } finally {
    store.close();
  }
});

test('events: append-only log per run, newest first limited, returned in order', () => {
  const store = new Store(':memory:', { now: clock() });
  try {
    const a = store.createRun({}, 1);
    const b = store.createRun({}, 2);
    store.recordEvent(a, 'late_update', { nodeId: 3, forRound: 4, atRound: 5 });
    store.recordEvent(b, 'rejection', { nodeId: 1, reason: 'non-finite update' });
    store.recordEvent(a, 'failure', { nodeId: 2, error: 'timeout' });
    store.recordEvent(null, 'coordinator_start', { version: '0.1.0' });
    store.recordEvent(a, 'late_update', { nodeId: 0, forRound: 5, atRound: 6 });
    const evA = store.events(a, 10);
    assert.deepEqual(
      evA.map((e) => e.kind),
      ['late_update', 'failure', 'late_update'],
    );
    assert.deepEqual(evA[0].data, { nodeId: 3, forRound: 4, atRound: 5 });
    assert.equal(evA[0].runId, a);
    assert.ok(evA[0].at < evA[1].at && evA[0].id < evA[1].id);
    assert.deepEqual(
      store.events(a, 2).map((e) => e.data),
      [
        { nodeId: 2, error: 'timeout' },
        { nodeId: 0, forRound: 5, atRound: 6 },
      ],
    );
    assert.deepEqual(
      store.events(b, 10).map((e) => e.kind),
      ['rejection'],
    );
    assert.deepEqual(
      store.events(null, 10).map((e) => [e.runId, e.kind]),
      [[null, 'coordinator_start']],
    );
    assertUnchanged(
      store,
      () => store.recordEvent(a, 'late_update', { nodeId: 3, forRound: 4 }),
      /late_update event data\.atRound/,
    );
    assertUnchanged(store, () => store.recordEvent(a, '', {}), /event kind/);
    assertUnchanged(store, () => store.recordEvent(42, 'failure', {}), /run 42 does not exist/);
    assertUnchanged(
      store,
      () => store.recordEvent(a, 'failure', 'oops' as unknown as object),
      /must be a plain object/,
    );
    assert.throws(() => store.events(a, 0), /limit must be a whole number/);
    assert.throws(() => store.events(42, 5), /run 42 does not exist/);
  } finally {
    store.close();
  }
});

test('schema: a newer version, a foreign database and a corrupt checkpoint are refused clearly', async () => {
  await withTempDb((file, dir) => {
    seededStore(file).store.close();

    let raw = new Database(file);
    raw.prepare("UPDATE meta SET value = '99' WHERE key = 'schema_version'").run();
    raw.close();
    assert.throws(
      () => new Store(file),
      (e: unknown) =>
        e instanceof StoreError &&
        e.code === 'schema' &&
        /schema version 99, newer than this EdgeFed supports \(1\)/.test(e.message),
    );
    raw = new Database(file);
    raw.prepare("UPDATE meta SET value = ? WHERE key = 'schema_version'").run(String(SCHEMA_VERSION));
    raw.close();

    // Flip one bit inside the weights: the digest catches it.
    raw = new Database(file);
    const blob = raw.prepare('SELECT frame FROM checkpoints WHERE run_id = 1').pluck().get() as Buffer;
    const flipped = Buffer.from(blob);
    flipped[flipped.length - 10] ^= 1;
    raw.prepare('UPDATE checkpoints SET frame = ? WHERE run_id = 1').run(flipped);
    raw.close();
    let store = new Store(file);
    assert.throws(
      () => store.lastCheckpoint(1),
      (e: unknown) =>
        e instanceof StoreError &&
        e.code === 'corrupt' &&
        /checkpoint of run 1 \(round 3\) is corrupt: its SHA-256/.test(e.message),
    );
    store.close();

    // A truncated blob with a matching digest: the frame decoder catches it.
    raw = new Database(file);
    const truncated = blob.subarray(0, blob.length - 8);
    raw
      .prepare('UPDATE checkpoints SET frame = ?, sha256 = ? WHERE run_id = 1')
      .run(truncated, createHash('sha256').update(truncated).digest('hex'));
    raw.close();
    store = new Store(file);
    assert.throws(
      () => store.lastCheckpoint(1),
      (e: unknown) =>
        e instanceof StoreError && e.code === 'corrupt' && /is corrupt: tensor .* byte range/.test(e.message),
    );
    store.close();

    // Not an EdgeFed store.
    const other = join(dir, 'other.db');
    raw = new Database(other);
    raw.exec('CREATE TABLE t (x)');
    raw.close();
    assert.throws(() => new Store(other), /is not an EdgeFed store/);
    assert.throws(
      () => new Store(join(dir, 'missing-dir', 'x.db')),
      (e: unknown) => e instanceof StoreError && e.code === 'open',
    );
  });
});

/** Runs `body` (a module with `store`, `runId` and `signal()` in scope) in a child, kills it with SIGKILL on its first stdout line. */
function runAndKill(
  dir: string,
  file: string,
  body: string,
  killAfterLines = 1,
): Promise<{ lines: string[]; signal: NodeJS.Signals | null; stderr: string }> {
  const script = join(dir, `child-${Math.random().toString(36).slice(2)}.mts`);
  writeFileSync(
    script,
    `
import { Store } from ${JSON.stringify(new URL('./store.ts', import.meta.url).href)};
const store = new Store(${JSON.stringify(file)});
const runId = 1;
const signal = (text) => process.stdout.write(text + '\\n');
const checkpointFor = (round) => ({
  weights: new Float32Array(1000).map((_, i) => round + i / 1000),
  strategyState: { name: 'fedavgm', round, slots: { momentum: new Float32Array(1000).fill(round) }, hyper: { eta: 1, beta: 0.9 } },
});
const trafficFor = (round) => [{ nodeId: 0, sent: round, received: round, contributed: true }];
${body}
`,
  );
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let stderr = '';
    let buffered = '';
    // A backstop only (the child is killed on its lines): generous, since tsx start-up is slow on a busy machine.
    const guard = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop()!;
      for (const p of parts) {
        lines.push(p);
        if (lines.length === killAfterLines) child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('exit', (_code, signal) => {
      clearTimeout(guard);
      resolve({ lines, signal, stderr });
    });
  });
}

// The two crash tests each start a child (tsx start-up dominates), so they run side by side.
test('crash safety (SIGKILL)', { concurrency: 2 }, async (t) => {
  const killedAfterCommit = t.test('a round committed just before SIGKILL is on disk', async () => {
    await withTempDb(async (file, dir) => {
      seededStore(file).store.close();
      const { lines, signal, stderr } = await runAndKill(
        dir,
        file,
        `
  store.commitRound(runId, 4, { round: 4, note: 'from the child' }, checkpointFor(4), trafficFor(4));
  signal('committed 4');
  const end = Date.now() + 20000;
  while (Date.now() < end) { /* busy-wait until killed */ }
  `,
      );
      assert.deepEqual(lines, ['committed 4'], stderr);
      assert.equal(signal, 'SIGKILL');
      const store = new Store(file);
      try {
        assert.equal(store.getRun(1)!.roundsCompleted, 4);
        assert.deepEqual(store.roundRecords(1).at(-1), { round: 4, note: 'from the child' });
        const cp = store.lastCheckpoint(1)!;
        assert.equal(cp.round, 4);
        assert.deepEqual(Array.from(cp.weights.subarray(0, 3)), [4, 4.001, 4.002].map(Math.fround));
        assert.equal(cp.strategyState.slots.momentum[999], 4);
        assert.equal(store.getNode(0)!.roundsContributed, 4);
      } finally {
        store.close();
      }
    });
  });

  const killedWhileCommitting = t.test(
    'a child killed while committing round after round leaves a consistent store',
    async () => {
      await withTempDb(async (file, dir) => {
        seededStore(file).store.close();
        const { lines, signal, stderr } = await runAndKill(
          dir,
          file,
          `
  for (let r = 4; r < 100000; r++) {
    store.commitRound(runId, r, { round: r }, checkpointFor(r), trafficFor(r));
    signal('committed ' + r);
  }
  `,
          5,
        );
        assert.ok(lines.length >= 5, stderr);
        assert.equal(signal, 'SIGKILL');
        const acknowledged = Number(lines.at(-1)!.split(' ')[1]);
        const store = new Store(file);
        try {
          const done = store.getRun(1)!.roundsCompleted;
          assert.ok(done >= acknowledged, `every acknowledged round is kept (${done} >= ${acknowledged})`);
          const records = store.roundRecords(1);
          assert.deepEqual(
            records.map((r) => r.round),
            Array.from({ length: done }, (_, i) => i + 1),
          );
          const cp = store.lastCheckpoint(1)!;
          assert.equal(cp.round, done);
          assert.equal(cp.strategyState.slots.momentum[0], done);
          assert.equal(new Set(store.nodeTraffic(1).map((t) => t.round)).size, done);
          // Node 0 contributed to rounds 1..3 (seed) and to every round the child committed.
          assert.equal(store.getNode(0)!.roundsContributed, done);
          store.commitRound(1, done + 1, { round: done + 1 }, checkpointFor(1), []);
        } finally {
          store.close();
        }
      });
    },
  );
  await Promise.all([killedAfterCommit, killedWhileCommitting]);
});

test('touchNodes updates lastSeen for many nodes in one call, never backwards', () => {
  const s = new Store(':memory:');
  const a = s.upsertNode('a', { resources: {}, tags: {} });
  const b = s.upsertNode('b', { resources: {}, tags: {} });
  const before = s.getNode(a)!.lastSeen;
  s.touchNodes([
    { id: a, atMs: before + 5000 },
    { id: b, atMs: 1 },
  ]);
  assert.equal(s.getNode(a)!.lastSeen, before + 5000);
  assert.ok(s.getNode(b)!.lastSeen >= before, 'not moved backwards');
  assert.throws(() => s.touchNodes([{ id: -1, atMs: 1 }]));
  s.close();
});

test('onChange announces committed runs, rounds and events, never a write that threw; a throwing listener is ignored', () => {
  const store = new Store(':memory:', { now: clock() });
  try {
    const seen: string[] = [];
    store.onChange(() => {
      throw new Error('a broken observer');
    });
    const stop = store.onChange((c) =>
      seen.push(
        c.kind === 'run'
          ? `run ${c.run.id} ${c.run.status}`
          : c.kind === 'round'
            ? `round ${c.runId}/${c.round} ${String(c.record.round)}`
            : `event ${c.event.kind} ${JSON.stringify(c.event.data)}`,
      ),
    );
    const run = store.createRun({ name: 'x' }, 1);
    store.upsertNode('n0', { resources: {}, tags: {} });
    store.setRunStatus(run, 'running');
    store.commitRound(run, 1, recordFor(1), checkpointFor(1), [{ nodeId: 0, sent: 5, received: 6, contributed: true }]);
    assert.throws(() => store.commitRound(run, 3, recordFor(3), checkpointFor(3), []), /next round is 2/);
    assert.throws(() => store.setRunStatus(run + 1, 'running'), /does not exist/);
    assert.throws(() => store.recordEvent(run, 'late_update', { nodeId: 0 }), /forRound/);
    store.recordEvent(run, 'late_update', { nodeId: 0, forRound: 1, atRound: 2 });
    assert.deepEqual(seen, [
      'run 1 created',
      'run 1 running',
      'round 1/1 1',
      'event late_update {"nodeId":0,"forRound":1,"atRound":2}',
    ]);
    stop();
    store.setRunStatus(run, 'completed');
    assert.equal(seen.length, 4, 'an unsubscribed listener hears nothing');
    assert.equal(store.getRun(run)?.status, 'completed');
  } finally {
    store.close();
  }
});

test('upsertNodes enrols a group in one transaction with the ids one-by-one calls give; a bad entry changes nothing', () => {
  const one = new Store(':memory:', { now: clock() });
  const group = new Store(':memory:', { now: clock() });
  try {
    const entries = ['a', 'b', 'a', 'c'].map((name, i) => ({ name, info: { resources: { cores: i }, tags: {} } }));
    const expected = entries.map((e) => one.upsertNode(e.name, e.info));
    assert.deepEqual(expected, [0, 1, 0, 2]);
    assert.deepEqual(group.upsertNodes(entries), expected);
    const rows = (st: Store) => st.listNodes().map(({ id, name, resources, tags }) => ({ id, name, resources, tags }));
    assert.deepEqual(rows(group), rows(one));
    assertUnchanged(
      group,
      () =>
        group.upsertNodes([
          { name: 'd', info: { resources: {}, tags: {} } },
          { name: '', info: { resources: {}, tags: {} } },
        ]),
      /node name/,
    );
    assert.equal(group.getNode(3), undefined);
  } finally {
    one.close();
    group.close();
  }
});

test('touchNodes without durability writes the same rows and leaves the store at synchronous=FULL', () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-store-touch-'));
  const file = join(dir, 'db.sqlite');
  try {
    const s = new Store(file);
    const a = s.upsertNode('a', { resources: {}, tags: {} });
    const at = s.getNode(a)!.lastSeen + 7000;
    s.touchNodes([{ id: a, atMs: at }], false);
    assert.equal(s.getNode(a)!.lastSeen, at);
    assert.equal(s.database.pragma('synchronous', { simple: true }), 2, 'FULL again for every other write');
    assert.throws(() => s.touchNodes([{ id: -1, atMs: 1 }], false));
    assert.equal(s.database.pragma('synchronous', { simple: true }), 2);
    s.close();
    const reopened = new Store(file);
    assert.equal(reopened.getNode(a)!.lastSeen, at, 'on disk after a clean close');
    reopened.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
