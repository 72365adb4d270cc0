import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseStrategy, Strategy, type TrainResult } from './strategy.js';
import { Rng } from '../core/rng.js';
import { assertClose } from '../../test/support/numeric.js';
import { discreteGaussianVector } from '../core/discrete-gaussian.js';
import { GRID_BITS, gridNormal } from '../core/dp-grid.js';

const result = (nodeId: number, vector: Float32Array): TrainResult => ({
  nodeId,
  numExamples: 1 + nodeId,
  steps: 1,
  vector,
  metrics: { loss: 0, accuracy: 0 },
});

/** Rounds of node updates around a moving global: node i moves by a random direction of norm (i + 1) * base. */
function updatesFor(global: Float32Array, round: number, nodes: number, base: number): TrainResult[] {
  const rng = new Rng(99).fork(`updates:${round}`);
  return Array.from({ length: nodes }, (_, i) => {
    const dir = Float64Array.from(global, () => rng.normal());
    const norm = Math.hypot(...dir);
    return result(
      i,
      Float32Array.from(global, (g, j) => g + (dir[j] / norm) * (i + 1) * base),
    );
  });
}

/**
 * The naive reference, straight from Andrew et al. 2021 (Algorithm 1, geometric update) and DP-FedAvg on the
 * fixed-point grid (core/dp-grid.ts): clip each delta to C' (C less the rounding margin), round to steps of
 * C / 2^16, add N_Z(0, s^2) with s = ceil(z_Delta 2^16), scale back and divide by m; then
 * b_bar = (sum_i (1[||d_i|| <= C] - 1/2) + sigma_b g) / m + 1/2 (g the grid count noise of unit variance)
 * and C <- C exp(-eta (b_bar - gamma)). Noise words: the seed's forks 'dp-noise:r' and 'dp-count:r'.
 */
function naiveRound(
  global: Float32Array,
  rs: TrainResult[],
  s: { C: number; z: number; sigmaB: number; gamma: number; eta: number },
  seed: number,
  round: number,
  m: number,
) {
  const zDelta = 1 / Math.sqrt(1 / s.z ** 2 - 1 / (2 * s.sigmaB) ** 2);
  const step = s.C / 2 ** GRID_BITS;
  const clip = s.C - step * (Math.sqrt(global.length) / 2 + 1);
  const noise = discreteGaussianVector(
    new Rng(seed).fork(`dp-noise:${round}`),
    Math.ceil(zDelta * 2 ** GRID_BITS),
    global.length,
  );
  const sum = new Float64Array(global.length);
  let unclipped = 0;
  for (const r of rs) {
    const d = Float32Array.from(r.vector, (v, j) => v - global[j]);
    let sq = 0;
    for (const x of d) sq += x * x;
    const norm = Math.sqrt(sq);
    if (norm <= s.C) unclipped++;
    for (let j = 0; j < d.length; j++) sum[j] += Math.round((d[j] * Math.min(1, clip / norm)) / step);
  }
  const next = Float32Array.from(global, (g, j) => g + ((sum[j] + noise[j]) * step) / m);
  const bBar =
    (unclipped - rs.length / 2 + s.sigmaB * gridNormal(new Rng(seed).fork(`dp-count:${round}`), s.sigmaB)) / m + 0.5;
  return { next, C: s.C * Math.exp(-s.eta * (bBar - s.gamma)) };
}

test('dpfedavg clip=adaptive matches a naive reference of the update rule and the noised count, round after round', () => {
  const spec = 'dpfedavg:clip=adaptive,noise=0.8,clip0=0.5,quantile=0.3,cliplr=0.4,countnoise=2';
  const strategy = new Strategy(parseStrategy(spec));
  const ref = { C: 0.5, z: 0.8, sigmaB: 2, gamma: 0.3, eta: 0.4 };
  let gS: Float32Array = new Float32Array(20).fill(0.25);
  let gN: Float32Array = gS.slice();
  const clips: number[] = [];
  for (let round = 1; round <= 5; round++) {
    const rs = updatesFor(gS, round, 8, 0.2);
    gS = strategy.aggregateTrain(gS, rs, { round, seed: 3, sampled: 10, population: 40, noise: 'seeded' });
    const n = naiveRound(gN, updatesFor(gN, round, 8, 0.2), ref, 3, round, 10);
    gN = n.next;
    ref.C = n.C;
    assertClose(gS, gN, 1e-6, 1e-5);
    assert.ok(
      Math.abs(strategy.dpClipNorm! - ref.C) <= 1e-12 * ref.C,
      `round ${round}: clip ${strategy.dpClipNorm} vs reference ${ref.C}`,
    );
    clips.push(ref.C);
  }
  assert.ok(new Set(clips).size === clips.length, 'the clip norm moves every round');
  // The accountant charges the user's z (the update noise is raised to pay for the count).
  const fixed = new Strategy(parseStrategy('dpfedavg:clip=1,noise=0.8'));
  for (let k = 0; k < 5; k++) {
    strategy.recordPrivacyRound(0.25);
    fixed.recordPrivacyRound(0.25);
  }
  assert.deepEqual(strategy.privacySpent(), fixed.privacySpent());
});

test('adaptive clipping tracks the target quantile of the update norms (no noise)', () => {
  // Norms 0.1, 0.2, ..., 1.0: the median lies between 0.5 and 0.6.
  const strategy = new Strategy(parseStrategy('dpfedavg:clip=adaptive,noise=0,clip0=0.01,quantile=0.5,cliplr=0.2'));
  let g: Float32Array = new Float32Array(8);
  for (let round = 1; round <= 80; round++)
    g = strategy.aggregateTrain(g, updatesFor(g, round, 10, 0.1), { round, seed: 1, sampled: 10, population: 10 });
  const c = strategy.dpClipNorm!;
  assert.ok(c > 0.45 && c < 0.66, `clip norm ${c} should sit near the median norm 0.55`);
});

test('adaptive clip state rides in the checkpoint: a resumed strategy continues bit for bit', () => {
  const spec = parseStrategy('dpfedavg:clip=adaptive,noise=1,clip0=0.3');
  const ctx = (round: number) => ({ round, seed: 5, sampled: 6, population: 6, noise: 'seeded' as const });
  const whole = new Strategy(spec);
  let gw: Float32Array = new Float32Array(10).fill(1);
  for (let round = 1; round <= 4; round++) gw = whole.aggregateTrain(gw, updatesFor(gw, round, 6, 0.2), ctx(round));

  const first = new Strategy(spec);
  let g: Float32Array = new Float32Array(10).fill(1);
  for (let round = 1; round <= 2; round++) g = first.aggregateTrain(g, updatesFor(g, round, 6, 0.2), ctx(round));
  const extraState = JSON.parse(JSON.stringify(first.extraState())) as Record<string, unknown>;
  assert.equal((extraState.adaptiveClip as { round: number }).round, 2);
  const resumed = new Strategy(spec, first.state(), extraState);
  assert.equal(resumed.dpClipNorm, first.dpClipNorm);
  for (let round = 3; round <= 4; round++) g = resumed.aggregateTrain(g, updatesFor(g, round, 6, 0.2), ctx(round));
  assert.deepEqual(g, gw);
  assert.equal(resumed.dpClipNorm, whole.dpClipNorm);
  // A checkpoint without adaptive state (before round 1) starts from clip0; a corrupt one is refused.
  assert.equal(new Strategy(spec, undefined, {}).dpClipNorm, 0.3);
  assert.throws(() => new Strategy(spec, undefined, { adaptiveClip: { kind: 'other' } }), /not an adaptive clip state/);
});

test('dpfedavg clip=adaptive: bad parameters are refused with a reason', () => {
  for (const [text, re] of [
    ['dpfedavg:clip=adaptive', /needs clip and noise/],
    ['dpfedavg:clip=1,noise=1,quantile=0.5', /quantile apply with clip=adaptive only/],
    ['dpfedavg:clip=adaptive,noise=1,quantile=1.5', /quantile must be in \[0, 1\]/],
    ['dpfedavg:clip=adaptive,noise=1,cliplr=0', /cliplr must be in \(0, 10\]/],
    ['dpfedavg:clip=adaptive,noise=1,clip0=-1', /clip0 must be a number >= 0/],
    ['dpfedavg:clip=adaptive,noise=1,countnoise=0.4', /countnoise must exceed noise \/ 2/],
    ['fedavg:clip=adaptive', /clip must be a number/],
    ['fedavg:quantile=0.5', /parameter 'quantile' applies to dpfedavg only/],
  ] as const) {
    assert.throws(() => parseStrategy(text), re, text);
  }
  const cfg = parseStrategy('dpfedavg:clip0=0.2,clip=adaptive,noise=1');
  assert.deepEqual(cfg.adaptive, { initialClip: 0.2, quantile: 0.5, lr: 0.2 });
});
