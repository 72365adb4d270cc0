import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { nodeShifts, parseFeatureShift, shiftImages } from './feature-shift.js';
import { Rng } from './rng.js';

const image = (h: number, w: number, seed: number) => {
  const r = new Rng(seed);
  return Float32Array.from({ length: h * w }, () => r.uniform(0, 1));
};

test('parses the spec; every key optional; bad input names what is wrong', () => {
  assert.deepEqual(parseFeatureShift('feature-shift:contrast=0.5,brightness=0.2,rotate=30'), {
    contrast: 0.5,
    brightness: 0.2,
    rotate: 30,
  });
  assert.deepEqual(parseFeatureShift('feature-shift'), { contrast: 0, brightness: 0, rotate: 0 });
  assert.throws(() => parseFeatureShift('shift:contrast=1'), /starts with 'shift', not 'feature-shift'/);
  assert.throws(() => parseFeatureShift('feature-shift:blur=1'), /unknown key 'blur'/);
  assert.throws(() => parseFeatureShift('feature-shift:contrast=2'), /contrast must be a number from 0 to 1, got '2'/);
  assert.throws(() => parseFeatureShift('feature-shift:rotate='), /rotate must be a number from 0 to 180/);
});

test('node transforms are deterministic by seed, within their ranges, and differ between nodes', () => {
  const spec = parseFeatureShift('feature-shift:contrast=0.5,brightness=0.2,rotate=30');
  const a = nodeShifts(spec, 6, new Rng(3).fork('feature-shift'));
  assert.deepEqual(a, nodeShifts(spec, 6, new Rng(3).fork('feature-shift')));
  for (const s of a) {
    assert.ok(s.contrast >= 0.5 && s.contrast <= 1.5 && Math.abs(s.brightness) <= 0.2 && Math.abs(s.angle) <= 30);
  }
  assert.notDeepEqual(a[0], a[1]);
});

test('the identity transform leaves images as they are; contrast and brightness follow the formula, clamped', () => {
  const x = image(5, 7, 1);
  assert.deepEqual(shiftImages(x, 1, 5, 7, 1, { contrast: 1, brightness: 0, angle: 0 }), x);
  const y = shiftImages(x, 1, 5, 7, 1, { contrast: 1.4, brightness: 0.1, angle: 0 });
  for (let i = 0; i < x.length; i++) {
    const want = Math.min(1, Math.max(0, 1.4 * (x[i] - 0.5) + 0.6));
    assert.ok(Math.abs(y[i] - want) < 1e-6);
  }
});

test('rotation by 90 degrees moves pixel (i, j) of a square image to (j, s - 1 - i), as a naive reference', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 0, max: 1000 }), (s, seed) => {
      const x = image(s, s, seed);
      const y = shiftImages(x, 1, s, s, 1, { contrast: 1, brightness: 0, angle: 90 });
      for (let i = 0; i < s; i++)
        for (let j = 0; j < s; j++) assert.ok(Math.abs(y[j * s + (s - 1 - i)] - x[i * s + j]) < 1e-5);
    }),
  );
});
