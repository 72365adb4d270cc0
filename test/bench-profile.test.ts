// The connections bench's profile summaries: stalls name the functions that filled them, the profiler's own
// opening stretch is not reported as a stall, and a client's self time is summed by function.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { summarisePhases } from '../bench/connections/profile-phases.js';
import { selfTimes } from '../bench/connections/self-profile.js';
import type { CpuProfile } from '../bench/connections/inspector.js';

const SRC = 'file:///repo/src';
/** A profile with a root and the given frames under it; samples name frames by index + 2 (1 ms each). */
function profile(frames: { fn: string; url: string }[], samples: number[]): CpuProfile {
  return {
    nodes: [
      { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1 }, children: frames.map((_, i) => i + 2) },
      ...frames.map((f, i) => ({ id: i + 2, callFrame: { functionName: f.fn, url: f.url, lineNumber: 0 } })),
    ],
    samples,
    timeDeltas: samples.map(() => 1000),
  };
}

const frames = [
  { fn: '(idle)', url: '' },
  { fn: '(program)', url: '' },
  { fn: 'commitRound', url: `${SRC}/coordinator/store.ts` },
  { fn: '(garbage collector)', url: '' },
  { fn: 'settle', url: `${SRC}/engine/in-order-fusion.ts` },
];
const [IDLE, PROGRAM, COMMIT, GC, SETTLE] = [2, 3, 4, 5, 6];

test('busy stretches name their functions; the opening stretch (the profiler starting) is not a stall', () => {
  const samples = [
    ...Array(50).fill(PROGRAM), // the profiler starting: longest, but not the coordinator's
    IDLE,
    ...Array(20).fill(COMMIT),
    ...Array(10).fill(GC),
    IDLE,
    ...Array(5).fill(SETTLE),
    IDLE,
  ];
  const s = summarisePhases(profile(frames, samples));
  assert.deepEqual(
    s.longest_busy.map((b) => b.ms),
    [30, 5],
  );
  const [first] = s.longest_busy;
  assert.equal(first.at_s, 0.05);
  assert.deepEqual(first.functions, [
    { phase: 'commitRound coordinator/store.ts', fraction: 0.667 },
    { phase: '(garbage collector)', fraction: 0.333 },
  ]);
  assert.equal(first.phases[0].phase, 'store (SQLite)');
});

test("a client's self time is summed by function, idle left out", () => {
  const samples = [IDLE, COMMIT, COMMIT, GC, IDLE, SETTLE];
  const { total, busy, top } = selfTimes(profile(frames, samples), 2);
  assert.equal(total, 0.006);
  assert.equal(busy, 0.004);
  assert.deepEqual(top, [
    { where: 'commitRound coordinator/store.ts:1', seconds: 0.002 },
    { where: '(garbage collector)', seconds: 0.001 },
  ]);
});
