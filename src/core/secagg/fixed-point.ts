/**
 * Fixed-point encoding of float updates into the ring Z_{2^32} that secure aggregation sums in.
 *
 * A coordinate x becomes q = round(w * clip(x) * 2^scaleBits), stored as a two's-complement 32-bit word
 * (Uint32Array, so every + and - wraps mod 2^32 for free). Summing the words of n clients mod 2^32 and
 * reading the result back as a signed int32 gives sum_i q_i exactly, as long as it never leaves
 * [-2^31, 2^31): the OVERFLOW CONDITION is
 *     sum_i |q_i| <= maxClients * round(maxWeight * clip * 2^scaleBits) <= 2^31 - 1,
 * which `fixedPointConfig` checks once up front, so no encoding made under a valid config can overflow
 * (each client's clip and weight are enforced at encode time). Beyond the limit the sum silently wraps,
 * which is why it is checked rather than hoped for.
 *
 * ERROR BOUND: rounding moves each q_i by at most 1/2, so per coordinate
 *     |decodeFixedSum(sum) - sum_i w_i * clip(x_i)| <= n * 2^-(scaleBits + 1)   (<= n * 2^-scaleBits),
 * and a weighted average (divided by W = sum_i w_i) is off by at most n * 2^-(scaleBits+1) / W, plus the
 * final rounding to Float32. Clipping is the only other change to the values; values already inside
 * [-clip, clip] are not clipped.
 *
 * Weighted FedAvg without revealing any n_i: the client sends [n_i * x_i (encoded), n_i] (one extra
 * coordinate holding its integer weight), the server learns only sum_i n_i x_i and sum_i n_i, and
 * divides. See encodeWeightedUpdate / decodeWeightedAverage.
 */

/** Largest magnitude a decoded int32 can hold without wrapping. */
export const INT32_LIMIT = 2 ** 31 - 1;

export interface FixedPointConfig {
  /** Fractional bits: x is stored as round(x * 2^scaleBits). Integer in [0, 30]. Default 16. */
  readonly scaleBits: number;
  /** Every coordinate is clipped to [-clip, clip] before scaling. Default 1. */
  readonly clip: number;
  /** Largest weight one client may multiply its vector by (numExamples for FedAvg; 1 for a plain sum). Default 1. */
  readonly maxWeight: number;
  /** Largest number of clients whose vectors are summed. */
  readonly maxClients: number;
}

function fail(fn: string, msg: string): never {
  throw new Error(`${fn}: ${msg}`);
}

/** Largest |q| one client can produce under cfg. */
function perClientLimit(scaleBits: number, clip: number, maxWeight: number): number {
  return Math.round(maxWeight * clip * 2 ** scaleBits);
}

/**
 * Builds and validates a config. Throws if maxClients clients at full clip and maxWeight could overflow
 * the signed 32-bit sum, naming the largest scaleBits that would fit.
 */
export function fixedPointConfig(opts: Partial<FixedPointConfig> & { maxClients: number }): FixedPointConfig {
  const fn = 'fixedPointConfig';
  const scaleBits = opts.scaleBits ?? 16;
  const clip = opts.clip ?? 1;
  const maxWeight = opts.maxWeight ?? 1;
  const { maxClients } = opts;
  if (!Number.isInteger(scaleBits) || scaleBits < 0 || scaleBits > 30)
    fail(fn, `scaleBits must be an integer in [0, 30], got ${scaleBits}`);
  if (typeof clip !== 'number' || !Number.isFinite(clip) || clip <= 0)
    fail(fn, `clip must be a finite number > 0, got ${clip}`);
  if (typeof maxWeight !== 'number' || !Number.isFinite(maxWeight) || maxWeight <= 0)
    fail(fn, `maxWeight must be a finite number > 0, got ${maxWeight}`);
  if (!Number.isInteger(maxClients) || maxClients < 1)
    fail(fn, `maxClients must be an integer >= 1, got ${maxClients}`);
  const worst = maxClients * perClientLimit(scaleBits, clip, maxWeight);
  if (worst > INT32_LIMIT) {
    let fits = -1;
    for (let s = scaleBits - 1; s >= 0; s--) {
      if (maxClients * perClientLimit(s, clip, maxWeight) <= INT32_LIMIT) {
        fits = s;
        break;
      }
    }
    fail(
      fn,
      `overflow: maxClients (${maxClients}) * maxWeight (${maxWeight}) * clip (${clip}) * 2^${scaleBits} = ${worst} exceeds 2^31 - 1; ` +
        (fits >= 0 ? `use scaleBits <= ${fits}, or lower clip or maxWeight` : 'lower clip or maxWeight'),
    );
  }
  // The weight coordinate of encodeWeightedUpdate sums integer weights, which must fit as well.
  if (maxClients * Math.floor(maxWeight) > INT32_LIMIT)
    fail(fn, `overflow: maxClients * maxWeight = ${maxClients * Math.floor(maxWeight)} exceeds 2^31 - 1`);
  return Object.freeze({ scaleBits, clip, maxWeight, maxClients });
}

/** The worst-case absolute error of a decoded sum of n clients, per coordinate: n * 2^-(scaleBits+1). */
export function fixedPointErrorBound(cfg: FixedPointConfig, n: number): number {
  return n * 2 ** -(cfg.scaleBits + 1);
}

function checkWeight(fn: string, cfg: FixedPointConfig, weight: number): void {
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0 || weight > cfg.maxWeight) {
    fail(fn, `weight must be a finite number in [0, maxWeight = ${cfg.maxWeight}], got ${weight}`);
  }
}

/**
 * Writes round(weight * clip(values[j]) * 2^scaleBits) mod 2^32 into out[offset + j] and returns how many
 * coordinates were clipped. Throws on NaN or infinite values (clipping them would hide a diverged client).
 */
export function encodeFixedInto(
  values: ArrayLike<number>,
  cfg: FixedPointConfig,
  weight: number,
  out: Uint32Array,
  offset = 0,
): number {
  const fn = 'encodeFixed';
  checkWeight(fn, cfg, weight);
  if (!Number.isInteger(offset) || offset < 0 || offset + values.length > out.length) {
    fail(fn, `${values.length} values at offset ${offset} do not fit an output of length ${out.length}`);
  }
  const clip = cfg.clip;
  const factor = weight * 2 ** cfg.scaleBits; // exact: a power of two times the weight
  let clipped = 0;
  for (let j = 0; j < values.length; j++) {
    let v = values[j];
    if (!Number.isFinite(v)) fail(fn, `values[${j}] is ${v}; only finite values can be encoded`);
    if (v > clip) {
      v = clip;
      clipped++;
    } else if (v < -clip) {
      v = -clip;
      clipped++;
    }
    // |round(...)| <= perClientLimit, so it is a safe integer well inside int32; >>> 0 is two's complement.
    out[offset + j] = Math.round(v * factor) >>> 0;
  }
  return clipped;
}

/** Encodes weight * clip(values) as fixed point (see the module comment). weight defaults to 1. */
export function encodeFixed(values: ArrayLike<number>, cfg: FixedPointConfig, weight = 1): Uint32Array {
  const out = new Uint32Array(values.length);
  encodeFixedInto(values, cfg, weight, out, 0);
  return out;
}

/** Reads each word as a signed int32 and divides by 2^scaleBits. Exact: every int32 / 2^k is a double. */
export function decodeFixedSum(sum: Uint32Array, cfg: FixedPointConfig): Float64Array {
  const inv = 2 ** -cfg.scaleBits;
  const out = new Float64Array(sum.length);
  for (let j = 0; j < sum.length; j++) out[j] = (sum[j] | 0) * inv;
  return out;
}

/** Adds b into a mod 2^32 (in place) and returns a: the plaintext sum the secure protocol reproduces. */
export function addMod32(a: Uint32Array, b: Uint32Array): Uint32Array {
  if (a.length !== b.length) fail('addMod32', `lengths differ: ${a.length} and ${b.length}`);
  for (let j = 0; j < a.length; j++) a[j] += b[j]; // Uint32Array stores wrap mod 2^32
  return a;
}

/** Mean of count unweighted vectors from their fixed-point sum. */
export function decodeAverage(sum: Uint32Array, count: number, cfg: FixedPointConfig): Float32Array {
  if (!Number.isInteger(count) || count < 1) fail('decodeAverage', `count must be an integer >= 1, got ${count}`);
  const s = decodeFixedSum(sum, cfg);
  const out = new Float32Array(s.length);
  for (let j = 0; j < s.length; j++) out[j] = s[j] / count;
  return out;
}

/**
 * Client side of weighted FedAvg: [round(n * clip(x_j) * 2^scaleBits) for each j, n] with
 * n = numExamples (an integer in [0, maxWeight]). Length update.length + 1.
 */
export function encodeWeightedUpdate(
  update: ArrayLike<number>,
  numExamples: number,
  cfg: FixedPointConfig,
): Uint32Array {
  if (!Number.isInteger(numExamples) || numExamples < 0 || numExamples > cfg.maxWeight) {
    fail(
      'encodeWeightedUpdate',
      `numExamples must be an integer in [0, maxWeight = ${cfg.maxWeight}], got ${numExamples}`,
    );
  }
  const out = new Uint32Array(update.length + 1);
  encodeFixedInto(update, cfg, numExamples, out, 0);
  out[update.length] = numExamples;
  return out;
}

export interface WeightedAverage {
  /** sum_i n_i x_i / sum_i n_i, rounded once to Float32. */
  average: Float32Array;
  /** sum_i n_i over the clients included in the sum. */
  totalWeight: number;
}

/**
 * Server side of weighted FedAvg: splits the aggregated [sum n_i x_i, sum n_i] and divides.
 * Throws if the total weight is 0 (no examples anywhere: the average is undefined).
 */
export function decodeWeightedAverage(sum: Uint32Array, cfg: FixedPointConfig): WeightedAverage {
  const fn = 'decodeWeightedAverage';
  if (sum.length < 1) fail(fn, 'the sum is empty (it must end with the weight coordinate)');
  const d = sum.length - 1;
  const totalWeight = sum[d] | 0;
  if (totalWeight < 0)
    fail(fn, `the weight coordinate decodes to ${totalWeight}: the sum overflowed or is not a weighted encoding`);
  if (totalWeight === 0) fail(fn, 'the total weight is 0, so the average is undefined');
  const s = decodeFixedSum(sum.subarray(0, d), cfg);
  const average = new Float32Array(d);
  for (let j = 0; j < d; j++) average[j] = s[j] / totalWeight;
  return { average, totalWeight };
}
