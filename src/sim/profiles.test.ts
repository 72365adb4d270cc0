import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Rng } from '../core/rng.js';
import {
  builtinProfiles,
  isOnline,
  nextOnline,
  parseProfileSpec,
  profilesFromJson,
  SLOW_FACTOR,
  type DeviceProfile,
} from './profiles.js';

const base = { samplesPerSecond: 2000, downloadBytesPerSecond: 2.5e6, uploadBytesPerSecond: 1.25e6 };

test('uniform: every node the same, always online', () => {
  const p = builtinProfiles('uniform', 5, new Rng(1));
  assert.equal(p.length, 5);
  for (const x of p) {
    assert.deepEqual(x, base);
    assert.ok(isOnline(x, 0) && isOnline(x, 12345.6));
  }
});

test('slow20: exactly floor(0.2 N) nodes 5-10x slower in compute and link, drawn by seed', () => {
  for (const n of [1, 5, 10, 33]) {
    const p = builtinProfiles('slow20', n, new Rng(7));
    const slow = p.filter((x) => x.samplesPerSecond < base.samplesPerSecond);
    assert.equal(slow.length, Math.floor(0.2 * n));
    for (const x of slow) {
      const f = base.samplesPerSecond / x.samplesPerSecond;
      assert.ok(f >= SLOW_FACTOR[0] && f <= SLOW_FACTOR[1], `factor ${f}`);
      assert.ok(Math.abs(base.downloadBytesPerSecond / x.downloadBytesPerSecond - f) < 1e-9 * f);
      assert.ok(Math.abs(base.uploadBytesPerSecond / x.uploadBytesPerSecond - f) < 1e-9 * f);
    }
  }
  assert.deepEqual(builtinProfiles('slow20', 30, new Rng(3)), builtinProfiles('slow20', 30, new Rng(3)));
  assert.notDeepEqual(builtinProfiles('slow20', 30, new Rng(3)), builtinProfiles('slow20', 30, new Rng(4)));
});

test('heavytail: positive rates with a wide spread and valid periodic availability', () => {
  const p = builtinProfiles('heavytail', 200, new Rng(2));
  const speeds = p.map((x) => x.samplesPerSecond).sort((a, b) => a - b);
  assert.ok(speeds.every((s) => s > 0 && Number.isFinite(s)));
  assert.ok(speeds[190] / speeds[10] > 5, 'the 95th percentile is well above the 5th');
  for (const x of p) {
    const a = x.availability!;
    assert.ok(a.periodSeconds >= 60 && a.periodSeconds <= 600 && a.onFraction >= 0.5 && a.onFraction <= 1);
    assert.ok(a.phaseSeconds >= 0 && a.phaseSeconds < a.periodSeconds);
  }
  assert.ok(
    p.some((x) => !isOnline(x, 0)),
    'some nodes start offline',
  );
});

test('profile specs and JSON files: good ones load, bad ones name the problem', () => {
  assert.deepEqual(parseProfileSpec('slow20'), { kind: 'builtin', name: 'slow20' });
  assert.deepEqual(parseProfileSpec('devices.json'), { kind: 'file', path: 'devices.json' });
  assert.throws(() => parseProfileSpec('fast'), /unknown device profile 'fast'.*uniform, slow20, heavytail/);

  const two = [base, { ...base, samplesPerSecond: 10, availability: { periodSeconds: 100, onFraction: 0.5 } }];
  const p = profilesFromJson(JSON.stringify(two), 5);
  assert.deepEqual(
    p.map((x) => x.samplesPerSecond),
    [2000, 10, 2000, 10, 2000],
    'node i takes entry i mod length',
  );
  assert.equal(p[1].availability!.phaseSeconds, 0, 'phase defaults to 0');
  assert.deepEqual(profilesFromJson(JSON.stringify({ profiles: [base] }), 2), [base, base]);

  assert.throws(() => profilesFromJson('{not json', 2, 'f.json'), /f.json: not valid JSON/);
  assert.throws(() => profilesFromJson('[]', 2), /profile file: .*(too_small|>=1|at least)/i);
  assert.throws(() => profilesFromJson(JSON.stringify([{ ...base, samplesPerSecond: -1 }]), 2), /0\.samplesPerSecond/);
  assert.throws(() => profilesFromJson(JSON.stringify([{ ...base, speed: 3 }]), 2), /speed|unrecognized/i);
  assert.throws(
    () => profilesFromJson(JSON.stringify([{ ...base, availability: { periodSeconds: 10, onFraction: 0 } }]), 2),
    /onFraction/,
  );
  assert.throws(() => builtinProfiles('uniform', 0, new Rng(1)), /nodes must be a whole number >= 1/);
});

/** Naive reference: online when the point in the cycle is in the first onFraction of the period. */
function onlineRef(p: DeviceProfile, t: number): boolean {
  const a = p.availability;
  if (!a) return true;
  let x = t + a.phaseSeconds;
  while (x >= a.periodSeconds) x -= a.periodSeconds;
  return x < a.onFraction * a.periodSeconds;
}

test('availability matches a naive reference, and nextOnline is the first online moment', () => {
  fc.assert(
    fc.property(
      fc.double({ min: 1, max: 500, noNaN: true }),
      fc.double({ min: 0.05, max: 0.95, noNaN: true }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.double({ min: 0, max: 5000, noNaN: true }),
      (period, on, phase01, t) => {
        const p: DeviceProfile = {
          ...base,
          availability: { periodSeconds: period, onFraction: on, phaseSeconds: phase01 * period },
        };
        const boundary = ((t + p.availability!.phaseSeconds) % period) / period;
        // Away from the on/off edges (float rounding) the two agree exactly.
        if (Math.abs(boundary - on) > 1e-9 && boundary > 1e-9 && boundary < 1 - 1e-9)
          assert.equal(isOnline(p, t), onlineRef(p, t));
        const next = nextOnline(p, t);
        assert.ok(next >= t && isOnline(p, next));
        assert.ok(next - t <= (1 - on) * period + 1e-6, 'never waits longer than the off part of a period');
        // nothing online strictly between t and next (checked on a grid)
        for (let k = 1; k < 8; k++) {
          const s = t + ((next - t) * k) / 8;
          if (s < next - 1e-6) assert.equal(isOnline(p, s), false);
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('link drops: parsed from the profile suffix, drawn by seed per node and request, delaying the reply', async () => {
  const { parseProfileSpec, dropDelay } = await import('./profiles.js');
  const { VirtualClock } = await import('./clock.js');
  assert.deepEqual(parseProfileSpec('uniform:drop=0.25,offline=30'), {
    kind: 'builtin',
    name: 'uniform',
    dropout: { probability: 0.25, meanOfflineSeconds: 30 },
  });
  assert.deepEqual(parseProfileSpec('p.json:drop=0.1').dropout, { probability: 0.1, meanOfflineSeconds: 60 });
  assert.throws(() => parseProfileSpec('uniform:drop=2'), /drop=P \(0\.\.1\)/);
  assert.throws(() => parseProfileSpec('uniform:drop=0.1,offline=-1'), /offline=SECONDS/);
  assert.throws(() => parseProfileSpec('uniform:offline=5'), /:drop=P\[,offline=S\] adds mid-round drops/);
  const profile = {
    samplesPerSecond: 1000,
    downloadBytesPerSecond: 1e6,
    uploadBytesPerSecond: 1e6,
    dropout: { probability: 0.3, meanOfflineSeconds: 60 },
  };
  assert.equal(dropDelay(profile, 0.5, 0.9), 0, 'u above the probability: no drop');
  assert.ok(Math.abs(dropDelay(profile, 0.1, 1 - Math.exp(-1)) - 60) < 1e-9, 'the inverse CDF at 1 - 1/e is the mean');
  // The clock: a share of requests near the probability is delayed, by about the mean, the same for the same seed.
  const cost = { nodeId: 0, downBytes: 1e6, upBytes: 1e6, samples: 1000 };
  const draw = (seed: number) => {
    const clock = new VirtualClock(
      Array.from({ length: 4 }, () => profile),
      seed,
    );
    return Array.from({ length: 4000 }, (_, i) => clock.duration({ ...cost, nodeId: i % 4 }) - 3);
  };
  const a = draw(5);
  assert.deepEqual(draw(5), a);
  assert.notDeepEqual(draw(6), a);
  const delayed = a.filter((d) => d > 1e-9);
  assert.ok(Math.abs(delayed.length / a.length - 0.3) < 0.03, `drop share ${delayed.length / a.length}`);
  const mean = delayed.reduce((x, y) => x + y, 0) / delayed.length;
  assert.ok(Math.abs(mean - 60) < 6, `mean time away ${mean}`);
});
