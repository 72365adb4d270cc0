/**
 * GRU and LSTM layers for SeqNet, with the semantics of tfjs-layers' (Keras 2) GRU and LSTM, so weights
 * move between the engine and tfjs as they are:
 * - inputs are m x T x F (batch, time, features), row-major; the state starts at zero each batch;
 * - weights, in tfjs order: kernel [F, G * U], recurrent_kernel [U, G * U], bias [G * U], with the
 *   gates side by side in each: GRU (G = 3) z (update), r (reset), h (candidate); LSTM (G = 4)
 *   i (input), f (forget), c (cell candidate), o (output);
 * - GRU with reset_after = false (tfjs supports nothing else): hh = act(x Wh + bh + (r * h) Uh),
 *   h' = z * h + (1 - z) * hh; LSTM: c' = f * c + i * act(x Wc + h Uc + bc), h' = o * act(c');
 * - the recurrent activation defaults to tfjs's hardSigmoid (clip(0.2 x + 0.5, 0, 1)); sigmoid works too;
 * - returnSequences: the output is every step's h (m x T x U), else the last one (m x U).
 *
 * The input projection of all T steps is one gemm (m * T rows), each step's recurrent product one gemm
 * of m rows; backpropagation through time walks the steps backwards with the gates cached forward.
 * Gradients are checked against finite differences and tfjs in recurrent.test.ts.
 *
 * BROWSER-SAFE: imports nothing from Node.
 */
import type { Kernels } from './kernels.js';
import type { Buf, KernelMemory } from './kernel-memory.js';
import type { LayerOp } from './layer-op.js';
import type { TensorSpec } from '../core/params.js';

export type RecurrentActivation = 'hardSigmoid' | 'sigmoid';
/** Activations of the candidate / cell state. */
export type CellActivation = 'tanh' | 'relu' | 'linear' | 'sigmoid';
export const RECURRENT_ACTIVATIONS: readonly string[] = ['hardSigmoid', 'sigmoid'] satisfies RecurrentActivation[];
export const CELL_ACTIVATIONS: readonly string[] = ['tanh', 'relu', 'linear', 'sigmoid'] satisfies CellActivation[];

export interface RecurrentConfig {
  name: string;
  units: number;
  activation: CellActivation;
  recurrentActivation: RecurrentActivation;
  returnSequences: boolean;
}

function activate(a: CellActivation | RecurrentActivation, v: number): number {
  switch (a) {
    case 'tanh':
      return Math.tanh(v);
    case 'sigmoid':
      return 1 / (1 + Math.exp(-v));
    case 'hardSigmoid':
      return Math.min(1, Math.max(0, 0.2 * v + 0.5));
    case 'relu':
      return v > 0 ? v : 0;
    case 'linear':
      return v;
  }
}

/** The activation's derivative, from its output y (every activation here is invertible enough for that). */
function slope(a: CellActivation | RecurrentActivation, y: number): number {
  switch (a) {
    case 'tanh':
      return 1 - y * y;
    case 'sigmoid':
      return y * (1 - y);
    case 'hardSigmoid':
      return y > 0 && y < 1 ? 0.2 : 0;
    case 'relu':
      return y > 0 ? 1 : 0;
    case 'linear':
      return 1;
  }
}

/** Buffers by name, allocated (in the order of `sizes`) from `mem`; the ones in `old` are dropped. */
function allocBufs<K extends string>(
  mem: KernelMemory,
  old: Partial<Record<K, Buf<Float32Array>>>,
  sizes: Record<K, number>,
): Record<K, Buf<Float32Array>> {
  mem.drop(Object.values<Buf<Float32Array> | undefined>(old).filter((b) => b !== undefined));
  const bufs = {} as Record<K, Buf<Float32Array>>;
  for (const key of Object.keys(sizes) as K[]) bufs[key] = mem.f32(sizes[key]);
  return bufs;
}

/**
 * What GRU and LSTM share: the input projection x K + b over all steps, its backward pass, the output, and
 * their buffers (the cell's own ones named by Fwd and Bwd, sized by forwardSizes and backwardSizes).
 */
abstract class RecurrentOp<Fwd extends string, Bwd extends string> implements LayerOp {
  readonly kind = 'layer';
  readonly name: string;
  readonly inSize: number;
  readonly outSize: number;
  readonly outShape: number[];
  readonly tensors: TensorSpec[];
  readonly differentiableInput = true;
  protected readonly U: number;
  protected readonly G: number;
  protected readonly kOff: number;
  protected readonly rOff: number;
  protected readonly bOff: number;
  protected fwdCap = 0;
  protected bwdCap = 0;
  /**
   * Forward caches for fwdCap examples: xp = x K + b for every (example, step) row (m * T x G, rows in input
   * order); hs, the hidden states, step-major ((T + 1) x m x U, slot 0 the zero initial state); gates, the
   * activated gates per step, step-major (T x m x G); and the cell's own.
   */
  protected fwd = {} as Record<Fwd | 'xp' | 'hs' | 'gates', Buf<Float32Array>>;
  /** Backward scratch for bwdCap examples: dxp, the gradient of xp; and the cell's own. */
  protected bwd = {} as Record<Bwd | 'dxp', Buf<Float32Array>>;

  constructor(
    readonly cfg: RecurrentConfig,
    gates: number,
    protected readonly T: number,
    protected readonly F: number,
    readonly wOff: number,
  ) {
    this.name = cfg.name;
    this.U = cfg.units;
    this.G = gates * cfg.units;
    this.inSize = T * F;
    this.outShape = cfg.returnSequences ? [T, cfg.units] : [cfg.units];
    this.outSize = this.outShape.reduce((a, b) => a * b, 1);
    this.kOff = wOff;
    this.rOff = wOff + F * this.G;
    this.bOff = this.rOff + this.U * this.G;
    this.tensors = [
      { name: `${cfg.name}/kernel`, shape: [F, this.G] },
      { name: `${cfg.name}/recurrent_kernel`, shape: [this.U, this.G] },
      { name: `${cfg.name}/bias`, shape: [this.G] },
    ];
  }

  get numParams(): number {
    return this.bOff + this.G - this.wOff;
  }

  reserve(mem: KernelMemory, m: number, train: boolean): void {
    const { T, U, G } = this;
    if (m > this.fwdCap) {
      const shared = { xp: m * T * G, hs: (T + 1) * m * U, gates: T * m * G };
      this.fwd = allocBufs(mem, this.fwd, { ...shared, ...this.forwardSizes(m) });
      this.fwdCap = m;
    }
    if (train && m > this.bwdCap) {
      this.bwd = allocBufs(mem, this.bwd, { dxp: m * T * G, ...this.backwardSizes(m) });
      this.bwdCap = m;
    }
  }

  /** Floats of each of the cell's own forward caches and backward scratch buffers, for m examples. */
  protected abstract forwardSizes(m: number): Record<Fwd, number>;
  protected abstract backwardSizes(m: number): Record<Bwd, number>;
  /** The steps forward from xp = x K + b (m * T x G): gates, states and the output, each step emitted. */
  protected abstract steps(k: Kernels, w: Float32Array, xp: Float32Array, out: Float32Array, m: number): void;
  /** Backpropagation through time: dxp (in bwd) and the recurrent kernel's gradient in g, from dOut. */
  protected abstract stepsBackward(k: Kernels, w: Float32Array, dOut: Float32Array, m: number, g: Float32Array): void;

  forward(k: Kernels, w: Float32Array, input: Float32Array, out: Float32Array, m: number): void {
    this.steps(k, w, this.project(k, w, input, m), out, m);
  }

  backward(
    k: Kernels,
    w: Float32Array,
    input: Float32Array,
    dOut: Float32Array,
    m: number,
    g: Float32Array,
    dIn: Float32Array | null,
  ): void {
    this.stepsBackward(k, w, dOut, m, g);
    this.projectBackward(k, w, input, m, g, dIn);
  }

  /** xp = input K + b for all m * T rows. */
  protected project(k: Kernels, w: Float32Array, input: Float32Array, m: number): Float32Array {
    const rows = m * this.T;
    const xp = this.fwd.xp.a.subarray(0, rows * this.G);
    k.gemm(false, false, rows, this.G, this.F, 1, input, w.subarray(this.kOff, this.rOff), 0, xp);
    k.biasAct(xp, w.subarray(this.bOff, this.bOff + this.G), rows, this.G, false);
    return xp;
  }

  /** From dxp: the kernel and bias gradients, and the input gradient when asked. */
  protected projectBackward(
    k: Kernels,
    w: Float32Array,
    input: Float32Array,
    m: number,
    g: Float32Array,
    dIn: Float32Array | null,
  ): void {
    const rows = m * this.T;
    const dxp = this.bwd.dxp.a.subarray(0, rows * this.G);
    k.gemm(true, false, this.F, this.G, rows, 1, input, dxp, 0, g.subarray(this.kOff, this.rOff));
    k.colSum(dxp, rows, this.G, g.subarray(this.bOff, this.bOff + this.G));
    if (dIn) k.gemm(false, true, rows, this.F, this.G, 1, dxp, w.subarray(this.kOff, this.rOff), 0, dIn);
  }

  /** Step t's hidden state into the output (every step with returnSequences, else the last). */
  protected emit(h: Float32Array, t: number, out: Float32Array, m: number): void {
    const U = this.U;
    if (this.cfg.returnSequences) {
      for (let b = 0; b < m; b++) out.set(h.subarray(b * U, (b + 1) * U), (b * this.T + t) * U);
    } else if (t === this.T - 1) {
      out.set(h.subarray(0, m * U));
    }
  }

  /** Adds the output gradient of step t into dh (m x U). */
  protected collect(dOut: Float32Array, t: number, dh: Float32Array, m: number): void {
    const U = this.U;
    if (this.cfg.returnSequences) {
      for (let b = 0; b < m; b++) {
        const o = (b * this.T + t) * U;
        for (let j = 0; j < U; j++) dh[b * U + j] += dOut[o + j];
      }
    } else if (t === this.T - 1) {
      for (let i = 0; i < m * U; i++) dh[i] += dOut[i];
    }
  }
}

/** GRU (reset_after = false), gates z, r, h. */
export class GruOp extends RecurrentOp<
  'rzr' | 'rh' | 'resetH' | 'a',
  'dh' | 'dPrev' | 'dA' | 'dCand' | 'dResetH' | 'gRzr' | 'gRh'
> {
  constructor(cfg: RecurrentConfig, T: number, F: number, wOff: number) {
    super(cfg, 3, T, F, wOff);
  }

  /**
   * rzr and rh: the recurrent kernel's z|r columns (U x 2U) and h columns (U x U), contiguous for gemm;
   * resetH: r * h_prev per step (T x m x U), the input of the candidate's recurrent product.
   */
  protected forwardSizes(m: number) {
    const { T, U } = this;
    return { rzr: U * 2 * U, rh: U * U, resetH: T * m * U, a: m * 2 * U };
  }

  protected backwardSizes(m: number) {
    const U = this.U;
    return { dh: m * U, dPrev: m * U, dA: m * 2 * U, dCand: m * U, dResetH: m * U, gRzr: U * 2 * U, gRh: U * U };
  }

  protected steps(k: Kernels, w: Float32Array, xp: Float32Array, out: Float32Array, m: number): void {
    const { T, U, G } = this;
    const { activation, recurrentActivation: rec } = this.cfg;
    const R = w.subarray(this.rOff, this.bOff);
    const rzr = this.fwd.rzr.a,
      rh = this.fwd.rh.a;
    for (let i = 0; i < U; i++) {
      rzr.set(R.subarray(i * G, i * G + 2 * U), i * 2 * U);
      rh.set(R.subarray(i * G + 2 * U, (i + 1) * G), i * U);
    }
    const hs = this.fwd.hs.a,
      gates = this.fwd.gates.a,
      resetH = this.fwd.resetH.a,
      a = this.fwd.a.a;
    const mu = m * U;
    hs.fill(0, 0, mu);
    for (let t = 0; t < T; t++) {
      const hPrev = hs.subarray(t * mu, (t + 1) * mu);
      const h = hs.subarray((t + 1) * mu, (t + 2) * mu);
      const gt = t * m * G;
      const rt = resetH.subarray(t * mu, (t + 1) * mu);
      k.gemm(false, false, m, 2 * U, U, 1, hPrev, rzr, 0, a.subarray(0, m * 2 * U));
      for (let b = 0; b < m; b++) {
        const x = (b * T + t) * G;
        for (let j = 0; j < U; j++) {
          const z = activate(rec, xp[x + j] + a[b * 2 * U + j]);
          const r = activate(rec, xp[x + U + j] + a[b * 2 * U + U + j]);
          gates[gt + b * G + j] = z;
          gates[gt + b * G + U + j] = r;
          rt[b * U + j] = r * hPrev[b * U + j];
        }
      }
      const cand = a.subarray(0, mu);
      k.gemm(false, false, m, U, U, 1, rt, rh, 0, cand);
      for (let b = 0; b < m; b++) {
        const x = (b * T + t) * G;
        for (let j = 0; j < U; j++) {
          const hh = activate(activation, xp[x + 2 * U + j] + cand[b * U + j]);
          const z = gates[gt + b * G + j];
          gates[gt + b * G + 2 * U + j] = hh;
          h[b * U + j] = z * hPrev[b * U + j] + (1 - z) * hh;
        }
      }
      this.emit(h, t, out, m);
    }
  }

  protected stepsBackward(k: Kernels, w: Float32Array, dOut: Float32Array, m: number, g: Float32Array): void {
    const { T, U, G } = this;
    const { activation, recurrentActivation: rec } = this.cfg;
    const mu = m * U;
    const hs = this.fwd.hs.a,
      gates = this.fwd.gates.a,
      resetH = this.fwd.resetH.a;
    const rzr = this.fwd.rzr.a,
      rh = this.fwd.rh.a;
    const dxp = this.bwd.dxp.a,
      dA = this.bwd.dA.a.subarray(0, m * 2 * U);
    const dCand = this.bwd.dCand.a.subarray(0, mu),
      dResetH = this.bwd.dResetH.a.subarray(0, mu);
    const gRzr = this.bwd.gRzr.a,
      gRh = this.bwd.gRh.a;
    let dh = this.bwd.dh.a.subarray(0, mu),
      dPrev = this.bwd.dPrev.a.subarray(0, mu);
    dh.fill(0);
    gRzr.fill(0);
    gRh.fill(0);
    for (let t = T - 1; t >= 0; t--) {
      this.collect(dOut, t, dh, m);
      const hPrev = hs.subarray(t * mu, (t + 1) * mu);
      const rt = resetH.subarray(t * mu, (t + 1) * mu);
      const gt = t * m * G;
      for (let b = 0; b < m; b++) {
        const x = (b * T + t) * G;
        for (let j = 0; j < U; j++) {
          const i = b * U + j;
          const z = gates[gt + b * G + j],
            hh = gates[gt + b * G + 2 * U + j];
          const d = dh[i];
          const dc = d * (1 - z) * slope(activation, hh);
          const dz = d * (hPrev[i] - hh) * slope(rec, z);
          dPrev[i] = d * z;
          dCand[i] = dc;
          dxp[x + 2 * U + j] = dc;
          dA[b * 2 * U + j] = dz;
          dxp[x + j] = dz;
        }
      }
      k.gemm(true, false, U, U, m, 1, rt, dCand, 1, gRh);
      k.gemm(false, true, m, U, U, 1, dCand, rh, 0, dResetH);
      for (let b = 0; b < m; b++) {
        const x = (b * T + t) * G;
        for (let j = 0; j < U; j++) {
          const i = b * U + j;
          const r = gates[gt + b * G + U + j];
          const dr = dResetH[i] * hPrev[i] * slope(rec, r);
          dPrev[i] += dResetH[i] * r;
          dA[b * 2 * U + U + j] = dr;
          dxp[x + U + j] = dr;
        }
      }
      k.gemm(true, false, U, 2 * U, m, 1, hPrev, dA, 1, gRzr);
      k.gemm(false, true, m, U, 2 * U, 1, dA, rzr, 1, dPrev);
      [dh, dPrev] = [dPrev, dh];
    }
    const gR = g.subarray(this.rOff, this.bOff);
    for (let i = 0; i < U; i++) {
      gR.set(gRzr.subarray(i * 2 * U, (i + 1) * 2 * U), i * G);
      gR.set(gRh.subarray(i * U, (i + 1) * U), i * G + 2 * U);
    }
  }
}

/** LSTM, gates i, f, c, o. */
export class LstmOp extends RecurrentOp<'cs' | 'actC' | 'a', 'dh' | 'dc' | 'dA'> {
  constructor(cfg: RecurrentConfig, T: number, F: number, wOff: number) {
    super(cfg, 4, T, F, wOff);
  }

  /** cs: the cell states, step-major (T + 1) x m x U, slot 0 zero; actC: act(c) per step (T x m x U). */
  protected forwardSizes(m: number) {
    const { T, U, G } = this;
    return { cs: (T + 1) * m * U, actC: T * m * U, a: m * G };
  }

  protected backwardSizes(m: number) {
    const { U, G } = this;
    return { dh: m * U, dc: m * U, dA: m * G };
  }

  protected steps(k: Kernels, w: Float32Array, xp: Float32Array, out: Float32Array, m: number): void {
    const { T, U, G } = this;
    const { activation, recurrentActivation: rec } = this.cfg;
    const R = w.subarray(this.rOff, this.bOff);
    const hs = this.fwd.hs.a,
      cs = this.fwd.cs.a,
      gates = this.fwd.gates.a,
      actC = this.fwd.actC.a;
    const a = this.fwd.a.a.subarray(0, m * G);
    const mu = m * U;
    hs.fill(0, 0, mu);
    cs.fill(0, 0, mu);
    for (let t = 0; t < T; t++) {
      const hPrev = hs.subarray(t * mu, (t + 1) * mu),
        cPrev = cs.subarray(t * mu, (t + 1) * mu);
      const h = hs.subarray((t + 1) * mu, (t + 2) * mu),
        c = cs.subarray((t + 1) * mu, (t + 2) * mu);
      const gt = t * m * G;
      k.gemm(false, false, m, G, U, 1, hPrev, R, 0, a);
      for (let b = 0; b < m; b++) {
        const x = (b * T + t) * G;
        const ab = b * G;
        const gb = gt + b * G;
        for (let j = 0; j < U; j++) {
          const ig = activate(rec, xp[x + j] + a[ab + j]);
          const fg = activate(rec, xp[x + U + j] + a[ab + U + j]);
          const cg = activate(activation, xp[x + 2 * U + j] + a[ab + 2 * U + j]);
          const og = activate(rec, xp[x + 3 * U + j] + a[ab + 3 * U + j]);
          gates[gb + j] = ig;
          gates[gb + U + j] = fg;
          gates[gb + 2 * U + j] = cg;
          gates[gb + 3 * U + j] = og;
          const i = b * U + j;
          c[i] = fg * cPrev[i] + ig * cg;
          const ac = activate(activation, c[i]);
          actC[t * mu + i] = ac;
          h[i] = og * ac;
        }
      }
      this.emit(h, t, out, m);
    }
  }

  protected stepsBackward(k: Kernels, w: Float32Array, dOut: Float32Array, m: number, g: Float32Array): void {
    const { T, U, G } = this;
    const { activation, recurrentActivation: rec } = this.cfg;
    const mu = m * U;
    const R = w.subarray(this.rOff, this.bOff);
    const gR = g.subarray(this.rOff, this.bOff);
    const hs = this.fwd.hs.a,
      cs = this.fwd.cs.a,
      gates = this.fwd.gates.a,
      actC = this.fwd.actC.a;
    const dxp = this.bwd.dxp.a,
      dA = this.bwd.dA.a.subarray(0, m * G);
    const dh = this.bwd.dh.a.subarray(0, mu),
      dc = this.bwd.dc.a.subarray(0, mu);
    dh.fill(0);
    dc.fill(0);
    gR.fill(0);
    for (let t = T - 1; t >= 0; t--) {
      this.collect(dOut, t, dh, m);
      const hPrev = hs.subarray(t * mu, (t + 1) * mu),
        cPrev = cs.subarray(t * mu, (t + 1) * mu);
      const gt = t * m * G;
      for (let b = 0; b < m; b++) {
        const x = (b * T + t) * G;
        const gb = gt + b * G;
        for (let j = 0; j < U; j++) {
          const i = b * U + j;
          const ig = gates[gb + j],
            fg = gates[gb + U + j],
            cg = gates[gb + 2 * U + j],
            og = gates[gb + 3 * U + j];
          const ac = actC[t * mu + i];
          const dcTotal = dc[i] + dh[i] * og * slope(activation, ac);
          dA[b * G + j] = dcTotal * cg * slope(rec, ig);
          dA[b * G + U + j] = dcTotal * cPrev[i] * slope(rec, fg);
          dA[b * G + 2 * U + j] = dcTotal * ig * slope(activation, cg);
          dA[b * G + 3 * U + j] = dh[i] * ac * slope(rec, og);
          dc[i] = dcTotal * fg;
        }
        dxp.set(dA.subarray(b * G, (b + 1) * G), x);
      }
      k.gemm(true, false, U, G, m, 1, hPrev, dA, 1, gR);
      k.gemm(false, true, m, U, G, 1, dA, R, 0, dh);
    }
  }
}
