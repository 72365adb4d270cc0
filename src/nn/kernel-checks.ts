/**
 * Argument checks shared by the TypeScript and WebAssembly kernels: the same checks, the same messages; and gemm's
 * calls that multiply nothing. Browser-safe.
 */
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
  const x0 = x.byteOffset,
    y0 = y.byteOffset;
  return x0 < y0 + yn * 4 && y0 < x0 + xn * 4;
}

/**
 * The gemm calls that multiply nothing, done as BLAS does them and the same in every implementation: m = 0 or
 * n = 0 touches nothing; alpha = 0 or k = 0 only scales C by beta (beta = 0 writes zeros, so NaN in C does not
 * leak; A and B are not read). Returns whether the call was one of them (and so is done).
 */
export function gemmWithoutProducts(
  m: number,
  n: number,
  k: number,
  alpha: number,
  beta: number,
  c: Float32Array,
): boolean {
  if (m === 0 || n === 0) return true;
  if (alpha !== 0 && k !== 0) return false;
  const len = m * n;
  if (beta === 0) c.fill(0, 0, len);
  else if (beta !== 1) for (let i = 0; i < len; i++) c[i] *= beta;
  return true;
}

// Each kernel's full argument check, run before anything is written, by every implementation.

export function checkGemm(
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  b: Float32Array,
  beta: number,
  c: Float32Array,
): void {
  const fn = 'gemm';
  bool(fn, 'transA', transA);
  bool(fn, 'transB', transB);
  dim(fn, 'm', m);
  dim(fn, 'n', n);
  dim(fn, 'k', k);
  num(fn, 'alpha', alpha);
  num(fn, 'beta', beta);
  f32(fn, 'a', a);
  f32(fn, 'b', b);
  f32(fn, 'c', c);
  need(fn, 'a', a, m * k, 'm*k');
  need(fn, 'b', b, k * n, 'k*n');
  need(fn, 'c', c, m * n, 'm*n');
  if (overlaps(c, m * n, a, m * k) || overlaps(c, m * n, b, k * n))
    throw new RangeError('gemm: c must not overlap a or b');
}

export function checkBiasAct(c: Float32Array, bias: Float32Array, m: number, n: number, relu: boolean): void {
  const fn = 'biasAct';
  f32(fn, 'c', c);
  f32(fn, 'bias', bias);
  dim(fn, 'm', m);
  dim(fn, 'n', n);
  bool(fn, 'relu', relu);
  need(fn, 'c', c, m * n, 'm*n');
  need(fn, 'bias', bias, n, 'n');
}

export function checkReluBackward(delta: Float32Array, act: Float32Array): void {
  const fn = 'reluBackward';
  f32(fn, 'delta', delta);
  f32(fn, 'act', act);
  need(fn, 'act', act, delta.length, 'delta.length');
}

export function checkColSum(a: Float32Array, m: number, n: number, out: Float32Array): void {
  const fn = 'colSum';
  f32(fn, 'a', a);
  dim(fn, 'm', m);
  dim(fn, 'n', n);
  f32(fn, 'out', out);
  need(fn, 'a', a, m * n, 'm*n');
  need(fn, 'out', out, n, 'n');
}

export function checkSoftmaxXent(
  logits: Float32Array,
  labels: Int32Array,
  m: number,
  n: number,
  scale: number,
  delta: Float32Array,
): void {
  const fn = 'softmaxXent';
  f32(fn, 'logits', logits);
  i32(fn, 'labels', labels);
  dim(fn, 'm', m);
  dim(fn, 'n', n);
  num(fn, 'scale', scale);
  f32(fn, 'delta', delta);
  need(fn, 'logits', logits, m * n, 'm*n');
  need(fn, 'labels', labels, m, 'm');
  need(fn, 'delta', delta, m * n, 'm*n');
  for (let i = 0; i < m; i++) {
    const l = labels[i];
    if (l < 0 || l >= n) throw new RangeError(`${fn}: labels[${i}] = ${l} is out of range [0, ${n})`);
  }
}

export function checkAdam(
  w: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  lr: number,
  beta1: number,
  beta2: number,
  eps: number,
  step: number,
): void {
  const fn = 'adam';
  f32(fn, 'w', w);
  f32(fn, 'g', g);
  f32(fn, 'm', m);
  f32(fn, 'v', v);
  num(fn, 'lr', lr);
  num(fn, 'beta1', beta1);
  num(fn, 'beta2', beta2);
  num(fn, 'eps', eps);
  num(fn, 'step', step);
  if (!(Number.isInteger(step) && step >= 1))
    throw new RangeError(`${fn}: step must be a positive integer, got ${step}`);
  const len = w.length;
  need(fn, 'g', g, len, 'w.length');
  need(fn, 'm', m, len, 'w.length');
  need(fn, 'v', v, len, 'w.length');
}

export function checkSgd(
  w: Float32Array,
  g: Float32Array,
  lr: number,
  momentum: number,
  vel: Float32Array | null,
): void {
  const fn = 'sgd';
  f32(fn, 'w', w);
  f32(fn, 'g', g);
  num(fn, 'lr', lr);
  num(fn, 'momentum', momentum);
  if (!(momentum >= 0)) throw new RangeError(`${fn}: momentum must be >= 0, got ${momentum}`);
  need(fn, 'g', g, w.length, 'w.length');
  if (momentum > 0) {
    if (!(vel instanceof Float32Array))
      throw new TypeError(`${fn}: vel must be a Float32Array when momentum > 0, got ${describe(vel)}`);
    need(fn, 'vel', vel, w.length, 'w.length');
  }
}
