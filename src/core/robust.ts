/**
 * Byzantine-robust fusion over flat Float32Array vectors, and the attacks used to test it.
 *
 * Inputs are UPDATE vectors: the strategy passes each node's delta (local - global) and applies the
 * fused delta to the global model (server step eta 1), so "the honest range" below is a range of deltas.
 * The functions are agnostic to what the vectors mean, though: they work on any same-length vectors.
 *
 * | function          | rule                                                           | needs            |
 * |-------------------|----------------------------------------------------------------|------------------|
 * | coordinateMedian  | per coordinate, the median (mean of the two middle when n even) | n >= 1           |
 * |                   |   FedMedian, Yin et al. 2018                                   |                  |
 * | trimmedMean       | per coordinate, drop the k = floor(beta n) smallest and k       | 0 <= beta < 0.5  |
 * |                   |   largest, average the rest (FedTrimmedAvg, Yin et al. 2018)    |                  |
 * | krum              | the update with the lowest score, score(i) = sum of squared     | n >= 2f + 3      |
 * |                   |   L2 distances to its n - f - 2 nearest others (Blanchard 2017) |                  |
 * | multiKrum         | the plain mean of the m lowest-score updates (default m = n - f)| n >= 2f + 3      |
 * | bulyan            | select theta = n - 2f updates by repeated Krum, then per        | n >= 4f + 3      |
 * |                   |   coordinate average the beta = theta - 2f selected values      |                  |
 * |                   |   closest to their median (El Mhamdi et al. 2018)               |                  |
 * | clipByNorm        | v * min(1, maxNorm / ||v||_2)                                  | maxNorm > 0      |
 *
 * All robust rules are UNWEIGHTED (every update counts once, whatever numExamples a node claims), as in
 * the papers and in Flower's FedMedian / FedTrimmedAvg / Krum: a weight is something an attacker can
 * inflate. f is the number of Byzantine updates to tolerate.
 *
 * Determinism: every output is a function of the MULTISET of inputs, bit for bit. Columns are sorted
 * before they are summed; Krum scores sum each node's sorted distances; ties in score are broken by
 * comparing the vectors lexicographically (index only between identical vectors, whose pick does not
 * matter). Sums are in Float64 with one rounding to Float32 at the end; -0 results come out as +0.
 * Non-finite inputs are rejected (a distance or a median of NaN means nothing).
 *
 * Pure functions, no I/O and no platform APIs: the same code runs in Node and in browsers.
 */
import type { Rng } from './rng.js';

/** Checks the vectors are non-empty, of one length and finite; returns that length. */
function checkUpdates(updates: readonly Float32Array[], fn: string): number {
  if (updates.length === 0) throw new Error(`${fn}: no updates given (need at least one)`);
  const d = updates[0].length;
  for (let i = 0; i < updates.length; i++) {
    const v = updates[i];
    if (v.length !== d) throw new Error(`${fn}: updates[${i}] has length ${v.length} but updates[0] has length ${d}`);
    for (let j = 0; j < d; j++) {
      if (!Number.isFinite(v[j])) throw new Error(`${fn}: updates[${i}][${j}] is ${v[j]} (not finite)`);
    }
  }
  return d;
}

function checkF(f: number, fn: string): void {
  if (!Number.isInteger(f) || f < 0)
    throw new Error(`${fn}: f (Byzantine updates to tolerate) must be a whole number >= 0, got ${f}`);
}

/** In-place ascending sort of col[0..n); insertion sort for the small n of a round, the built-in above. */
function sortColumn(col: Float64Array, n: number): void {
  if (n > 32) {
    col.subarray(0, n).sort();
    return;
  }
  for (let i = 1; i < n; i++) {
    const x = col[i];
    let k = i - 1;
    while (k >= 0 && col[k] > x) {
      col[k + 1] = col[k];
      k--;
    }
    col[k + 1] = x;
  }
}

/** Median of sorted s[0..n): the middle value, or the mean of the two middle ones. */
function sortedMedian(s: Float64Array, n: number): number {
  const h = n >> 1;
  return n % 2 === 1 ? s[h] : (s[h - 1] + s[h]) / 2;
}

/**
 * Coordinate-wise median (FedMedian; Yin, Chen, Ramchandran, Bartlett 2018, "Byzantine-Robust
 * Distributed Learning: Towards Optimal Statistical Rates"). With an even count, the mean of the two
 * middle values. Robust while fewer than half the updates are Byzantine: each output coordinate lies
 * between two honest values.
 */
export function coordinateMedian(updates: readonly Float32Array[]): Float32Array {
  const d = checkUpdates(updates, 'coordinateMedian');
  const n = updates.length;
  const col = new Float64Array(n);
  const out = new Float32Array(d);
  for (let j = 0; j < d; j++) {
    for (let i = 0; i < n; i++) col[i] = updates[i][j];
    sortColumn(col, n);
    out[j] = sortedMedian(col, n) + 0;
  }
  return out;
}

/**
 * How many values trimmedMean drops from EACH side: floor(beta * n) (scipy's trim_mean, as Flower's
 * FedTrimmedAvg uses), with a 1e-9 allowance so that e.g. beta 0.29 of 100 trims 29, not 28.
 */
export function trimCount(n: number, beta: number): number {
  if (typeof beta !== 'number' || !(beta >= 0 && beta < 0.5))
    throw new Error(`trimmedMean: beta (fraction trimmed from each side) must be in [0, 0.5), got ${beta}`);
  return Math.floor(beta * n + 1e-9);
}

/**
 * Coordinate-wise trimmed mean (FedTrimmedAvg; Yin et al. 2018): per coordinate, drop the
 * k = trimCount(n, beta) smallest and k largest values and average the n - 2k left. beta = 0 is the
 * plain mean; tolerates up to k Byzantine updates per coordinate.
 */
export function trimmedMean(updates: readonly Float32Array[], beta: number): Float32Array {
  const d = checkUpdates(updates, 'trimmedMean');
  const n = updates.length;
  const k = trimCount(n, beta);
  const keep = n - 2 * k;
  const col = new Float64Array(n);
  const out = new Float32Array(d);
  for (let j = 0; j < d; j++) {
    for (let i = 0; i < n; i++) col[i] = updates[i][j];
    sortColumn(col, n);
    let s = 0;
    for (let i = k; i < n - k; i++) s += col[i];
    out[j] = s / keep + 0;
  }
  return out;
}

/** Squared L2 distances between every pair, in Float64 (symmetric, zero diagonal). */
function pairwiseSquaredDistances(updates: readonly Float32Array[], d: number): Float64Array[] {
  const n = updates.length;
  const dist = Array.from({ length: n }, () => new Float64Array(n));
  for (let a = 0; a < n; a++) {
    const va = updates[a];
    for (let b = a + 1; b < n; b++) {
      const vb = updates[b];
      let s = 0;
      for (let j = 0; j < d; j++) {
        const t = va[j] - vb[j];
        s += t * t;
      }
      dist[a][b] = s;
      dist[b][a] = s;
    }
  }
  return dist;
}

/** Krum score of each member of `set` within `set`: sum of its k smallest squared distances to the others. */
function scoresWithin(dist: Float64Array[], set: readonly number[], k: number): Float64Array {
  const scores = new Float64Array(set.length);
  const row = new Float64Array(Math.max(0, set.length - 1));
  for (let a = 0; a < set.length; a++) {
    let c = 0;
    for (let b = 0; b < set.length; b++) if (b !== a) row[c++] = dist[set[a]][set[b]];
    sortColumn(row, c);
    let s = 0;
    for (let i = 0; i < k; i++) s += row[i];
    scores[a] = s;
  }
  return scores;
}

/** Lexicographic order of two vectors (the tie-break that keeps Krum independent of input order). */
function compareVectors(a: Float32Array, b: Float32Array): number {
  for (let j = 0; j < a.length; j++) if (a[j] !== b[j]) return a[j] < b[j] ? -1 : 1;
  return 0;
}

/** Members of `set` ordered best (lowest score) first, ties by vector content then index. */
function rankByScore(updates: readonly Float32Array[], set: readonly number[], scores: Float64Array): number[] {
  const order = set.map((_, a) => a);
  order.sort((x, y) => scores[x] - scores[y] || compareVectors(updates[set[x]], updates[set[y]]) || set[x] - set[y]);
  return order.map((a) => set[a]);
}

function checkKrum(n: number, f: number, fn: string): void {
  checkF(f, fn);
  if (n < 2 * f + 3)
    throw new Error(`${fn}: needs n >= 2f + 3 updates (Blanchard et al. 2017), got n = ${n} for f = ${f}`);
}

/**
 * Krum scores (Blanchard, El Mhamdi, Guerraoui, Stainer 2017, "Machine Learning with Adversaries:
 * Byzantine Tolerant Gradient Descent"): score(i) = sum of the squared L2 distances from update i to its
 * n - f - 2 nearest other updates. Needs n >= 2f + 3 (the paper's 2f + 2 < n).
 */
export function krumScores(updates: readonly Float32Array[], f: number): Float64Array {
  const d = checkUpdates(updates, 'krumScores');
  checkKrum(updates.length, f, 'krumScores');
  const all = updates.map((_, i) => i);
  return scoresWithin(pairwiseSquaredDistances(updates, d), all, updates.length - f - 2);
}

/** The m best by Krum score over all updates (inputs already checked). */
function selectByKrum(updates: readonly Float32Array[], d: number, f: number, m: number): number[] {
  const all = updates.map((_, i) => i);
  const scores = scoresWithin(pairwiseSquaredDistances(updates, d), all, updates.length - f - 2);
  return rankByScore(updates, all, scores).slice(0, m);
}

function checkM(n: number, m: number, fn: string): void {
  if (!Number.isInteger(m) || m < 1 || m > n)
    throw new Error(`${fn}: m must be a whole number from 1 to n = ${n}, got ${m}`);
}

/** Indices of the m updates with the lowest Krum scores, best first (ties: lexicographic by vector). */
export function krumSelect(updates: readonly Float32Array[], f: number, m: number): number[] {
  const d = checkUpdates(updates, 'krumSelect');
  checkKrum(updates.length, f, 'krumSelect');
  checkM(updates.length, m, 'krumSelect');
  return selectByKrum(updates, d, f, m);
}

/** Krum: a copy of the single update with the lowest score. Needs n >= 2f + 3. */
export function krum(updates: readonly Float32Array[], f: number): Float32Array {
  const d = checkUpdates(updates, 'krum');
  checkKrum(updates.length, f, 'krum');
  return Float32Array.from(updates[selectByKrum(updates, d, f, 1)[0]], (x) => x + 0);
}

/**
 * Multi-Krum (Blanchard et al. 2017, section 5): the plain (unweighted) mean of the m updates with the
 * lowest Krum scores. m defaults to n - f (the paper's choice); m = 1 is Krum, m = n with f = 0 the mean.
 */
export function multiKrum(updates: readonly Float32Array[], f: number, m?: number): Float32Array {
  const d = checkUpdates(updates, 'multiKrum');
  checkKrum(updates.length, f, 'multiKrum');
  const mm = m ?? updates.length - f;
  checkM(updates.length, mm, 'multiKrum');
  const picked = selectByKrum(updates, d, f, mm);
  const acc = new Float64Array(d);
  for (const i of picked) {
    const v = updates[i];
    for (let j = 0; j < d; j++) acc[j] += v[j];
  }
  const out = new Float32Array(d);
  for (let j = 0; j < d; j++) out[j] = acc[j] / mm + 0;
  return out;
}

/**
 * Indices Bulyan's first stage keeps: theta = n - 2f updates, picked one at a time by Krum over those
 * not yet picked (scores recomputed on the shrinking set). On that set of r updates the neighbour
 * count r - f - 2 is clamped to [1, r - 1] (it drops below 1 only at the tail for f <= 1), as Flower's
 * aggregate_bulyan does. Needs n >= 4f + 3.
 */
export function bulyanSelect(updates: readonly Float32Array[], f: number): number[] {
  const d = checkUpdates(updates, 'bulyanSelect');
  checkBulyan(updates.length, f, 'bulyanSelect');
  const dist = pairwiseSquaredDistances(updates, d);
  let remaining = updates.map((_, i) => i);
  const picked: number[] = [];
  const theta = updates.length - 2 * f;
  while (picked.length < theta) {
    const r = remaining.length;
    const k = Math.min(r - 1, Math.max(1, r - f - 2));
    const best = rankByScore(updates, remaining, scoresWithin(dist, remaining, k))[0];
    picked.push(best);
    remaining = remaining.filter((i) => i !== best);
  }
  return picked;
}

function checkBulyan(n: number, f: number, fn: string): void {
  checkF(f, fn);
  if (n < 4 * f + 3)
    throw new Error(`${fn}: needs n >= 4f + 3 updates (El Mhamdi et al. 2018), got n = ${n} for f = ${f}`);
}

/**
 * Bulyan (El Mhamdi, Guerraoui, Rouault 2018, "The Hidden Vulnerability of Distributed Learning in
 * Byzantium"): select theta = n - 2f updates with repeated Krum (bulyanSelect), then per coordinate
 * average the beta = theta - 2f selected values closest to the selected values' median (ties: the
 * smaller value first). Needs n >= 4f + 3.
 */
export function bulyan(updates: readonly Float32Array[], f: number): Float32Array {
  const d = checkUpdates(updates, 'bulyan');
  checkBulyan(updates.length, f, 'bulyan');
  const sel = bulyanSelect(updates, f).map((i) => updates[i]);
  const theta = sel.length;
  const beta = theta - 2 * f;
  const col = new Float64Array(theta);
  const out = new Float32Array(d);
  for (let j = 0; j < d; j++) {
    for (let i = 0; i < theta; i++) col[i] = sel[i][j];
    sortColumn(col, theta);
    const med = sortedMedian(col, theta);
    // The beta values closest to the median are a contiguous run of the sorted column: grow it from the
    // median outwards, taking the closer neighbour each time (the lower one on a tie).
    let lo = 0;
    while (lo < theta && col[lo] < med) lo++;
    let hi = lo;
    while (hi - lo < beta) {
      if (hi >= theta || (lo > 0 && med - col[lo - 1] <= col[hi] - med)) lo--;
      else hi++;
    }
    let s = 0;
    for (let i = lo; i < hi; i++) s += col[i];
    out[j] = s / beta + 0;
  }
  return out;
}

/** L2 norm in Float64. */
export function l2Norm(v: Float32Array): number {
  let s = 0;
  for (let j = 0; j < v.length; j++) s += v[j] * v[j];
  return Math.sqrt(s);
}

/**
 * Norm clipping: v scaled by min(1, maxNorm / ||v||_2), a new vector (v untouched). Used on each update
 * before fusion so no single node can move the model by more than maxNorm. The scaled vector is rounded
 * to Float32, so its norm may exceed maxNorm by a relative ~1e-7.
 */
export function clipByNorm(v: Float32Array, maxNorm: number): Float32Array {
  if (typeof maxNorm !== 'number' || !(maxNorm > 0) || !Number.isFinite(maxNorm))
    throw new Error(`clipByNorm: maxNorm must be a finite number > 0, got ${maxNorm}`);
  const norm = l2Norm(v);
  if (!Number.isFinite(norm)) throw new Error(`clipByNorm: the vector has a non-finite norm (${norm})`);
  if (norm <= maxNorm) return new Float32Array(v);
  const s = maxNorm / norm;
  return Float32Array.from(v, (x) => x * s);
}

/** clipByNorm applied to every update. */
export function clipUpdates(updates: readonly Float32Array[], maxNorm: number): Float32Array[] {
  return updates.map((v) => clipByNorm(v, maxNorm));
}

// ---------- simulated attacks (what a Byzantine node sends instead of its honest update) ----------

export const ATTACK_KINDS = ['sign-flip', 'gaussian', 'scale', 'label-flip'] as const;
export type AttackKind = (typeof ATTACK_KINDS)[number];

/**
 * Default strength s of each attack (--attack-scale). With g the global model the node received and
 * l its honestly trained model (delta = l - g):
 *  - sign-flip:  send g - s * delta              (s = 4)
 *  - gaussian:   send g + N(0, s^2) per value    (s = sigma = 1; the node's data is ignored)
 *  - scale:      send g + s * delta              (s = 10, a boosted update)
 *  - label-flip: send the model trained on labels y -> C - 1 - y (no strength)
 * s = 4 for sign-flip: with 20% attackers, s = 1 only shrinks the FedAvg step to 60% of the honest mean
 * (in bench/robust.ts FedAvg then ends 1.3 points below the clean run), which slows FedAvg but does not
 * break it; with s = 4 the 4 attackers' sum cancels the 16 honest updates and FedAvg stays near chance.
 * In gradient mode (FedSGD) the same formulas apply with g = 0 (the vector sent is a gradient).
 */
export const DEFAULT_ATTACK_SCALE: Readonly<Record<Exclude<AttackKind, 'label-flip'>, number>> = {
  'sign-flip': 4,
  gaussian: 1,
  scale: 10,
};

/**
 * The vector a Byzantine node sends in place of `honest`, relative to `reference` (the global model it
 * received; zeros in gradient mode). `rng` is used by 'gaussian' only. A new vector; inputs untouched.
 */
export function attackUpdate(
  kind: Exclude<AttackKind, 'label-flip'>,
  honest: Float32Array,
  reference: Float32Array,
  scale: number,
  rng: Rng,
): Float32Array {
  if (honest.length !== reference.length)
    throw new Error(`attackUpdate: honest has length ${honest.length} but reference has length ${reference.length}`);
  if (!(scale > 0) || !Number.isFinite(scale))
    throw new Error(`attackUpdate: scale must be a finite number > 0, got ${scale}`);
  const n = honest.length;
  const out = new Float32Array(n);
  switch (kind) {
    case 'sign-flip':
      for (let j = 0; j < n; j++) out[j] = reference[j] - scale * (honest[j] - reference[j]);
      return out;
    case 'scale':
      for (let j = 0; j < n; j++) out[j] = reference[j] + scale * (honest[j] - reference[j]);
      return out;
    case 'gaussian':
      for (let j = 0; j < n; j++) out[j] = reference[j] + scale * rng.normal();
      return out;
    default:
      throw new Error(`attackUpdate: unknown attack '${kind as string}' (one of sign-flip, gaussian, scale)`);
  }
}

/** Label flipping: y -> numClasses - 1 - y, a new array. Throws on a label outside [0, numClasses). */
export function flipLabels(y: Int32Array, numClasses: number): Int32Array {
  if (!Number.isInteger(numClasses) || numClasses < 2)
    throw new Error(`flipLabels: needs a classification task with >= 2 classes, got ${numClasses}`);
  const out = new Int32Array(y.length);
  for (let i = 0; i < y.length; i++) {
    const c = y[i];
    if (c < 0 || c >= numClasses) throw new Error(`flipLabels: label ${c} at ${i} is outside [0, ${numClasses})`);
    out[i] = numClasses - 1 - c;
  }
  return out;
}
