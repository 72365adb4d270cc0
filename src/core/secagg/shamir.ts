/**
 * Shamir t-of-n secret sharing over GF(p), p = 2^127 - 1 (a Mersenne prime), with bigint arithmetic.
 *
 * A field secret s is the constant term of a random polynomial f of degree t-1; party x gets f(x).
 * Any t shares give f(0) = s by Lagrange interpolation at 0; any t-1 shares are uniformly distributed and
 * independent of s (information-theoretic), so with t-1 shares every secret is equally likely.
 *
 * Byte secrets (32-byte seeds and X25519 private keys) are cut into 15-byte chunks (120 bits < 127 bits),
 * one field element each, all shared with the same threshold; a share of a 32-byte secret is 3 field
 * elements = 48 bytes. Reconstruction checks each chunk fits back into 15 bytes, which catches most
 * wrong reconstructions (too few or inconsistent shares) with probability 1 - 2^-7 per chunk.
 *
 * Share x-coordinates are small positive integers (EdgeFed uses the client id), never 0 (that is the secret).
 */
import { drawBytes, type RandomBytes } from './random.js';

export const FIELD_PRIME = (1n << 127n) - 1n;
/** Bytes of one serialized field element (little-endian). */
export const ELEMENT_BYTES = 16;
/** Secret bytes carried per field element. */
export const CHUNK_BYTES = 15;

export interface FieldPoint {
  x: bigint;
  y: bigint;
}

/** A share of a byte secret: its x-coordinate and the field elements f_k(x) serialized (16 bytes each, LE). */
export interface ByteShare {
  x: number;
  y: Uint8Array;
}

function mod(a: bigint): bigint {
  const r = a % FIELD_PRIME;
  return r < 0n ? r + FIELD_PRIME : r;
}

/** Multiplicative inverse in GF(p) by the extended Euclidean algorithm; throws on 0. */
export function invert(a: bigint): bigint {
  let r0 = mod(a);
  if (r0 === 0n) throw new Error('invert: 0 has no inverse');
  let r1 = FIELD_PRIME;
  let s0 = 1n;
  let s1 = 0n;
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return mod(s0);
}

/** A uniform field element from 16 random bytes (top bit cleared; rejection of the single value p). */
export function randomFieldElement(randomBytes: RandomBytes): bigint {
  for (;;) {
    const b = drawBytes(randomBytes, ELEMENT_BYTES, 'randomFieldElement');
    b[ELEMENT_BYTES - 1] &= 0x7f;
    const v = bytesToBigint(b);
    if (v < FIELD_PRIME) return v;
  }
}

function bytesToBigint(b: Uint8Array): bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  return v;
}

function bigintToBytes(v: bigint, out: Uint8Array, offset: number, length: number): void {
  for (let i = 0; i < length; i++) {
    out[offset + i] = Number(v & 0xffn);
    v >>= 8n;
  }
}

function checkThresholdAndXs(fn: string, threshold: number, xs: readonly number[]): void {
  if (!Number.isInteger(threshold) || threshold < 1)
    throw new Error(`${fn}: threshold must be an integer >= 1, got ${threshold}`);
  if (xs.length < threshold) throw new Error(`${fn}: ${xs.length} shares cannot meet threshold ${threshold}`);
  const seen = new Set<number>();
  for (const x of xs) {
    if (!Number.isSafeInteger(x) || x < 1)
      throw new Error(`${fn}: share x-coordinates must be integers >= 1, got ${x}`);
    if (seen.has(x)) throw new Error(`${fn}: x-coordinate ${x} appears twice`);
    seen.add(x);
  }
}

/** Evaluates the polynomial with coefficients coeffs (constant term first) at x, by Horner's rule. */
function evaluate(coeffs: readonly bigint[], x: bigint): bigint {
  let acc = 0n;
  for (let k = coeffs.length - 1; k >= 0; k--) acc = (acc * x + coeffs[k]) % FIELD_PRIME;
  return acc;
}

/** Shares a field element: returns f(x) for each x in xs, where f has degree threshold-1 and f(0) = secret. */
export function shareField(
  secret: bigint,
  threshold: number,
  xs: readonly number[],
  randomBytes: RandomBytes,
): bigint[] {
  checkThresholdAndXs('shareField', threshold, xs);
  if (secret < 0n || secret >= FIELD_PRIME) throw new Error('shareField: the secret must be in [0, p)');
  const coeffs = [secret];
  for (let k = 1; k < threshold; k++) coeffs.push(randomFieldElement(randomBytes));
  return xs.map((x) => evaluate(coeffs, BigInt(x)));
}

/**
 * The Lagrange basis values L_i(0) = prod_{j != i} x_j / (x_j - x_i) for the given distinct x's, so that
 * f(0) = sum_i L_i(0) * f(x_i) for every polynomial of degree < xs.length.
 */
export function lagrangeAtZero(xs: readonly bigint[]): bigint[] {
  return xs.map((xi, i) => {
    let num = 1n;
    let den = 1n;
    for (let j = 0; j < xs.length; j++) {
      if (j === i) continue;
      num = (num * xs[j]) % FIELD_PRIME;
      den = mod(den * (xs[j] - xi));
    }
    return (num * invert(den)) % FIELD_PRIME;
  });
}

/**
 * Interpolates f(0) from the points (all of them: pass exactly t for a degree t-1 polynomial). With fewer
 * than t points the result is a field element unrelated to the secret.
 */
export function reconstructField(points: readonly FieldPoint[]): bigint {
  if (points.length === 0) throw new Error('reconstructField: no shares given');
  const xs = points.map((p) => mod(p.x));
  if (xs.some((x) => x === 0n)) throw new Error('reconstructField: x = 0 is not a valid share coordinate');
  if (new Set(xs).size !== xs.length) throw new Error('reconstructField: two shares have the same x-coordinate');
  const l = lagrangeAtZero(xs);
  let acc = 0n;
  for (let i = 0; i < points.length; i++) acc = (acc + l[i] * mod(points[i].y)) % FIELD_PRIME;
  return acc;
}

// The server reconstructs many secrets from the same set of responders: remember the last coefficients.
// (Deterministic memo of a pure function, so it cannot change any result.)
let lastXs = '';
let lastCoefficients: bigint[] = [];
function lagrangeCached(xs: readonly number[]): bigint[] {
  const key = xs.join(',');
  if (key !== lastXs) {
    lastCoefficients = lagrangeAtZero(xs.map((x) => BigInt(x)));
    lastXs = key;
  }
  return lastCoefficients;
}

/** Number of field elements (15-byte chunks) a byte secret of this length needs. */
export function chunkCount(byteLength: number): number {
  return Math.max(1, Math.ceil(byteLength / CHUNK_BYTES));
}

/** Byte length of one share of a byte secret of this length. */
export function shareByteLength(secretByteLength: number): number {
  return chunkCount(secretByteLength) * ELEMENT_BYTES;
}

/** Shares a byte string t-of-n: one ByteShare per x in xs (the secret's length is public). */
export function shareBytes(
  secret: Uint8Array,
  threshold: number,
  xs: readonly number[],
  randomBytes: RandomBytes,
): ByteShare[] {
  checkThresholdAndXs('shareBytes', threshold, xs);
  const k = chunkCount(secret.length);
  const shares = xs.map((x) => ({ x, y: new Uint8Array(k * ELEMENT_BYTES) }));
  for (let c = 0; c < k; c++) {
    const chunk = bytesToBigint(secret.subarray(c * CHUNK_BYTES, Math.min(secret.length, (c + 1) * CHUNK_BYTES)));
    const ys = shareField(chunk, threshold, xs, randomBytes);
    for (let i = 0; i < xs.length; i++) bigintToBytes(ys[i], shares[i].y, c * ELEMENT_BYTES, ELEMENT_BYTES);
  }
  return shares;
}

/**
 * Reconstructs a byte secret of byteLength bytes from at least `threshold` shares (the first `threshold`
 * are used). Throws if there are too few shares, if they disagree in size or x, or if a reconstructed
 * chunk does not fit its byte range (the shares were too few or inconsistent).
 */
export function reconstructBytes(shares: readonly ByteShare[], threshold: number, byteLength: number): Uint8Array {
  const fn = 'reconstructBytes';
  if (!Number.isInteger(byteLength) || byteLength < 0)
    throw new Error(`${fn}: byteLength must be a whole number, got ${byteLength}`);
  if (!Number.isInteger(threshold) || threshold < 1)
    throw new Error(`${fn}: threshold must be an integer >= 1, got ${threshold}`);
  if (shares.length < threshold) throw new Error(`${fn}: ${shares.length} shares given but ${threshold} are needed`);
  const use = shares.slice(0, threshold);
  checkThresholdAndXs(
    fn,
    threshold,
    use.map((s) => s.x),
  );
  const k = chunkCount(byteLength);
  for (const s of use) {
    if (!(s.y instanceof Uint8Array) || s.y.length !== k * ELEMENT_BYTES) {
      throw new Error(
        `${fn}: share for x = ${s.x} has ${s.y?.length} bytes, expected ${k * ELEMENT_BYTES} for a ${byteLength}-byte secret`,
      );
    }
  }
  const l = lagrangeCached(use.map((s) => s.x));
  const out = new Uint8Array(byteLength);
  for (let c = 0; c < k; c++) {
    let acc = 0n;
    for (let i = 0; i < use.length; i++) {
      const y = bytesToBigint(use[i].y.subarray(c * ELEMENT_BYTES, (c + 1) * ELEMENT_BYTES));
      if (y >= FIELD_PRIME) throw new Error(`${fn}: share for x = ${use[i].x} holds a value outside the field`);
      acc = (acc + l[i] * y) % FIELD_PRIME;
    }
    const len = Math.min(CHUNK_BYTES, byteLength - c * CHUNK_BYTES);
    if (len > 0 ? acc >> BigInt(8 * len) !== 0n : acc !== 0n) {
      throw new Error(`${fn}: chunk ${c} reconstructs out of range: the shares are too few or inconsistent`);
    }
    if (len > 0) bigintToBytes(acc, out, c * CHUNK_BYTES, len);
  }
  return out;
}
