/** Argument checks shared by the TypeScript and WebAssembly kernels: the same checks, the same messages. Browser-safe. */
export const MAX_DIM = 2147483647; // the native side passes dimensions to BLAS as 32-bit ints

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (ArrayBuffer.isView(v)) return Object.prototype.toString.call(v).slice(8, -1);
  if (Array.isArray(v)) return 'Array';
  return typeof v;
}

export function f32(fn: string, name: string, v: unknown): void {
  if (!(v instanceof Float32Array)) throw new TypeError(`${fn}: ${name} must be a Float32Array, got ${describe(v)}`);
}

export function i32(fn: string, name: string, v: unknown): void {
  if (!(v instanceof Int32Array)) throw new TypeError(`${fn}: ${name} must be an Int32Array, got ${describe(v)}`);
}

export function num(fn: string, name: string, v: unknown): void {
  if (typeof v !== 'number') throw new TypeError(`${fn}: ${name} must be a number, got ${describe(v)}`);
}

export function bool(fn: string, name: string, v: unknown): void {
  if (typeof v !== 'boolean') throw new TypeError(`${fn}: ${name} must be a boolean, got ${describe(v)}`);
}

export function dim(fn: string, name: string, v: unknown): void {
  num(fn, name, v);
  const d = v as number;
  if (!(Number.isInteger(d) && d >= 0 && d <= MAX_DIM)) {
    throw new RangeError(`${fn}: ${name} must be a non-negative integer, got ${d}`);
  }
}

export function need(fn: string, name: string, arr: ArrayLike<number>, n: number, what: string): void {
  if (arr.length < n) throw new RangeError(`${fn}: ${name} has ${arr.length} elements, needs at least ${n} (${what})`);
}

export function overlaps(x: Float32Array, xn: number, y: Float32Array, yn: number): boolean {
  if (xn === 0 || yn === 0 || x.buffer !== y.buffer) return false;
  const x0 = x.byteOffset, y0 = y.byteOffset;
  return x0 < y0 + yn * 4 && y0 < x0 + xn * 4;
}
