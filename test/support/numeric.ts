/** Numeric assertions shared by the reference tests of the pure core (fusion, server optimizers, robust rules). */
import assert from 'node:assert/strict';

export const ABS = 1e-6;
export const REL = 1e-5;

/** |a - b| <= abs + rel * max(|b|, scale) per element; scale covers results that cancel toward 0. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  abs = ABS,
  rel = REL,
  scale: ArrayLike<number> = [],
): void {
  assert.equal(actual.length, expected.length, 'length');
  for (let j = 0; j < expected.length; j++) {
    const tol = abs + rel * Math.max(Math.abs(expected[j]), scale[j] ?? 0);
    const diff = Math.abs(actual[j] - expected[j]);
    assert.ok(diff <= tol, `element ${j}: got ${actual[j]}, expected ${expected[j]} (diff ${diff} > tol ${tol})`);
  }
}

export function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let j = 0; j < ua.length; j++) if (ua[j] !== ub[j]) return false;
  return true;
}

/** Largest |x| per coordinate over several vectors: the natural scale of rounding errors there. */
export function coordScale(vectors: ArrayLike<number>[]): number[] {
  return Array.from({ length: vectors[0].length }, (_, j) => Math.max(...vectors.map((v) => Math.abs(v[j]))));
}
