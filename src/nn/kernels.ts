/**
 * The numeric kernels the training engine needs. Two implementations share this interface:
 * a native addon over OpenBLAS (Node, when built) and plain TypeScript (everywhere).
 * All matrices are row-major Float32Arrays; views (subarray) are allowed.
 */
export interface Kernels {
  readonly name: string;
  /** C = alpha * op(A) * op(B) + beta * C, op(A) is m x k, op(B) is k x n, C is m x n. */
  gemm(
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
  ): void;
  /** Adds bias (length n) to each of the m rows of c; applies ReLU after when relu is true. */
  biasAct(c: Float32Array, bias: Float32Array, m: number, n: number, relu: boolean): void;
  /** delta[i] = 0 where act[i] <= 0 (ReLU backward through its output). */
  reluBackward(delta: Float32Array, act: Float32Array): void;
  /** out[j] = sum over rows of a (m x n). */
  colSum(a: Float32Array, m: number, n: number, out: Float32Array): void;
  /**
   * Softmax cross-entropy over logits (m x n) with integer labels. Writes (softmax - onehot) * scale
   * into delta and returns the summed loss and the count of correct argmax predictions.
   */
  softmaxXent(
    logits: Float32Array,
    labels: Int32Array,
    m: number,
    n: number,
    scale: number,
    delta: Float32Array,
  ): { loss: number; correct: number };
  /**
   * Adam step in place, as tfjs computes it: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
   * w -= lr * (m / (1 - b1^step)) / (sqrt(v / (1 - b2^step)) + eps). step counts from 1.
   */
  adam(
    w: Float32Array,
    g: Float32Array,
    m: Float32Array,
    v: Float32Array,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    step: number,
  ): void;
  /** SGD step in place; with momentum > 0, vel holds the velocity (v = mu v + g; w -= lr v). */
  sgd(w: Float32Array, g: Float32Array, lr: number, momentum: number, vel: Float32Array | null): void;
  /**
   * Optional (native only; others copy row by row): copies rows order[start .. start + m) of x, `features` floats
   * each, into out (m x features), exactly. Throws on an index that is not a row of x, before writing.
   */
  gatherRows?(x: Float32Array, features: number, order: Int32Array, start: number, m: number, out: Float32Array): void;
}
