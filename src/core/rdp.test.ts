import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  computeRdp,
  DEFAULT_ORDERS,
  erfc,
  erfcx,
  getPrivacySpent,
  logAdd,
  logErfc,
  logSub,
  RdpAccountant,
  type RdpAccountantState,
} from './rdp.ts';

// ---------- helpers ----------

function assertRel(actual: number, expected: number, rel: number, what = '') {
  const diff = Math.abs(actual - expected);
  assert.ok(
    diff <= rel * Math.abs(expected),
    `${what}: got ${actual}, expected ${expected} (rel diff ${diff / Math.abs(expected)} > ${rel})`,
  );
}

/**
 * RDP values are log(A) / (alpha - 1) with log(A) a log of a sum of terms of order 1, so float64 fixes
 * log(A) only to an ABSOLUTE ~1e-15..1e-13: near log(A) = 0 (tiny q, big sigma) the relative error of rdp
 * can be large while the value is still exact to the last bits that matter. Tolerance: abs on log(A) + rel.
 */
function assertRdpClose(actual: number, expected: number, alpha: number, what: string, absLogA = 1e-12, rel = 1e-9) {
  const diff = Math.abs(actual - expected);
  const tol = absLogA / (alpha - 1) + rel * Math.abs(expected);
  assert.ok(diff <= tol, `${what} (alpha ${alpha}): got ${actual}, expected ${expected} (diff ${diff} > tol ${tol})`);
}

// ---------- erfc: Cody's rational approximations against extended-precision values ----------

// erfc at 4, 4.5, ..., 30: MPFR values published with the Forth port of Cody's CALERF (K. Myneni's FSL).
const ERFC_TAIL: [number, number][] = [
  [4.0, 1.541725790028001885215967348688404857215e-8],
  [5.0, 1.537459794428034850188343485383378890118e-12],
  [6.5, 3.842148327120647469875804543768776621449e-20],
  [10.0, 2.088487583762544757000786294957788611561e-45],
  [15.5, 1.663201640048872334149102741177324070423e-106],
  [20.0, 5.395865611607900928934999167905345604088e-176],
  [26.0, 5.663192408856142846475727896926092580329e-296],
];
// erfc in the first two intervals (|x| <= 0.46875 and up to 4), computed with mpmath at 40 digits.
const ERFC_HEAD: [number, number][] = [
  [0.1, 0.8875370839817151077967],
  [0.4, 0.5716076449533315448964],
  [0.5, 0.4795001221869534623173],
  [1.0, 0.1572992070502851306588],
  [2.5, 0.0004069520174449589395642],
  [3.0, 0.00002209049699858544137278],
];
// log(erfc(x)) and exp(x^2) erfc(x), computed with mpmath at 40 digits.
const LOG_ERFC: [number, number, number][] = [
  [-30, 0.69314718055994530942, Infinity], // exp(900) erfc(-30) = 1.47e391 overflows
  [-5, 0.69314718055917657952, 144009798674.66104041],
  [-1, 0.61123231767807049464, 5.0089800807622834663],
  [-0.3, 0.28414589714140825864, 1.4537492328427655735],
  [0, 0, 1],
  [0.1, -0.11930497373739559833, 0.89645697996912664193],
  [0.46875, -0.67848218561439609899, 0.63206968924955607816],
  [0.5, -0.73501112983708440303, 0.61569034419292587487],
  [1, -1.8496055099332482486, 0.42758357615580700441],
  [2, -5.3649412646166375745, 0.25539567631050574387],
  [3.9, -17.173871216435403526, 0.14031418160068973267],
  [4, -17.987778312103006503, 0.13699945762506138989],
  [4.1, -18.821154183082650817, 0.13383411641865198274],
  [10, -102.87988902484488857, 0.056140992743822585858],
  [26, -679.83119976319423026, 0.021683584850562906616],
  [27, -732.86888650789741098, 0.020881607990420940674],
  [30, -903.97411711064387808, 0.018795888861416751497],
  [50, -2504.4845878484513719, 0.0112815362653237725],
  [100, -10005.177585122664333, 0.0056416137829894329036],
  [1000, -1000007.4801207219062, 0.0005641893014533876542],
  [1e5, -10000000012.085290408, 5.641895835195468077e-6],
  [1e8, -10000000000000018.993, 5.6418958354775625874e-9],
];

test("erfc: matches extended-precision values in all three of Cody's intervals, both signs", () => {
  for (const [x, want] of ERFC_TAIL) {
    assertRel(erfc(x), want, 4e-15, `erfc(${x})`);
    assertRel(erfc(-x), 2 - want, 1e-16, `erfc(${-x})`);
  }
  for (const [x, want] of ERFC_HEAD) {
    assertRel(erfc(x), want, 4e-15, `erfc(${x})`);
    assertRel(erfc(-x), 2 - want, 1e-15, `erfc(${-x})`);
  }
  assert.equal(erfc(0), 1);
  assert.equal(erfc(27), 0); // below the smallest subnormal; logErfc handles this range
  assert.equal(erfc(Infinity), 0);
  assert.equal(erfc(-Infinity), 2);
  assert.ok(Number.isNaN(erfc(NaN)));
});

test('erfcx and logErfc: match extended-precision values from x = -30 to 1e8', () => {
  for (const [x, logWant, erfcxWant] of LOG_ERFC) {
    if (logWant === 0) assert.equal(logErfc(x), 0);
    else assertRel(logErfc(x), logWant, 4e-15, `logErfc(${x})`);
    if (erfcxWant === Infinity) assert.equal(erfcx(x), Infinity);
    else assertRel(erfcx(x), erfcxWant, 4e-15, `erfcx(${x})`);
  }
  assert.equal(logErfc(Infinity), -Infinity);
  assert.equal(logErfc(-Infinity), Math.LN2);
  assert.equal(erfcx(-27), Infinity);
  assert.ok(Number.isNaN(logErfc(NaN)));
});

test('logErfc: equals log(erfc) wherever erfc does not underflow, and the asymptotic series far out', () => {
  fc.assert(
    fc.property(fc.double({ min: -40, max: 26, noNaN: true }), (x) => {
      const want = Math.log(erfc(x));
      const got = logErfc(x);
      assert.ok(Math.abs(got - want) <= 1e-14 * Math.max(1, Math.abs(want)), `x=${x}: ${got} vs ${want}`);
    }),
    { numRuns: 300 },
  );
  // erfc(x) = exp(-x^2) / (x sqrt(pi)) * sum_n (-1)^n (2n-1)!! u^n, u = 1/(2x^2); the error is below the
  // first omitted term, 10395 u^6 < 1e-17 for x >= 30.
  fc.assert(
    fc.property(fc.double({ min: 30, max: 1e150, noNaN: true }), (x) => {
      const u = 1 / (2 * x * x);
      const series =
        -x * x - Math.log(x * Math.sqrt(Math.PI)) + Math.log1p(u * (-1 + u * (3 + u * (-15 + u * (105 - 945 * u)))));
      assertRel(logErfc(x), series, 1e-15, `logErfc(${x})`);
    }),
    { numRuns: 200 },
  );
});

test('logErfc: continuous across the branch points (0.46875, 0.5, 4, 26.543)', () => {
  for (const b of [0.46875, 0.5, 4, 26.543]) {
    const h = 1e-9;
    const lo = logErfc(b - h);
    const hi = logErfc(b + h);
    // d/dx log erfc(x) = -2 exp(-x^2) / (sqrt(pi) erfc(x)), at most ~2x + 2 here.
    const slope = 2 * b + 2;
    assert.ok(Math.abs(hi - lo) <= 2 * h * slope + 1e-13 * Math.abs(lo), `jump at ${b}: ${lo} -> ${hi}`);
    assert.ok(hi < lo, `not decreasing at ${b}`);
  }
});

// ---------- log-space helpers ----------

test('logAdd / logSub: match the direct formula where it does not overflow, handle log(0) = -Infinity', () => {
  const moderate = fc.double({ min: -50, max: 50, noNaN: true });
  fc.assert(
    fc.property(moderate, moderate, (a, b) => {
      const sum = Math.log(Math.exp(a) + Math.exp(b));
      assert.ok(Math.abs(logAdd(a, b) - sum) <= 1e-14 * Math.max(1, Math.abs(sum)));
      assert.equal(logAdd(a, b), logAdd(b, a));
      const [hi, lo] = a >= b ? [a, b] : [b, a];
      if (hi - lo > 1e-6) {
        const diff = Math.log(Math.exp(hi) - Math.exp(lo));
        // log(e^hi - e^lo) is ill-conditioned only when hi ~ lo; away from that, tight agreement.
        assert.ok(Math.abs(logSub(hi, lo) - diff) <= 1e-9 * Math.max(1, Math.abs(diff)), `logSub(${hi}, ${lo})`);
      }
    }),
    { numRuns: 300 },
  );
  assert.equal(logAdd(-Infinity, 3), 3);
  assert.equal(logAdd(3, -Infinity), 3);
  assert.equal(logAdd(-Infinity, -Infinity), -Infinity);
  assert.equal(logAdd(1000, 1000), 1000 + Math.LN2); // exp(1000) overflows; log space does not
  assert.equal(logAdd(0, -800), 0);
  assert.equal(logSub(3, -Infinity), 3);
  assert.equal(logSub(5, 5), -Infinity);
  assert.equal(logSub(1000, 0), 1000); // expm1(1000) overflows: e^0 is negligible next to e^1000
  assertRel(logSub(1000, 999), 1000 + Math.log(1 - Math.exp(-1)), 1e-15, 'logSub(1000, 999)');
  assert.throws(() => logSub(1, 2), /non-negative/);
});

// ---------- RDP of the sampled Gaussian mechanism ----------

test("DEFAULT_ORDERS: Opacus' default alphas", () => {
  assert.equal(DEFAULT_ORDERS.length, 151);
  assert.deepEqual(DEFAULT_ORDERS.slice(0, 3), [1.1, 1.2, 1.3]);
  assert.equal(DEFAULT_ORDERS[98], 10.9);
  assert.deepEqual(
    DEFAULT_ORDERS.slice(99),
    Array.from({ length: 52 }, (_, k) => 12 + k),
  );
  // Same floats as Python's 1 + x / 10.0.
  for (let x = 1; x < 100; x++) assert.equal(DEFAULT_ORDERS[x - 1], 1 + x / 10.0);
  assert.ok(Object.isFrozen(DEFAULT_ORDERS));
});

test('Opacus reference: sigma 1.5, q 0.04, 2250 steps, delta 1e-5 gives epsilon 7.329 (best alpha 3.9)', () => {
  const rdp = computeRdp(0.04, 1.5, 2250, DEFAULT_ORDERS);
  const { epsilon, bestAlpha } = getPrivacySpent(DEFAULT_ORDERS, rdp, 1e-5);
  assert.ok(Math.abs(epsilon - 7.329) < 5e-4, `epsilon ${epsilon}`);
  // Opacus' test_rdp_accountant asserts assertAlmostEqual(epsilon, 7.32911117143), i.e. 7 decimals.
  assert.ok(Math.abs(epsilon - 7.32911117143) < 5e-8, `epsilon ${epsilon}`);
  assert.equal(bestAlpha, 3.9);

  // The same through the accountant, one step at a time (as Opacus' test does).
  const acc = new RdpAccountant();
  for (let t = 0; t < 2250; t++) acc.step(0.04, 1.5);
  assert.deepEqual(acc.history, [{ q: 0.04, noiseMultiplier: 1.5, steps: 2250 }]);
  const spent = acc.getPrivacySpent(1e-5);
  assert.ok(Math.abs(spent.epsilon - 7.32911117143) < 5e-8);
  assert.equal(spent.bestAlpha, 3.9);
});

// Computed with a transcription of opacus/accountants/analysis/rdp.py (SciPy 1.17.1: special.binom,
// special.log_ndtr), which reproduces Opacus' 7.32911117143 above. Integer and fractional orders both.
const OPACUS_RDP = [
  {
    q: 0.04,
    sigma: 1.5,
    orders: [1.5, 2, 3.9, 8, 32, 63],
    rdp: [
      0.0006631116940563884, 0.000894996966873696, 0.0018332021995636277, 0.004271584526737403, 3.788426314311532,
      10.729206823144093,
    ],
  },
  {
    q: 0.01,
    sigma: 1.1,
    orders: [1.25, 2, 5.5, 10, 20],
    rdp: [
      7.928005502768349e-5, 0.00012851008160514807, 0.00037813174368723455, 0.0008075821730220518, 3.4169310395609327,
    ],
  },
  {
    q: 0.3,
    sigma: 0.8,
    orders: [1.1, 2, 2.5, 7, 40],
    rdp: [0.10712429888495124, 0.29219635749993056, 0.48110303233109225, 4.064346454037379, 30.015156098127243],
  },
  {
    q: 0.0001,
    sigma: 4.0,
    orders: [1.5, 3, 12.5, 63],
    rdp: [4.837090727960458e-10, 9.674232729397615e-10, 4.031182525691809e-9, 2.0323922517947653e-8],
  },
  {
    q: 0.5,
    sigma: 0.5,
    orders: [1.1, 1.9, 4, 9.9],
    rdp: [0.7926317795729952, 2.4239735386299937, 7.075811955620999, 19.02897111375916],
  },
  {
    q: 0.9,
    sigma: 2.0,
    orders: [1.3, 6, 6.5, 50],
    rdp: [0.13265733322741885, 0.662014983949814, 0.7214423492835356, 6.142489812269092],
  },
];
const OPACUS_EPS = [
  { q: 0.01, sigma: 1.1, steps: 10000, delta: 1e-5, epsilon: 5.63199236854841, bestAlpha: 4.7 },
  { q: 0.1, sigma: 1.0, steps: 100, delta: 1e-6, epsilon: 8.914791986329927, bestAlpha: 3.3 },
  { q: 0.001, sigma: 0.7, steps: 100000, delta: 1e-5, epsilon: 4.061584683972039, bestAlpha: 5.3 },
  { q: 0.2, sigma: 3.0, steps: 500, delta: 1e-8, epsilon: 10.124814772195165, bestAlpha: 4.5 },
];

test('computeRdp / getPrivacySpent: agree with the Opacus (SciPy) computation', () => {
  for (const c of OPACUS_RDP) {
    const got = computeRdp(c.q, c.sigma, 1, c.orders);
    c.orders.forEach((a, k) => assertRdpClose(got[k], c.rdp[k], a, `q=${c.q} sigma=${c.sigma}`, 1e-12, 1e-10));
  }
  for (const c of OPACUS_EPS) {
    const got = getPrivacySpent(DEFAULT_ORDERS, computeRdp(c.q, c.sigma, c.steps, DEFAULT_ORDERS), c.delta);
    assertRel(got.epsilon, c.epsilon, 1e-10, `epsilon q=${c.q} sigma=${c.sigma}`);
    assert.equal(got.bestAlpha, c.bestAlpha);
  }
});

// ---------- independent reference: A_alpha by direct numerical integration ----------

/**
 * log A_alpha = log E_{z ~ N(0, sigma^2)} [((1 - q) + q exp((2z - 1) / (2 sigma^2)))^alpha] by the
 * trapezoid rule on a uniform grid (spectrally accurate for this analytic integrand), in log space, divided
 * by the same rule applied to the Gaussian density alone so that grid errors in the normalisation cancel.
 * Shares no code with rdp.ts: no erfc, no binomials, no series.
 */
function quadratureLogA(q: number, sigma: number, alpha: number): number {
  const s2 = sigma * sigma;
  const h = sigma / 16;
  const lo = -14 * sigma;
  const hi = alpha + 14 * sigma; // the q-part of the integrand peaks near z = alpha
  const logTerms: number[] = [];
  const logNorm: number[] = [];
  for (let z = lo; z <= hi; z += h) {
    const logPhi = (-z * z) / (2 * s2);
    const t = (2 * z - 1) / (2 * s2);
    const a = Math.log1p(-q);
    const b = Math.log(q) + t;
    const mix = Math.max(a, b) + Math.log1p(Math.exp(-Math.abs(a - b)));
    logTerms.push(logPhi + alpha * mix);
    logNorm.push(logPhi);
  }
  const lse = (xs: number[]) => {
    const m = Math.max(...xs);
    let s = 0;
    for (const x of xs) s += Math.exp(x - m);
    return m + Math.log(s);
  };
  return lse(logTerms) - lse(logNorm);
}

test('computeRdp: matches direct numerical integration of A_alpha (integer and fractional orders)', () => {
  const orderArb = fc.oneof(
    fc.integer({ min: 2, max: 40 }),
    fc.double({ min: 1.05, max: 40, noNaN: true }).filter((a) => !Number.isInteger(a)),
  );
  fc.assert(
    fc.property(
      fc.double({ min: -4, max: -0.05, noNaN: true }),
      fc.double({ min: 0.4, max: 6, noNaN: true }),
      orderArb,
      (log10q, sigma, alpha) => {
        const q = 10 ** log10q;
        const want = quadratureLogA(q, sigma, alpha) / (alpha - 1);
        const [got] = computeRdp(q, sigma, 1, [alpha]);
        assertRdpClose(got, want, alpha, `q=${q} sigma=${sigma}`, 1e-11, 1e-9);
      },
    ),
    { numRuns: 60 },
  );
});

test('computeRdp: integer orders equal the plain binomial sum; fractional orders are continuous with them', () => {
  // A_alpha = sum_i C(alpha, i) q^i (1 - q)^(alpha - i) exp((i^2 - i) / (2 sigma^2)), no log space.
  const naive = (q: number, sigma: number, alpha: number) => {
    let a = 0;
    let binom = 1;
    for (let i = 0; i <= alpha; i++) {
      a += binom * q ** i * (1 - q) ** (alpha - i) * Math.exp((i * i - i) / (2 * sigma * sigma));
      binom = (binom * (alpha - i)) / (i + 1);
    }
    return Math.log(a) / (alpha - 1);
  };
  for (const [q, sigma] of [
    [0.01, 1],
    [0.2, 0.7],
    [0.6, 2],
    [0.05, 4],
  ]) {
    for (const alpha of [2, 3, 5, 8, 13]) {
      const [got] = computeRdp(q, sigma, 1, [alpha]);
      assertRdpClose(got, naive(q, sigma, alpha), alpha, `q=${q} sigma=${sigma}`, 1e-13, 1e-12);
      // alpha * (1 +- 1e-9) goes through the fractional series; RDP is smooth in alpha.
      const [below, above] = computeRdp(q, sigma, 1, [alpha * (1 - 1e-9), alpha * (1 + 1e-9)]);
      assert.ok(below <= got * (1 + 1e-9) && got <= above * (1 + 1e-9), `not monotone around alpha=${alpha}`);
      assertRel(below, got, 1e-6, `frac below ${alpha}`);
      assertRel(above, got, 1e-6, `frac above ${alpha}`);
    }
  }
});

test('computeRdp: special cases (q = 0, q = 1 is the Gaussian mechanism, sigma = 0, steps = 0, alpha = Infinity)', () => {
  const orders = [1.5, 2, 3.7, 10, 63, 256];
  assert.deepEqual(
    computeRdp(0, 1, 100, orders),
    orders.map(() => 0),
  );
  assert.deepEqual(
    computeRdp(0, 0, 100, orders),
    orders.map(() => 0),
  ); // nobody sampled: nothing released
  assert.deepEqual(
    computeRdp(0.3, 0, 1, orders),
    orders.map(() => Infinity),
  );
  assert.deepEqual(
    computeRdp(0.3, 0, 0, orders),
    orders.map(() => 0),
  );
  assert.deepEqual(
    computeRdp(0.3, 1.2, 0, orders),
    orders.map(() => 0),
  );
  assert.deepEqual(computeRdp(0.3, 1.2, 5, [Infinity]), [Infinity]);
  fc.assert(
    fc.property(
      fc.double({ min: 0.1, max: 100, noNaN: true }),
      fc.integer({ min: 1, max: 1_000_000 }),
      (sigma, steps) => {
        const got = computeRdp(1, sigma, steps, orders);
        orders.forEach((a, k) => assertRel(got[k], (a * steps) / (2 * sigma * sigma), 4e-16, `alpha ${a}`));
      },
    ),
    { numRuns: 100 },
  );
});

test('computeRdp: monotone in steps, q, 1/sigma and alpha; additive over steps', () => {
  const orders = [1.25, 2, 3.5, 8, 20, 63];
  fc.assert(
    fc.property(
      fc.double({ min: 1e-4, max: 0.95, noNaN: true }),
      fc.double({ min: 1e-4, max: 0.95, noNaN: true }),
      fc.double({ min: 0.5, max: 5, noNaN: true }),
      fc.double({ min: 0.5, max: 5, noNaN: true }),
      fc.integer({ min: 1, max: 5000 }),
      fc.integer({ min: 1, max: 5000 }),
      (qa, qb, sa, sb, ta, tb) => {
        const [q1, q2] = qa <= qb ? [qa, qb] : [qb, qa];
        const [s1, s2] = sa <= sb ? [sa, sb] : [sb, sa];
        // Rounding slack: absolute on each step's log(A) (see assertRdpClose), relative on rdp.
        const slack = (x: number, a: number) => x * 1e-9 + (ta * 1e-12) / (a - 1);
        const base = computeRdp(q1, s2, ta, orders);
        const moreQ = computeRdp(q2, s2, ta, orders);
        const lessNoise = computeRdp(q1, s1, ta, orders);
        const both = computeRdp(q1, s2, ta + tb, orders);
        const other = computeRdp(q1, s2, tb, orders);
        orders.forEach((a, k) => {
          assert.ok(base[k] >= 0, `negative rdp at alpha ${a}`);
          assert.ok(base[k] <= moreQ[k] + slack(moreQ[k], a), `q ${q1} -> ${q2} decreased rdp at alpha ${a}`);
          assert.ok(
            base[k] <= lessNoise[k] + slack(lessNoise[k], a),
            `sigma ${s2} -> ${s1} decreased rdp at alpha ${a}`,
          );
          assert.ok(base[k] <= both[k], `more steps decreased rdp at alpha ${a}`);
          assertRel(both[k], base[k] + other[k], 1e-12, `rdp(${ta}+${tb}) vs rdp(${ta}) + rdp(${tb}) at alpha ${a}`);
          if (k > 0)
            assert.ok(
              base[k - 1] <= base[k] + slack(base[k], orders[k - 1]),
              `rdp decreased from alpha ${orders[k - 1]} to ${a}`,
            );
        });
        const eps = (rdp: number[]) => getPrivacySpent(orders, rdp, 1e-5).epsilon;
        assert.ok(eps(base) <= eps(moreQ) + 1e-9 && eps(base) <= eps(lessNoise) + 1e-9 && eps(base) <= eps(both));
      },
    ),
    { numRuns: 40 },
  );
});

test('computeRdp: rejects invalid arguments', () => {
  assert.throws(() => computeRdp(-0.1, 1, 1, [2]), /sampling rate/);
  assert.throws(() => computeRdp(1.1, 1, 1, [2]), /sampling rate/);
  assert.throws(() => computeRdp(NaN, 1, 1, [2]), /sampling rate/);
  assert.throws(() => computeRdp(0.1, -1, 1, [2]), /noise multiplier/);
  assert.throws(() => computeRdp(0.1, Infinity, 1, [2]), /noise multiplier/);
  assert.throws(() => computeRdp(0.1, 1, -1, [2]), /steps/);
  assert.throws(() => computeRdp(0.1, 1, 1, []), /non-empty/);
  assert.throws(() => computeRdp(0.1, 1, 1, [1]), /orders\[0\]/);
  assert.throws(() => computeRdp(0.1, 1, 1, [2, 0.5]), /orders\[1\]/);
});

// ---------- RDP -> (epsilon, delta) ----------

test('getPrivacySpent: Balle et al. Theorem 21 at each order, minimised; NaN ignored; first minimum wins', () => {
  // Hand-computed: alpha 2, rdp 1, delta 1e-5: 1 - (log 1e-5 + log 2) / 1 + log(1/2).
  const one = getPrivacySpent([2], [1], 1e-5);
  assertRel(one.epsilon, 1 - (Math.log(1e-5) + Math.log(2)) + Math.log(0.5), 1e-15, 'epsilon');
  assert.equal(one.bestAlpha, 2);

  const orders = [2, 4, 8];
  const rdp = [0.5, 0.9, 3];
  const per = orders.map((a, k) => rdp[k] - (Math.log(1e-6) + Math.log(a)) / (a - 1) + Math.log((a - 1) / a));
  const best = Math.min(...per);
  const got = getPrivacySpent(orders, rdp, 1e-6);
  assert.equal(got.epsilon, best);
  assert.equal(got.bestAlpha, orders[per.indexOf(best)]);

  assert.equal(getPrivacySpent([2, 3], [NaN, 1], 1e-5).bestAlpha, 3);
  assert.deepEqual(getPrivacySpent([2, 3], [NaN, NaN], 1e-5), { epsilon: Infinity, bestAlpha: NaN });
  assert.deepEqual(getPrivacySpent([2, 3], [Infinity, Infinity], 1e-5), { epsilon: Infinity, bestAlpha: 2 });
  // Ties: the first order with the minimum.
  const tie = getPrivacySpent([2, 2], [1, 1], 1e-5);
  assert.equal(tie.bestAlpha, 2);

  assert.throws(() => getPrivacySpent([2, 3], [1], 1e-5), /RDP values/);
  assert.throws(() => getPrivacySpent([2], [1], 0), /delta/);
  assert.throws(() => getPrivacySpent([2], [1], 1), /delta/);
  assert.throws(() => getPrivacySpent([1], [1], 1e-5), /orders/);
});

// ---------- accountant ----------

test('RdpAccountant: merges repeated steps, composes varying (q, sigma) additively', () => {
  const acc = new RdpAccountant();
  assert.deepEqual(acc.getPrivacySpent(1e-5), { epsilon: 0, bestAlpha: 0 }); // Opacus: (0, 0) before any step
  acc.step(0.01, 1.0);
  acc.step(0.01, 1.0, 99);
  acc.step(0.02, 1.3, 50);
  acc.step(0.01, 1.0, 10);
  assert.deepEqual(acc.history, [
    { q: 0.01, noiseMultiplier: 1.0, steps: 100 },
    { q: 0.02, noiseMultiplier: 1.3, steps: 50 },
    { q: 0.01, noiseMultiplier: 1.0, steps: 10 },
  ]);
  assert.equal(acc.totalSteps, 160);

  const parts = [computeRdp(0.01, 1.0, 110, DEFAULT_ORDERS), computeRdp(0.02, 1.3, 50, DEFAULT_ORDERS)];
  const sum = DEFAULT_ORDERS.map((_, k) => parts[0][k] + parts[1][k]);
  const rdp = acc.rdp();
  sum.forEach((s, k) => assertRel(rdp[k], s, 1e-13, `order ${DEFAULT_ORDERS[k]}`));
  const want = getPrivacySpent(DEFAULT_ORDERS, sum, 1e-5);
  const got = acc.getPrivacySpent(1e-5);
  assertRel(got.epsilon, want.epsilon, 1e-12, 'epsilon');
  assert.equal(got.bestAlpha, want.bestAlpha);
  assert.equal(acc.getEpsilon(1e-5), got.epsilon);

  // Custom orders (bypassing the cache of the default ones) agree with a direct computation too.
  const orders = [2, 4.5, 16];
  const direct = getPrivacySpent(
    orders,
    orders.map((_, k) => computeRdp(0.01, 1.0, 110, orders)[k] + computeRdp(0.02, 1.3, 50, orders)[k]),
    1e-5,
  );
  assertRel(acc.getEpsilon(1e-5, orders), direct.epsilon, 1e-12, 'custom orders');

  // More privacy spent with every step; a smaller delta costs more epsilon.
  const before = acc.getEpsilon(1e-5);
  acc.step(0.02, 1.3);
  assert.ok(acc.getEpsilon(1e-5) > before);
  assert.ok(acc.getEpsilon(1e-7) > acc.getEpsilon(1e-5));
});

test('RdpAccountant: state survives JSON and resumes exactly; bad states and steps are rejected', () => {
  const a = new RdpAccountant();
  a.step(0.05, 0.9, 30);
  a.step(0.1, 2, 7);
  const saved = JSON.parse(JSON.stringify(a.state())) as RdpAccountantState;
  const b = new RdpAccountant(saved);
  assert.deepEqual(b.state(), a.state());
  a.step(0.1, 2, 3);
  b.step(0.1, 2, 3);
  assert.equal(b.getEpsilon(1e-5), a.getEpsilon(1e-5));
  // state() is a copy.
  const s = a.state();
  s.history[0].steps = 1;
  assert.equal(a.history[0].steps, 30);

  assert.throws(
    () => new RdpAccountant({ kind: 'gaussian', history: [] } as unknown as RdpAccountantState),
    /not an RDP/,
  );
  assert.throws(
    () => new RdpAccountant({ kind: 'rdp', history: [{ q: 2, noiseMultiplier: 1, steps: 1 }] }),
    /sampling rate/,
  );
  assert.throws(() => new RdpAccountant({ kind: 'rdp', history: [{ q: 0.1, noiseMultiplier: 1, steps: 0 }] }), /steps/);
  assert.throws(
    () => new RdpAccountant({ kind: 'rdp', history: [{ q: 0.1, noiseMultiplier: 1, steps: 1.5 }] }),
    /steps/,
  );
  assert.throws(() => a.step(0.1, 1, 0), /steps/);
  assert.throws(() => a.step(0.1, -1), /noise multiplier/);
  assert.throws(() => a.getEpsilon(0), /delta/);
  assert.throws(() => new RdpAccountant().getEpsilon(2), /delta/);
});
