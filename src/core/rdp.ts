/**
 * Rényi-DP accountant for the Sampled Gaussian Mechanism (SGM): each step releases
 * sum of clipped records (sensitivity 1 after normalising by the clip norm) + N(0, sigma^2), where every
 * record is included independently with probability q (Poisson sampling).
 *
 * The RDP of one SGM step at order alpha is log(A_alpha) / (alpha - 1) (Mironov, Talwar and Zhang 2019,
 * "Rényi Differential Privacy of the Sampled Gaussian Mechanism"), with
 *   A_alpha = E_{z ~ N(0, sigma^2)} [ ((1 - q) + q * exp((2z - 1) / (2 sigma^2)))^alpha ].
 * This file computes it exactly as Opacus (opacus/accountants/analysis/rdp.py) and TF-Privacy do:
 *  - integer alpha: the binomial expansion (Mironov et al. Section 3.2),
 *      A = sum_{i=0}^{alpha} C(alpha, i) q^i (1 - q)^(alpha - i) exp((i^2 - i) / (2 sigma^2)),
 *    summed in log space;
 *  - fractional alpha: the two-sided series split at z0 = sigma^2 log(1/q - 1) + 1/2 (Section 3.3, TF-Privacy
 *    `_compute_log_a_frac`), with generalised binomial coefficients and log(erfc), stopped once both new
 *    terms fall below exp(-30);
 *  - q = 0 gives 0, sigma = 0 gives Infinity, q = 1 gives the plain Gaussian mechanism alpha / (2 sigma^2).
 * RDP composes additively over steps, so T identical steps cost T times one step.
 *
 * Conversion to (epsilon, delta) is the one Opacus uses (Balle, Barthe, Gaboardi, Hsu and Sato 2020,
 * "Hypothesis testing interpretations and Renyi differential privacy", Theorem 21):
 *   epsilon = rdp - (log(delta) + log(alpha)) / (alpha - 1) + log((alpha - 1) / alpha),
 * minimised over the orders given (NaN entries ignored, first minimum wins, as numpy's nanargmin).
 * Like Opacus, the result is not clamped at 0 (it only goes negative for orders far above DEFAULT_ORDERS).
 *
 * Pure functions, no platform APIs: runs in Node and in browsers. The only special function needed,
 * erfc, is implemented here (W. J. Cody's rational Chebyshev approximations), with a scaled variant so that
 * log(erfc(x)) stays accurate far beyond where erfc(x) itself underflows (x > 26.5).
 */

// ---------------------------------------------------------------------------------------------------------
// erfc: W. J. Cody, "Rational Chebyshev approximations for the error function", Math. Comp. 23 (1969),
// coefficients as in his SPECFUN routine CALERF (netlib specfun/erf). Relative error ~1e-15 or better.
// ---------------------------------------------------------------------------------------------------------

const SQRPI = 5.6418958354775628695e-1; // 1 / sqrt(pi)
const THRESH = 0.46875;
const XSMALL = 1.11e-16;
const XBIG = 26.543; // erfc(x) underflows to 0 beyond this
const XHUGE = 6.71e7; // beyond this erfcx(x) = 1 / (x sqrt(pi)) to double precision
const XMAX = 2.53e307;
const XNEG = -26.628; // erfcx(x) overflows below this

const A = [
  3.1611237438705656, 1.13864154151050156e2, 3.77485237685302021e2, 3.20937758913846947e3, 1.85777706184603153e-1,
];
const B = [2.36012909523441209e1, 2.44024637934444173e2, 1.28261652607737228e3, 2.84423683343917062e3];
const C = [
  5.64188496988670089e-1, 8.88314979438837594, 6.61191906371416295e1, 2.98635138197400131e2, 8.8195222124176909e2,
  1.71204761263407058e3, 2.05107837782607147e3, 1.23033935479799725e3, 2.15311535474403846e-8,
];
const D = [
  1.57449261107098347e1, 1.17693950891312499e2, 5.37181101862009858e2, 1.62138957456669019e3, 3.29079923573345963e3,
  4.36261909014324716e3, 3.43936767414372164e3, 1.23033935480374942e3,
];
const P = [
  3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1, 1.60837851487422766e-2,
  6.58749161529837803e-4, 1.63153871373020978e-2,
];
const Q = [
  2.56852019228982242, 1.87295284992346047, 5.27905102951428412e-1, 6.05183413124413191e-2, 2.33520497626869185e-3,
];

/** exp(-y^2) computed as exp(-ysq^2) exp(-del) with ysq = y rounded down to 1/16 (Cody's accuracy trick). */
function expMinusSquare(y: number): number {
  const ysq = Math.trunc(y * 16) / 16;
  const del = (y - ysq) * (y + ysq);
  return Math.exp(-ysq * ysq) * Math.exp(-del);
}

/** Cody's CALERF: jint 1 gives erfc(x), jint 2 gives erfcx(x) = exp(x^2) erfc(x). */
function calerf(x: number, jint: 1 | 2): number {
  if (Number.isNaN(x)) return NaN;
  const y = Math.abs(x);
  let result: number;
  if (y <= THRESH) {
    const ysq = y > XSMALL ? y * y : 0;
    let xnum = A[4] * ysq;
    let xden = ysq;
    for (let i = 0; i < 3; i++) {
      xnum = (xnum + A[i]) * ysq;
      xden = (xden + B[i]) * ysq;
    }
    result = 1 - (x * (xnum + A[3])) / (xden + B[3]);
    // Small |x|: the result is already final for either sign.
    return jint === 2 ? Math.exp(ysq) * result : result;
  }
  if (y <= 4) {
    let xnum = C[8] * y;
    let xden = y;
    for (let i = 0; i < 7; i++) {
      xnum = (xnum + C[i]) * y;
      xden = (xden + D[i]) * y;
    }
    result = (xnum + C[7]) / (xden + D[7]);
    if (jint === 1) result *= expMinusSquare(y);
  } else {
    result = 0;
    let done = false;
    if (y >= XBIG) {
      if (jint === 1 || y >= XMAX) done = true;
      else if (y >= XHUGE) {
        result = SQRPI / y;
        done = true;
      }
    }
    if (!done) {
      const ysq = 1 / (y * y);
      let xnum = P[5] * ysq;
      let xden = ysq;
      for (let i = 0; i < 4; i++) {
        xnum = (xnum + P[i]) * ysq;
        xden = (xden + Q[i]) * ysq;
      }
      result = (ysq * (xnum + P[4])) / (xden + Q[4]);
      result = (SQRPI - result) / y;
      if (jint === 1) result *= expMinusSquare(y);
    }
  }
  if (x < 0) {
    if (jint === 1) return 2 - result;
    if (x < XNEG) return Infinity;
    const ysq = Math.trunc(x * 16) / 16;
    const del = (x - ysq) * (x + ysq);
    const e = Math.exp(ysq * ysq) * Math.exp(del);
    return e + e - result;
  }
  return result;
}

/** Complementary error function erfc(x) = 1 - erf(x); underflows to 0 for x > 26.5 (use logErfc there). */
export function erfc(x: number): number {
  return calerf(x, 1);
}

/** Scaled complementary error function exp(x^2) erfc(x); ~ 1 / (x sqrt(pi)) for large x. */
export function erfcx(x: number): number {
  return calerf(x, 2);
}

/**
 * log(erfc(x)), accurate for every x: for x >= 0.5 it is -x^2 + log(erfcx(x)), which never underflows
 * (e.g. logErfc(100) = -10005.17...), instead of log(erfc(x)) which is -Infinity from x = 26.6 on.
 * This is the quantity Opacus / TF-Privacy compute as log(2) + scipy.special.log_ndtr(-x sqrt(2)).
 */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0.5) return Math.log(erfc(x));
  if (x === Infinity) return -Infinity;
  return -x * x + Math.log(erfcx(x));
}

// ---------------------------------------------------------------------------------------------------------
// log-space arithmetic (0 is represented by -Infinity)
// ---------------------------------------------------------------------------------------------------------

/** log(exp(logx) + exp(logy)) without overflow. */
export function logAdd(logx: number, logy: number): number {
  const a = Math.min(logx, logy);
  const b = Math.max(logx, logy);
  if (a === -Infinity) return b; // adding 0
  if (b === Infinity) return Infinity;
  return Math.log1p(Math.exp(a - b)) + b;
}

/** log(exp(logx) - exp(logy)); throws if the result would be negative (logx < logy). */
export function logSub(logx: number, logy: number): number {
  if (!(logx >= logy))
    throw new Error(`logSub: the result of the subtraction must be non-negative (log x = ${logx} < log y = ${logy})`);
  if (logy === -Infinity) return logx; // subtracting 0
  if (logx === logy) return -Infinity; // 0
  const m = Math.expm1(logx - logy);
  // exp(x - y) overflows only when exp(y) is negligible next to exp(x) (as Python's OverflowError branch).
  if (m === Infinity) return logx;
  return Math.log(m) + logy;
}

// ---------------------------------------------------------------------------------------------------------
// RDP of the Sampled Gaussian Mechanism
// ---------------------------------------------------------------------------------------------------------

/** Opacus' default orders: 1.1, 1.2, ..., 10.9 then 12, 13, ..., 63 (151 orders). */
export const DEFAULT_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, k) => 1 + (k + 1) / 10.0),
  ...Array.from({ length: 52 }, (_, k) => 12 + k),
]);

/** Safety net for the fractional series: Opacus' cases need at most a few thousand terms. */
const MAX_FRAC_TERMS = 5_000_000;

function logAForIntAlpha(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q);
  const log1mQ = Math.log(1 - q);
  const twoSigma2 = 2 * (sigma * sigma);
  let logA = -Infinity;
  let logBinom = 0; // log C(alpha, i), updated incrementally
  for (let i = 0; i <= alpha; i++) {
    if (i > 0) logBinom += Math.log((alpha - i + 1) / i);
    const logCoef = logBinom + i * logQ + (alpha - i) * log1mQ;
    const s = logCoef + (i * i - i) / twoSigma2;
    logA = logAdd(logA, s);
  }
  return logA;
}

function logAForFracAlpha(q: number, sigma: number, alpha: number): number {
  // The two halves of A_alpha, integrals over (-inf, z0] and [z0, +inf), start at 0 (log space).
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  const sigma2 = sigma * sigma;
  const twoSigma2 = 2 * sigma2;
  const z0 = sigma2 * Math.log(1 / q - 1) + 0.5;
  const logQ = Math.log(q);
  const log1mQ = Math.log(1 - q);
  const sqrt2Sigma = Math.SQRT2 * sigma;
  const LOG_HALF = Math.log(0.5);
  // Generalised binomial coefficient C(alpha, i) = prod_{k<i} (alpha - k) / (k + 1), kept as sign and log|.|.
  let logCoef = 0;
  let coefPositive = true;
  for (let i = 0; ; i++) {
    if (i > 0) {
      const f = (alpha - (i - 1)) / i;
      logCoef += Math.log(Math.abs(f));
      if (f < 0) coefPositive = !coefPositive;
    }
    const j = alpha - i;
    const logT0 = logCoef + i * logQ + j * log1mQ;
    const logT1 = logCoef + j * logQ + i * log1mQ;
    const logE0 = LOG_HALF + logErfc((i - z0) / sqrt2Sigma);
    const logE1 = LOG_HALF + logErfc((z0 - j) / sqrt2Sigma);
    const logS0 = logT0 + (i * i - i) / twoSigma2 + logE0;
    const logS1 = logT1 + (j * j - j) / twoSigma2 + logE1;
    if (coefPositive) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (Math.max(logS0, logS1) < -30) break;
    if (i >= MAX_FRAC_TERMS || Number.isNaN(logS0) || Number.isNaN(logS1)) {
      throw new Error(`computeRdp: series for alpha=${alpha}, q=${q}, sigma=${sigma} did not converge (term ${i})`);
    }
  }
  return logAdd(logA0, logA1);
}

/** RDP of ONE step of the SGM at one order (Opacus `_compute_rdp`). */
function rdpOneStep(q: number, sigma: number, alpha: number): number {
  if (q === 0) return 0;
  if (sigma === 0) return Infinity; // no noise: no privacy
  if (q === 1) return alpha / (2 * (sigma * sigma));
  if (alpha === Infinity) return Infinity;
  const logA = Number.isInteger(alpha) ? logAForIntAlpha(q, sigma, alpha) : logAForFracAlpha(q, sigma, alpha);
  return logA / (alpha - 1);
}

function checkOrders(orders: readonly number[], fn: string): void {
  if (!Array.isArray(orders) || orders.length === 0) throw new Error(`${fn}: orders must be a non-empty array`);
  for (let k = 0; k < orders.length; k++) {
    const a = orders[k];
    if (typeof a !== 'number' || !(a > 1)) throw new Error(`${fn}: orders[${k}] must be a number > 1, got ${a}`);
  }
}

function checkSampling(q: number, noiseMultiplier: number, fn: string): void {
  if (typeof q !== 'number' || !(q >= 0 && q <= 1))
    throw new Error(`${fn}: sampling rate q must be in [0, 1], got ${q}`);
  if (typeof noiseMultiplier !== 'number' || !Number.isFinite(noiseMultiplier) || noiseMultiplier < 0) {
    throw new Error(`${fn}: noise multiplier must be a finite number >= 0, got ${noiseMultiplier}`);
  }
}

/**
 * RDP at each order after `steps` steps of the Sampled Gaussian Mechanism with sampling rate q and noise
 * multiplier sigma (noise stddev / clip norm): steps * log(A_alpha) / (alpha - 1), as Opacus `compute_rdp`.
 * orders must be > 1 (Infinity allowed, giving Infinity unless q = 0). steps = 0 gives 0 at every order
 * (also for sigma = 0, where numpy would give NaN from Infinity * 0).
 */
export function computeRdp(q: number, noiseMultiplier: number, steps: number, orders: readonly number[]): number[] {
  checkSampling(q, noiseMultiplier, 'computeRdp');
  if (typeof steps !== 'number' || !Number.isFinite(steps) || steps < 0) {
    throw new Error(`computeRdp: steps must be a finite number >= 0, got ${steps}`);
  }
  checkOrders(orders, 'computeRdp');
  if (steps === 0) return orders.map(() => 0);
  return orders.map((alpha) => rdpOneStep(q, noiseMultiplier, alpha) * steps);
}

export interface PrivacySpent {
  epsilon: number;
  /** The order at which the bound is tightest. Opacus warns when this is the first or last order given. */
  bestAlpha: number;
}

/**
 * (epsilon, delta)-DP from RDP values, the conversion in Opacus `get_privacy_spent` (Balle et al. 2020,
 * Theorem 21): eps(alpha) = rdp - (log delta + log alpha) / (alpha - 1) + log((alpha - 1) / alpha),
 * minimised over the orders (NaN ignored; first minimum wins). If every value is NaN: epsilon Infinity,
 * bestAlpha NaN (as Opacus).
 */
export function getPrivacySpent(orders: readonly number[], rdp: readonly number[], delta: number): PrivacySpent {
  checkOrders(orders, 'getPrivacySpent');
  if (!Array.isArray(rdp) || rdp.length !== orders.length) {
    throw new Error(
      `getPrivacySpent: got ${Array.isArray(rdp) ? rdp.length : String(rdp)} RDP values for ${orders.length} orders`,
    );
  }
  if (typeof delta !== 'number' || !(delta > 0 && delta < 1))
    throw new Error(`getPrivacySpent: delta must be in (0, 1), got ${delta}`);
  const logDelta = Math.log(delta);
  let best = NaN;
  let bestAlpha = NaN;
  for (let k = 0; k < orders.length; k++) {
    const a = orders[k];
    const r = rdp[k];
    if (typeof r !== 'number') throw new Error(`getPrivacySpent: rdp[${k}] must be a number, got ${String(r)}`);
    const eps = r - (logDelta + Math.log(a)) / (a - 1) + Math.log((a - 1) / a);
    if (Number.isNaN(eps)) continue;
    if (Number.isNaN(best) || eps < best) {
      best = eps;
      bestAlpha = a;
    }
  }
  if (Number.isNaN(best)) return { epsilon: Infinity, bestAlpha: NaN };
  return { epsilon: best, bestAlpha };
}

// ---------------------------------------------------------------------------------------------------------
// Accountant
// ---------------------------------------------------------------------------------------------------------

export interface RdpHistoryEntry {
  /** Sampling rate of these steps. */
  q: number;
  /** Noise stddev / clip norm of these steps. */
  noiseMultiplier: number;
  /** How many consecutive steps used this (q, noiseMultiplier). */
  steps: number;
}

/** Everything an RdpAccountant needs to resume; plain JSON-safe data. */
export interface RdpAccountantState {
  kind: 'rdp';
  history: RdpHistoryEntry[];
}

/**
 * Accumulates SGM steps with possibly varying (q, noiseMultiplier) and reports (epsilon, delta), like
 * Opacus' RDPAccountant: consecutive steps with the same parameters are merged into one history entry,
 * and epsilon is computed from the summed RDP of all entries. Before any step, epsilon is 0 (and
 * bestAlpha 0), as in Opacus.
 */
export class RdpAccountant {
  private entries: RdpHistoryEntry[] = [];
  /** Per-step RDP vectors by (q, sigma, orders): recomputing them dominates the cost of getEpsilon. */
  private readonly cache = new Map<string, number[]>();

  constructor(restore?: RdpAccountantState) {
    if (restore === undefined) return;
    if (restore === null || typeof restore !== 'object' || restore.kind !== 'rdp' || !Array.isArray(restore.history)) {
      throw new Error(`RdpAccountant: not an RDP accountant state`);
    }
    restore.history.forEach((e, k) => {
      if (e === null || typeof e !== 'object') throw new Error(`RdpAccountant: history[${k}] is not an object`);
      checkSampling(e.q, e.noiseMultiplier, `RdpAccountant: history[${k}]`);
      if (!Number.isSafeInteger(e.steps) || e.steps < 1)
        throw new Error(`RdpAccountant: history[${k}].steps must be an integer >= 1, got ${e.steps}`);
      this.entries.push({ q: e.q, noiseMultiplier: e.noiseMultiplier, steps: e.steps });
    });
  }

  /** Records `steps` (default 1) steps with sampling rate q and the given noise multiplier. */
  step(q: number, noiseMultiplier: number, steps = 1): void {
    checkSampling(q, noiseMultiplier, 'RdpAccountant.step');
    if (!Number.isSafeInteger(steps) || steps < 1)
      throw new Error(`RdpAccountant.step: steps must be an integer >= 1, got ${steps}`);
    const last = this.entries[this.entries.length - 1];
    if (last && last.q === q && last.noiseMultiplier === noiseMultiplier) last.steps += steps;
    else this.entries.push({ q, noiseMultiplier, steps });
  }

  /** A copy of the merged history. */
  get history(): RdpHistoryEntry[] {
    return this.entries.map((e) => ({ ...e }));
  }

  get totalSteps(): number {
    return this.entries.reduce((s, e) => s + e.steps, 0);
  }

  /** Total RDP spent so far at each order. */
  rdp(orders: readonly number[] = DEFAULT_ORDERS): number[] {
    checkOrders(orders, 'RdpAccountant.rdp');
    const total = orders.map(() => 0);
    for (const e of this.entries) {
      const per = this.perStep(e.q, e.noiseMultiplier, orders);
      for (let k = 0; k < orders.length; k++) total[k] += per[k] * e.steps;
    }
    return total;
  }

  getPrivacySpent(delta: number, orders: readonly number[] = DEFAULT_ORDERS): PrivacySpent {
    if (this.entries.length === 0) {
      checkOrders(orders, 'RdpAccountant.getPrivacySpent');
      if (typeof delta !== 'number' || !(delta > 0 && delta < 1)) {
        throw new Error(`RdpAccountant.getPrivacySpent: delta must be in (0, 1), got ${delta}`);
      }
      return { epsilon: 0, bestAlpha: 0 };
    }
    return getPrivacySpent(orders, this.rdp(orders), delta);
  }

  getEpsilon(delta: number, orders: readonly number[] = DEFAULT_ORDERS): number {
    return this.getPrivacySpent(delta, orders).epsilon;
  }

  state(): RdpAccountantState {
    return { kind: 'rdp', history: this.history };
  }

  private perStep(q: number, sigma: number, orders: readonly number[]): number[] {
    const key = `${q}|${sigma}|${orders.join(',')}`;
    let v = this.cache.get(key);
    if (!v) {
      if (this.cache.size >= 256) this.cache.clear();
      v = computeRdp(q, sigma, 1, orders);
      this.cache.set(key, v);
    }
    return v;
  }
}
