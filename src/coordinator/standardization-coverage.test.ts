import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newLateNodes, StandardizationCoverageCache, standardizationCoverage } from './standardization-coverage.js';
import type { RunStandardization } from './run-standardization.js';

const stats: RunStandardization = { columns: ['a', 'b'], mean: [0, 1], std: [1, 2], count: 90, nodes: [0, 2] };

test('coverage: nodes that trained without being in the pass, each once, from the round they first contributed', () => {
  const rounds = [
    { round: 1, contributed: [0, 2], examples: [10, 20] },
    { round: 2, contributed: [2, 5, 0], examples: [20, 7, 10] },
    { round: 3, contributed: [5, 3], examples: [8, 4] },
    { round: 4, contributed: [] },
  ];
  assert.deepEqual(standardizationCoverage(stats, rounds), {
    rows: 90,
    nodes: [0, 2],
    columns: ['a', 'b'],
    joinedLater: [
      { nodeId: 5, firstRound: 2, examples: 7 },
      { nodeId: 3, firstRound: 3, examples: 4 },
    ],
  });
  // Round by round (the coordinator's events): a node already known is not reported again.
  const known = new Set<number>([5]);
  assert.deepEqual(newLateNodes(stats, rounds[2], known), [{ nodeId: 3, firstRound: 3, examples: 4 }]);
  assert.deepEqual(newLateNodes(stats, rounds[2], known), []);
  assert.deepEqual([...known].sort(), [3, 5]);
  // A record without examples (an older record shape) still names the node.
  assert.deepEqual(newLateNodes(stats, { round: 9, contributed: [7] }, new Set()), [
    { nodeId: 7, firstRound: 9, examples: null },
  ]);
});

test('coverage cache: each read folds in only the rounds committed since, and equals the coverage computed afresh', () => {
  const rounds = [
    { round: 1, contributed: [0, 2], examples: [10, 20] },
    { round: 2, contributed: [2, 5, 0], examples: [20, 7, 10] },
    { round: 3, contributed: [5, 3], examples: [8, 4] },
    { round: 4, contributed: [6, 3], examples: [1, 2] },
  ];
  const cache = new StandardizationCoverageCache();
  for (let committed = 0; committed <= rounds.length; committed++) {
    const sofar = rounds.slice(0, committed);
    assert.deepEqual(cache.coverage(1, stats, sofar), standardizationCoverage(stats, sofar), `${committed} rounds`);
    // A second read of the same rounds (a fresh parse of the same statistics) gives the same view.
    assert.deepEqual(cache.coverage(1, { ...stats }, sofar), standardizationCoverage(stats, sofar));
  }
  // Rounds already folded in are not read again: a (never legitimate) rewrite of round 1 changes nothing.
  const rewritten = [{ round: 1, contributed: [9], examples: [1] }, ...rounds.slice(1)];
  assert.deepEqual(cache.coverage(1, stats, rewritten), standardizationCoverage(stats, rounds));
  // The view is a copy: changing it does not change the next read.
  cache.coverage(1, stats, rounds).joinedLater.length = 0;
  assert.equal(cache.coverage(1, stats, rounds).joinedLater.length, 3);
});

test('coverage cache: other statistics, or rounds that do not continue those folded in, start the run anew', () => {
  const rounds = [
    { round: 1, contributed: [0, 5], examples: [10, 7] },
    { round: 2, contributed: [3], examples: [4] },
  ];
  const cache = new StandardizationCoverageCache();
  assert.deepEqual(
    cache.coverage(1, stats, rounds).joinedLater.map((n) => n.nodeId),
    [5, 3],
  );
  const wider = { ...stats, count: 120, nodes: [0, 2, 5] };
  assert.deepEqual(cache.coverage(1, wider, rounds), standardizationCoverage(wider, rounds));
  // Fewer rounds than folded, or another round where the last folded one stood: not this history.
  assert.deepEqual(cache.coverage(1, wider, rounds.slice(0, 1)), standardizationCoverage(wider, rounds.slice(0, 1)));
  const other = [{ round: 7, contributed: [8], examples: [2] }];
  assert.deepEqual(cache.coverage(1, wider, other), standardizationCoverage(wider, other));
  // Runs are kept apart, and the least recently read is dropped past maxRuns: read again, it is computed afresh
  // (seen here through a rewritten round 1, which a kept run would not read again).
  const small = new StandardizationCoverageCache(2);
  for (const runId of [1, 2, 3]) small.coverage(runId, stats, rounds);
  const rewritten = [{ round: 1, contributed: [9], examples: [1] }, rounds[1]];
  assert.deepEqual(small.coverage(3, stats, rewritten), standardizationCoverage(stats, rounds));
  assert.deepEqual(small.coverage(1, stats, rewritten), standardizationCoverage(stats, rewritten));
});
