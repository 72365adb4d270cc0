import test from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { reconnectDelay } from './reconnect-delay.js';

test('the reconnect wait lies in the upper half of a ceiling that doubles from min to max', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 2000 }),
      fc.integer({ min: 1, max: 5000 }),
      fc.integer({ min: 0, max: 100_000 }),
      fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      (attempt, minMs, extra, r) => {
        const backoff = { minMs, maxMs: minMs + extra };
        const ceiling = Math.min(backoff.maxMs, minMs * 2 ** attempt); // naive reference
        const delay = reconnectDelay(attempt, backoff, () => r);
        assert.ok(Number.isFinite(delay));
        assert.ok(
          delay >= Math.floor(ceiling / 2) && delay <= ceiling,
          `${delay} outside [${ceiling / 2}, ${ceiling}]`,
        );
      },
    ),
  );
  assert.equal(
    reconnectDelay(0, { minMs: 500, maxMs: 10_000 }, () => 0),
    250,
  );
  assert.equal(
    reconnectDelay(3, { minMs: 500, maxMs: 10_000 }, () => 0.999_999),
    4000,
  );
  assert.equal(
    reconnectDelay(40, { minMs: 500, maxMs: 10_000 }, () => 0),
    5000,
  );
});

test('a fleet dropped at one instant spreads its retries instead of knocking together', () => {
  // 10,000 nodes' first retries with the platform's random source: at most a few share any one millisecond.
  const perMs = new Map<number, number>();
  for (let i = 0; i < 10_000; i++) {
    const d = reconnectDelay(0, { minMs: 500, maxMs: 10_000 });
    perMs.set(d, (perMs.get(d) ?? 0) + 1);
  }
  assert.ok(perMs.size > 200, `only ${perMs.size} distinct retry times`);
  assert.ok(Math.max(...perMs.values()) < 150, `${Math.max(...perMs.values())} nodes retry in the same millisecond`);
});
