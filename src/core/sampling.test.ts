import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Rng } from './rng.ts';
import { sampleCount, sampleNodes } from './sampling.ts';

test('sampleCount edge cases', () => {
  assert.equal(sampleCount(100, 1, 1), 100, 'fraction 1 takes everyone');
  assert.equal(sampleCount(7, 1, 1), 7);
  assert.equal(sampleCount(100, 0.1, 1), 10, '0.1 * 100 is exactly 10, not 11');
  assert.equal(sampleCount(100, 0.14, 1), 14, '0.14 * 100 = 14.000000000000002 in floating point');
  assert.equal(sampleCount(100, 0.07, 1), 7, '0.07 * 100 = 7.000000000000001 in floating point');
  assert.equal(sampleCount(100, 0.55, 1), 55, '0.55 * 100 = 55.00000000000001 in floating point');
  assert.equal(sampleCount(1000, 0.001, 1), 1);
  assert.equal(sampleCount(100, 0.101, 1), 11, 'a fraction just over rounds up');
  assert.equal(sampleCount(100, 0.0001, 1), 1, 'tiny fraction gives at least one node');
  assert.equal(sampleCount(100, 0.0001, 5), 5, 'tiny fraction gives minNodes');
  assert.equal(sampleCount(3, 0.5, 10), 3, 'minNodes is capped at the nodes available');
  assert.equal(sampleCount(0, 0.5, 2), 0, 'no nodes, none sampled');
  assert.equal(sampleCount(1, 0.01, 1), 1);
});

test('sampleCount is ceil(fraction * N) for exact decimal fractions, within [min(minNodes, N), N]', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 100_000 }),
      fc.integer({ min: 1, max: 1000 }),
      fc.integer({ min: 1, max: 50 }),
      (n, permille, minNodes) => {
        const k = sampleCount(n, permille / 1000, minNodes);
        // exact integer arithmetic: ceil(permille * n / 1000)
        const exact = Math.floor((permille * n + 999) / 1000);
        assert.equal(
          k,
          Math.min(n, Math.max(minNodes, exact)),
          `n=${n} fraction=${permille / 1000} minNodes=${minNodes}`,
        );
      },
    ),
    { numRuns: 1000 },
  );
});

test('sampleCount is exactly ceil(p% of N) for every whole percentage and N up to 300', () => {
  for (let n = 0; n <= 300; n++) {
    for (let pct = 1; pct <= 100; pct++) {
      const exact = Math.floor((pct * n + 99) / 100);
      const k = sampleCount(n, pct / 100, 1);
      if (k !== Math.min(n, Math.max(1, exact)))
        assert.fail(`sampleCount(${n}, ${pct / 100}, 1) = ${k}, expected ${Math.min(n, Math.max(1, exact))}`);
    }
  }
});

test('sampleNodes: sorted, distinct, a subset of ids, the right count, deterministic for a seed', () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.integer({ min: -1000, max: 100_000 }), { maxLength: 200 }),
      fc.integer({ min: 1, max: 100 }),
      fc.integer({ min: 1, max: 10 }),
      fc.nat(10_000),
      (ids, pct, minNodes, seed) => {
        const picked = sampleNodes(ids, pct / 100, minNodes, new Rng(seed));
        assert.equal(picked.length, sampleCount(ids.length, pct / 100, minNodes));
        assert.equal(new Set(picked).size, picked.length);
        const idSet = new Set(ids);
        assert.ok(picked.every((id) => idSet.has(id)));
        for (let i = 1; i < picked.length; i++) assert.ok(picked[i - 1] < picked[i], 'numerically sorted');
        assert.deepEqual(sampleNodes(ids, pct / 100, minNodes, new Rng(seed)), picked);
      },
    ),
    { numRuns: 300 },
  );
});

test('sampleNodes sorts numerically, not as strings, and does not modify ids', () => {
  const ids = [100, 9, 20, 3, 1000];
  const copy = [...ids];
  assert.deepEqual(sampleNodes(ids, 1, 1, new Rng(1)), [3, 9, 20, 100, 1000]);
  assert.deepEqual(ids, copy);
});

test('sampleNodes: different seeds pick different subsets, and every node gets picked about equally often', () => {
  const ids = Array.from({ length: 20 }, (_, i) => i);
  const subsets = new Set<string>();
  const counts = new Array<number>(20).fill(0);
  const trials = 2000;
  for (let seed = 0; seed < trials; seed++) {
    const picked = sampleNodes(ids, 0.25, 1, new Rng(seed));
    assert.equal(picked.length, 5);
    subsets.add(picked.join(','));
    for (const id of picked) counts[id]++;
  }
  assert.ok(subsets.size > trials / 2, `only ${subsets.size} distinct subsets`);
  for (const c of counts) assert.ok(Math.abs(c / trials - 0.25) < 0.05, `node picked with frequency ${c / trials}`);
});

test('bad fraction or minNodes throw', () => {
  for (const f of [0, -0.1, 1.0001, 2, NaN, Infinity])
    assert.throws(() => sampleCount(10, f, 1), /fraction/, `fraction ${f}`);
  for (const m of [0, -1, 1.5, NaN]) assert.throws(() => sampleCount(10, 0.5, m), /minimum/, `minNodes ${m}`);
  assert.throws(() => sampleNodes([1, 2, 3], 0, 1, new Rng(1)));
  assert.throws(() => sampleNodes([1, 2, 3], 0.5, 0, new Rng(1)));
});
