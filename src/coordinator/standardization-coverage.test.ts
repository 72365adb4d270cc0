import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newLateNodes, standardizationCoverage } from './standardization-coverage.js';
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
