/**
 * The `Kernels` in plain TypeScript. BROWSER-SAFE: this file imports nothing from Node and must stay
 * that way (browsers and the wasm-less fallback run it). The native addon (native/kernels.cc) follows
 * the same semantics and error messages, so either can stand in for the other:
 * - gemm has BLAS semantics: beta = 0 overwrites C without reading it (NaN in C does not leak), and
 *   alpha = 0 or k = 0 only scales C by beta (A and B are not read). C must not overlap A or B.
 * - Elementwise results match the native addon bit for bit (same operation order, double
 *   intermediates rounded to float32 where the data is stored); gemm and softmaxXent agree to rounding.
 * - Wrong argument types throw TypeError, too-short arrays and bad values RangeError, before anything
 *   is written.
 */
import type { Kernels } from './kernels.js';
import {
  checkAdam,
  checkBiasAct,
  checkColSum,
  checkGemm,
  checkReluBackward,
  checkSgd,
  checkSoftmaxXent,
  gemmWithoutProducts,
} from './kernel-checks.js';

/** Scratch reused across calls so the hot loops never allocate; grows to the largest row seen. */
let scratch = new Float64Array(1024);
function scratchOf(n: number): Float64Array {
  if (scratch.length < n) scratch = new Float64Array(Math.max(n, scratch.length * 2));
  return scratch;
}

/** Writes row i of C from the float64 accumulator: C = alpha * acc + beta * C. */
function storeRow(c: Float32Array, cOff: number, acc: Float64Array, n: number, alpha: number, beta: number): void {
  if (beta === 0) for (let j = 0; j < n; j++) c[cOff + j] = alpha * acc[j];
  else for (let j = 0; j < n; j++) c[cOff + j] = alpha * acc[j] + beta * c[cOff + j];
}

function gemm(
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
  checkGemm(transA, transB, m, n, k, alpha, a, b, beta, c);
  if (gemmWithoutProducts(m, n, k, alpha, beta, c)) return;

  if (!transB) {
    // op(B) rows are contiguous: i-k-j, accumulating a row of C in float64. k is unrolled by 4 so the
    // accumulator is loaded and stored once per four multiply-adds.
    const acc = scratchOf(n);
    const sa = transA ? m : 1; // stride between consecutive k of op(A) row i
    const k4 = k - (k % 4);
    for (let i = 0; i < m; i++) {
      acc.fill(0, 0, n);
      const aRow = transA ? i : i * k;
      let p = 0;
      for (; p < k4; p += 4) {
        const a0 = a[aRow + p * sa],
          a1 = a[aRow + (p + 1) * sa],
          a2 = a[aRow + (p + 2) * sa],
          a3 = a[aRow + (p + 3) * sa];
        const b0 = p * n,
          b1 = b0 + n,
          b2 = b1 + n,
          b3 = b2 + n;
        for (let j = 0; j < n; j++) acc[j] += a0 * b[b0 + j] + a1 * b[b1 + j] + a2 * b[b2 + j] + a3 * b[b3 + j];
      }
      for (; p < k; p++) {
        const ap = a[aRow + p * sa];
        const bOff = p * n;
        for (let j = 0; j < n; j++) acc[j] += ap * b[bOff + j];
      }
      storeRow(c, i * n, acc, n, alpha, beta);
    }
    return;
  }

  // op(B) = B^T, B stored n x k: row j of B is column j of op(B), so C[i,j] is a contiguous dot product
  // (i-j-p beats i-k-j here, whose inner loop would stride B by k). For transA, column i of A is first
  // gathered into a contiguous float64 row.
  const k4 = k - (k % 4);
  const col = transA ? scratchOf(k) : null;
  for (let i = 0; i < m; i++) {
    let src: Float32Array | Float64Array = a;
    let aOff = i * k;
    if (col) {
      for (let p = 0; p < k; p++) col[p] = a[p * m + i];
      src = col;
      aOff = 0;
    }
    const cOff = i * n;
    for (let j = 0; j < n; j++) {
      const bOff = j * k;
      let s0 = 0,
        s1 = 0,
        s2 = 0,
        s3 = 0;
      let p = 0;
      for (; p < k4; p += 4) {
        s0 += src[aOff + p] * b[bOff + p];
        s1 += src[aOff + p + 1] * b[bOff + p + 1];
        s2 += src[aOff + p + 2] * b[bOff + p + 2];
        s3 += src[aOff + p + 3] * b[bOff + p + 3];
      }
      for (; p < k; p++) s0 += src[aOff + p] * b[bOff + p];
      const s = s0 + s1 + (s2 + s3);
      c[cOff + j] = beta === 0 ? alpha * s : alpha * s + beta * c[cOff + j];
    }
  }
}

function biasAct(c: Float32Array, bias: Float32Array, m: number, n: number, relu: boolean): void {
  checkBiasAct(c, bias, m, n, relu);
  for (let i = 0; i < m; i++) {
    const off = i * n;
    if (relu) {
      for (let j = 0; j < n; j++) {
        const x = c[off + j] + bias[j];
        c[off + j] = x < 0 ? 0 : x; // keeps NaN visible, as the native side does
      }
    } else {
      for (let j = 0; j < n; j++) c[off + j] += bias[j];
    }
  }
}

function reluBackward(delta: Float32Array, act: Float32Array): void {
  checkReluBackward(delta, act);
  const len = delta.length;
  for (let i = 0; i < len; i++) if (act[i] <= 0) delta[i] = 0;
}

function colSum(a: Float32Array, m: number, n: number, out: Float32Array): void {
  checkColSum(a, m, n, out);
  // Row-wise float32 accumulation: cache-friendly, and identical to the native loop bit for bit.
  out.fill(0, 0, n);
  for (let i = 0; i < m; i++) {
    const off = i * n;
    for (let j = 0; j < n; j++) out[j] += a[off + j];
  }
}

function softmaxXent(
  logits: Float32Array,
  labels: Int32Array,
  m: number,
  n: number,
  scale: number,
  delta: Float32Array,
): { loss: number; correct: number } {
  checkSoftmaxXent(logits, labels, m, n, scale, delta);
  let loss = 0;
  let correct = 0;
  for (let i = 0; i < m; i++) {
    const off = i * n;
    const label = labels[i];
    let max = logits[off];
    let arg = 0;
    for (let j = 1; j < n; j++) {
      const x = logits[off + j];
      if (x > max) {
        max = x;
        arg = j;
      } // strict: the first maximum wins ties
    }
    if (arg === label) correct++;
    const xLabel = logits[off + label]; // read before delta (which may alias logits) is written
    let sum = 0;
    for (let j = 0; j < n; j++) {
      const e = Math.exp(logits[off + j] - max);
      delta[off + j] = e;
      sum += e;
    }
    // loss = logsumexp(x) - x_label, stable because every exponent is <= 0.
    loss += Math.log(sum) + (max - xLabel);
    const inv = scale / sum;
    for (let j = 0; j < n; j++) delta[off + j] *= inv;
    delta[off + label] -= scale;
  }
  return { loss, correct };
}

function adam(
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
  checkAdam(w, g, m, v, lr, beta1, beta2, eps, step);
  const len = w.length;
  const bc1 = 1 - Math.pow(beta1, step);
  const bc2 = 1 - Math.pow(beta2, step);
  const ob1 = 1 - beta1,
    ob2 = 1 - beta2;
  for (let i = 0; i < len; i++) {
    const gi = g[i];
    // The moments are stored as float32, and the update uses the stored values (as tfjs does).
    const mi = Math.fround(beta1 * m[i] + ob1 * gi);
    const vi = Math.fround(beta2 * v[i] + ob2 * gi * gi);
    m[i] = mi;
    v[i] = vi;
    w[i] -= (lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + eps);
  }
}

function sgd(w: Float32Array, g: Float32Array, lr: number, momentum: number, vel: Float32Array | null): void {
  checkSgd(w, g, lr, momentum, vel);
  const len = w.length;
  if (momentum > 0) {
    const v = vel!; // checkSgd ensured a Float32Array of w.length when momentum > 0
    for (let i = 0; i < len; i++) {
      const vi = Math.fround(momentum * v[i] + g[i]);
      v[i] = vi;
      w[i] -= lr * vi;
    }
  } else {
    for (let i = 0; i < len; i++) w[i] -= lr * g[i];
  }
}

export const jsKernels: Kernels = Object.freeze({
  name: 'js',
  gemm,
  biasAct,
  reluBackward,
  colSum,
  softmaxXent,
  adam,
  sgd,
});
