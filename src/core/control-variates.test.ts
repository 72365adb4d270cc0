import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { feddynServerStep, scaffoldNodeUpdate, scaffoldServerControl, scaffoldShift } from './control-variates.js';

const vec = (n: number) =>
  fc.array(fc.float({ min: -4, max: 4, noNaN: true }), { minLength: n, maxLength: n }).map((a) => Float32Array.from(a));

test('SCAFFOLD invariant: after any rounds of partial participation the server control is the mean of the node controls', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 5 }),
      fc.array(fc.tuple(fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }), vec(3), vec(3)), {
        minLength: 1,
        maxLength: 6,
      }),
      (nodes, rounds) => {
        let c: Float32Array = new Float32Array(3);
        const ci: Float32Array[] = Array.from({ length: nodes }, () => new Float32Array(3));
        const x = new Float32Array([0.5, -1, 2]);
        for (const [takes, drift, noise] of rounds) {
          const deltas: Float32Array[] = [];
          for (let i = 0; i < nodes; i++) {
            if (!takes[i] && deltas.length + (nodes - i - 1) > 0) continue; // at least one node each round
            const y = x.map((v, j) => v - drift[j] * (i + 1) - noise[j]);
            const { delta, next } = scaffoldNodeUpdate(ci[i], c, x, y, 3, 0.1);
            ci[i] = next;
            deltas.push(delta);
          }
          c = scaffoldServerControl(c, deltas, nodes);
        }
        for (let j = 0; j < 3; j++) {
          const mean = ci.reduce((a, v) => a + v[j], 0) / nodes;
          // float32 state: rounding of each stored sum, relative to the controls' size (up to (4+4)/(3*0.1) ~ 27 per round)
          assert.ok(Math.abs(c[j] - mean) <= 1e-4 * (1 + Math.abs(mean)) * rounds.length, `${c[j]} vs ${mean}`);
        }
      },
    ),
    { seed: 13, numRuns: 200 },
  );
});

test('SCAFFOLD node update (option II) and shift against hand-computed values; bad inputs are refused', () => {
  const { delta, next } = scaffoldNodeUpdate(
    new Float32Array([1, 0]),
    new Float32Array([0.5, 2]),
    new Float32Array([1, 1]),
    new Float32Array([0.8, 1.2]),
    4,
    0.05,
  );
  // c_i+ = c_i - c + (x - y)/(K lr) = [1 - 0.5 + 1, 0 - 2 - 1] = [1.5, -3]
  assert.ok(Math.abs(next[0] - 1.5) < 1e-6 && Math.abs(next[1] + 3) < 1e-6, `${next}`);
  assert.ok(Math.abs(delta[0] - 0.5) < 1e-6 && Math.abs(delta[1] + 3) < 1e-6, `${delta}`);
  assert.deepEqual([...scaffoldShift(new Float32Array([1, 2]), new Float32Array([0.5, 3]))], [0.5, -1]);
  assert.throws(
    () =>
      scaffoldNodeUpdate(new Float32Array(2), new Float32Array(2), new Float32Array(2), new Float32Array(2), 0, 0.1),
    /whole number >= 1/,
  );
  assert.throws(
    () => scaffoldServerControl(new Float32Array(2), [new Float32Array(2), new Float32Array(2)], 1),
    /population 1 is smaller than the 2/,
  );
  assert.throws(() => scaffoldShift(new Float32Array(2), new Float32Array(3)), /lengths 2, 3 differ/);
});

test('FedDyn server step: the model is the mean of the locals minus h / alpha; bad alpha is refused', () => {
  const { h, model } = feddynServerStep(
    new Float32Array([0]),
    new Float32Array([0.1]),
    [new Float32Array([1]), new Float32Array([3])],
    0.5,
    4,
  );
  // h = 0.1 - 0.5/4 * (1 + 3) = -0.4; model = 2 + 0.8
  assert.ok(Math.abs(h[0] + 0.4) < 1e-7 && Math.abs(model[0] - 2.8) < 1e-6, `${h} ${model}`);
  assert.throws(
    () => feddynServerStep(new Float32Array(1), new Float32Array(1), [new Float32Array(1)], 0, 1),
    /alpha must be > 0/,
  );
});
