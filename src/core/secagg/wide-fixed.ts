/**
 * Wide fixed point for secure sums of statistics (counts, sums, sums of squares) that do not fit the 32-bit
 * ring of fixed-point.ts: a value x becomes the integer q = round(x * 2^fractionBits), written in two's
 * complement modulo 2^(16 * limbs) as `limbs` 16-bit digits, each in its own 32-bit word (least significant
 * first). Secure aggregation adds the words mod 2^32; a digit sum of n clients is at most n * (2^16 - 1), which
 * stays below 2^32 for n <= MAX_WIDE_CLIENTS, so no digit sum wraps and the carries are resolved after
 * unmasking, exactly, in BigInt. The decoded sum is sum_i q_i exactly (no rounding at all in the sum) as long as
 * it fits the signed range: |sum_i q_i| < 2^(16 * limbs - 1), which `wideLimbsFor` sizes the limbs for.
 *
 * ERROR BOUND: only each client's rounding of x to q: |decoded - sum_i x_i| <= n * 2^-(fractionBits + 1).
 */

/** Most clients whose digit sums cannot wrap a 32-bit word: n * (2^16 - 1) < 2^32. */
export const MAX_WIDE_CLIENTS = 65536;

export interface WideFixedConfig {
  /** x is stored as round(x * 2^fractionBits); a whole number in [0, 64]. */
  readonly fractionBits: number;
  /** 16-bit digits per value; a whole number in [1, 16] (up to 256-bit integers). */
  readonly limbs: number;
}

const DIGIT = 16n;
const DIGIT_MASK = 0xffffn;

/** Checks a config; throws naming the bad field. */
export function checkWideConfig(cfg: WideFixedConfig): WideFixedConfig {
  if (!(Number.isInteger(cfg.fractionBits) && cfg.fractionBits >= 0 && cfg.fractionBits <= 64))
    throw new Error(`wide fixed point: fractionBits must be a whole number in [0, 64], got ${cfg.fractionBits}`);
  if (!(Number.isInteger(cfg.limbs) && cfg.limbs >= 1 && cfg.limbs <= 16))
    throw new Error(`wide fixed point: limbs must be a whole number in [1, 16], got ${cfg.limbs}`);
  return cfg;
}

/**
 * The fewest 16-bit limbs whose signed range holds the sum of `clients` values each at most `maxAbs` in
 * magnitude at `fractionBits`, with one spare bit for rounding. Throws if that needs more than 16 limbs or
 * more than MAX_WIDE_CLIENTS clients.
 */
export function wideLimbsFor(maxAbs: number, clients: number, fractionBits: number): number {
  if (!(Number.isFinite(maxAbs) && maxAbs >= 0)) throw new Error(`wide fixed point: bad magnitude ${maxAbs}`);
  if (!(Number.isInteger(clients) && clients >= 1 && clients <= MAX_WIDE_CLIENTS))
    throw new Error(`wide fixed point: clients must be a whole number in [1, ${MAX_WIDE_CLIENTS}], got ${clients}`);
  // bits of |sum q| <= clients * (maxAbs * 2^f + 1/2), plus the sign bit and one spare.
  const integerBits = Math.ceil(Math.log2(clients * Math.max(1, maxAbs) + 1)) + 2;
  const limbs = Math.ceil((integerBits + fractionBits) / 16);
  if (limbs > 16)
    throw new Error(
      `wide fixed point: sums up to ${clients} x ${maxAbs} at ${fractionBits} fraction bits need ${limbs * 16} bits, ` +
        'more than 256: declare narrower value ranges',
    );
  return limbs;
}

/** Encodes values into values.length * limbs words (see the module comment). Throws on a non-finite value. */
export function encodeWide(values: ArrayLike<number>, cfg: WideFixedConfig): Uint32Array {
  checkWideConfig(cfg);
  const { limbs } = cfg;
  const scale = 2 ** cfg.fractionBits;
  const out = new Uint32Array(values.length * limbs);
  for (let j = 0; j < values.length; j++) {
    const v = values[j];
    if (!Number.isFinite(v)) throw new Error(`encodeWide: values[${j}] is ${v}; only finite values can be encoded`);
    // v * 2^f is exact (a power of two); Math.round of a double is an exact integer-valued double.
    let q = BigInt.asUintN(16 * limbs, BigInt(Math.round(v * scale)));
    for (let k = 0; k < limbs; k++) {
      out[j * limbs + k] = Number(q & DIGIT_MASK);
      q >>= DIGIT;
    }
  }
  return out;
}

/**
 * The exact integer sums (scaled by 2^fractionBits) from summed words: carries resolved, read as signed.
 * `sum` must be the word-wise sum mod 2^32 of at most MAX_WIDE_CLIENTS encodings.
 */
export function decodeWideSum(sum: Uint32Array, cfg: WideFixedConfig): bigint[] {
  checkWideConfig(cfg);
  const { limbs } = cfg;
  if (sum.length % limbs !== 0) throw new Error(`decodeWideSum: ${sum.length} words are not whole values of ${limbs}`);
  const out: bigint[] = [];
  for (let j = 0; j < sum.length; j += limbs) {
    let total = 0n;
    for (let k = limbs - 1; k >= 0; k--) total = (total << DIGIT) + BigInt(sum[j + k]);
    out.push(BigInt.asIntN(16 * limbs, total));
  }
  return out;
}

/** A scaled integer from decodeWideSum as a number: round-to-nearest of q / 2^fractionBits. */
export function wideToNumber(q: bigint, cfg: Pick<WideFixedConfig, 'fractionBits'>): number {
  return Number(q) / 2 ** cfg.fractionBits;
}
