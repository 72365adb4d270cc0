// EdgeFed training kernels in AssemblyScript, compiled to WebAssembly with SIMD (f32x4) by
// scripts/build-wasm.mjs into wasm/build/kernels.wasm, and driven by src/nn/kernels-wasm.ts. The same
// source is also built with relaxed SIMD (kernels-relaxed.wasm: the gemm micro-kernel's multiply-add
// may be fused) and, for workers sharing one memory, with an imported shared memory (kernels-shared.wasm,
// kernels-relaxed-shared.wasm); the code does not change between builds except for `madd` below.
//
// Every export works on raw byte pointers into linear memory. The JS side validates all arguments
// (same checks and messages as src/nn/kernels-js.ts) and lays memory out, so nothing here checks
// bounds or allocates: no runtime beyond the stub is used, and the module has no imports.
//
// Semantics follow kernels-js.ts:
// - gemm: C = alpha * op(A) * op(B) + beta * C with BLAS semantics (beta = 0 never reads C; alpha = 0
//   or k = 0 only scales C). Products are accumulated in float32 (f32x4; no FMA but in the relaxed build); the epilogue
//   alpha * acc + beta * c is evaluated in float64 like the JS kernels. Leading dimensions (in
//   elements) let the JS side run the kernel on blocks of a larger matrix.
// - the elementwise kernels give the same bits as the JS kernels: float64 intermediates (f64x2)
//   wherever the JS code mixes in a double, rounded to float32 where the data is stored; plain f32x4
//   where a float32 result is exact anyway (a + b of two floats, comparisons).

// ---------------------------------------------------------------------------------------------
// gemm: GotoBLAS/BLIS structure. op(B) is split in KC x NC blocks of NR-wide column panels, op(A)
// in MC x KC blocks of MR-tall row panels, and an MR x NR register-blocked micro-kernel (8 f32x4
// accumulators) runs over them. A panel whose MR (or NR) values per depth are contiguous in the
// matrix (op(A) transposed, op(B) not) is read in place; the others, and edge panels, are packed
// (zero-padded to whole panels), so all four transpose cases run the same micro-kernel. Reading in
// place spares the dense layers' products a copy of the weight matrix per call.
// Measured no faster on Node 20 (AMD EPYC, x64), in isolation and inside training: op(A) packed as
// 4-lane splats (plain loads instead of broadcasts in the loop), op(A) or op(B) always packed, either loop
// order over the panels. The loop reaches ~20 GMAC/s per core there (~6 multiply-adds per cycle at ~3.4 GHz,
// where two f32x4 mul and two add pipes would allow 8): close to what separate mul and add can do; fusing them
// needs relaxed SIMD (kernels-relaxed.wasm).

const MR: i32 = 4;
const NR: i32 = 8;
const KC: i32 = 256; // max depth of one packed block; k is split into equal blocks of at most KC
const MC: i32 = 128; // rows of op(A) per packed block (multiple of MR)
const NC: i32 = 1024; // columns of op(B) per packed block (multiple of NR)

const AP_BYTES: usize = (<usize>(MC * KC)) << 2;
const BP_BYTES: usize = (<usize>(KC * NC)) << 2;
const TILE_BYTES: usize = (<usize>(MR * NR)) << 2;

/** Bytes of scratch gemm needs at its `work` pointer (packed A, packed B, an edge tile, alignment). */
export function gemmWorkBytes(): i32 {
  return <i32>(AP_BYTES + BP_BYTES + TILE_BYTES + 64);
}

/** First free byte after the module's static data: the JS side lays out its regions from here. */
export function heapBase(): usize {
  return __heap_base;
}

/**
 * acc + a * b per lane. The relaxed-SIMD build (compiled with `--enable relaxed-simd`, see
 * scripts/build-wasm.mjs) uses f32x4.relaxed_madd, which the engine may fuse (one rounding, FMA) or not,
 * depending on the CPU: results then differ from the plain SIMD build in the last bits, and may differ
 * between two machines. The plain build always rounds the product, then the sum.
 */
// Small enough that the optimizer (-O3) inlines it into the micro-kernel (no decorator: Biome cannot parse one).
function madd(a: v128, b: v128, acc: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, acc);
  return f32x4.add(acc, f32x4.mul(a, b));
}

/** Byte address of element (row, col) of a row-major matrix with leading dimension ld. */
function at(base: usize, row: i32, ld: i32, col: i32): usize {
  return base + ((<usize>row * <usize>ld + <usize>col) << 2);
}

/** dst[0..3] = column q of the 4x4 block whose rows are x0..x3, for q = 0..3 (16 bytes apart). */
function transposeStore(dst: usize, stride: usize, x0: v128, x1: v128, x2: v128, x3: v128): void {
  const t0 = f32x4.shuffle(x0, x1, 0, 4, 1, 5); // x0[0] x1[0] x0[1] x1[1]
  const t1 = f32x4.shuffle(x0, x1, 2, 6, 3, 7); // x0[2] x1[2] x0[3] x1[3]
  const t2 = f32x4.shuffle(x2, x3, 0, 4, 1, 5);
  const t3 = f32x4.shuffle(x2, x3, 2, 6, 3, 7);
  v128.store(dst, f32x4.shuffle(t0, t2, 0, 1, 4, 5));
  v128.store(dst + stride, f32x4.shuffle(t0, t2, 2, 3, 6, 7));
  v128.store(dst + stride * 2, f32x4.shuffle(t1, t3, 0, 1, 4, 5));
  v128.store(dst + stride * 3, f32x4.shuffle(t1, t3, 2, 3, 6, 7));
}

/**
 * Packs rows ic..ic+mc, depths pc..pc+kc of op(A) into MR-tall panels: panel r holds, for each depth
 * p, the MR values op(A)[ic + r*MR + 0..MR-1, pc + p] (rows past mc are zero).
 * op(A)[i, p] = a[i*lda + p], or a[p*lda + i] when transposed.
 */
function packA(transA: bool, a: usize, lda: i32, ic: i32, mc: i32, pc: i32, kc: i32, ap: usize): void {
  for (let ir = 0; ir < mc; ir += MR) {
    const mr = min(MR, mc - ir);
    const i0 = ic + ir;
    let d = ap + ((<usize>(ir * kc)) << 2);
    if (mr == MR) {
      if (!transA) {
        const s0 = at(a, i0, lda, pc);
        const s1 = at(a, i0 + 1, lda, pc);
        const s2 = at(a, i0 + 2, lda, pc);
        const s3 = at(a, i0 + 3, lda, pc);
        let p = 0;
        for (; p + 4 <= kc; p += 4) {
          const o = (<usize>p) << 2;
          transposeStore(d, 16, v128.load(s0 + o), v128.load(s1 + o), v128.load(s2 + o), v128.load(s3 + o));
          d += 64;
        }
        for (; p < kc; p++) {
          const o = (<usize>p) << 2;
          f32.store(d, f32.load(s0 + o));
          f32.store(d, f32.load(s1 + o), 4);
          f32.store(d, f32.load(s2 + o), 8);
          f32.store(d, f32.load(s3 + o), 12);
          d += 16;
        }
      } else {
        let s = at(a, pc, lda, i0);
        const step = (<usize>lda) << 2;
        for (let p = 0; p < kc; p++) {
          v128.store(d, v128.load(s));
          s += step;
          d += 16;
        }
      }
    } else {
      for (let p = 0; p < kc; p++) {
        for (let r = 0; r < MR; r++) {
          let x: f32 = 0;
          if (r < mr) x = transA ? f32.load(at(a, pc + p, lda, i0 + r)) : f32.load(at(a, i0 + r, lda, pc + p));
          f32.store(d + ((<usize>r) << 2), x);
        }
        d += (<usize>MR) << 2;
      }
    }
  }
}

/**
 * Packs depths pc..pc+kc, columns jc..jc+nc of op(B) into NR-wide panels: panel c holds, for each
 * depth p, the NR values op(B)[pc + p, jc + c*NR + 0..NR-1] (columns past nc are zero).
 * op(B)[p, j] = b[p*ldb + j], or b[j*ldb + p] when transposed.
 */
function packB(transB: bool, b: usize, ldb: i32, pc: i32, kc: i32, jc: i32, nc: i32, bp: usize): void {
  for (let jr = 0; jr < nc; jr += NR) {
    const nr = min(NR, nc - jr);
    const j0 = jc + jr;
    let d = bp + ((<usize>(jr * kc)) << 2);
    if (nr == NR) {
      if (!transB) {
        let s = at(b, pc, ldb, j0);
        const step = (<usize>ldb) << 2;
        for (let p = 0; p < kc; p++) {
          v128.store(d, v128.load(s));
          v128.store(d, v128.load(s, 16), 16);
          s += step;
          d += 32;
        }
      } else {
        const s0 = at(b, j0, ldb, pc);
        const step = (<usize>ldb) << 2;
        let p = 0;
        for (; p + 4 <= kc; p += 4) {
          const o = (<usize>p) << 2;
          const r0 = s0 + o;
          transposeStore(
            d,
            32,
            v128.load(r0),
            v128.load(r0 + step),
            v128.load(r0 + step * 2),
            v128.load(r0 + step * 3),
          );
          const r4 = r0 + step * 4;
          transposeStore(
            d + 16,
            32,
            v128.load(r4),
            v128.load(r4 + step),
            v128.load(r4 + step * 2),
            v128.load(r4 + step * 3),
          );
          d += 128;
        }
        for (; p < kc; p++) {
          let s = s0 + ((<usize>p) << 2);
          for (let c = 0; c < NR; c++) {
            f32.store(d + ((<usize>c) << 2), f32.load(s));
            s += step;
          }
          d += 32;
        }
      }
    } else {
      for (let p = 0; p < kc; p++) {
        for (let c = 0; c < NR; c++) {
          let x: f32 = 0;
          if (c < nr) x = transB ? f32.load(at(b, j0 + c, ldb, pc + p)) : f32.load(at(b, pc + p, ldb, j0 + c));
          f32.store(d + ((<usize>c) << 2), x);
        }
        d += (<usize>NR) << 2;
      }
    }
  }
}

/** c[0..3] = alpha * x + beta * c[0..3] in float64, rounded to float32 (beta = 0: c is not read). */
function epilogue(c: usize, x: v128, alpha: f64, beta: f64): void {
  const va = f64x2.splat(alpha);
  let lo = f64x2.mul(va, f64x2.promote_low_f32x4(x));
  let hi = f64x2.mul(va, f64x2.promote_low_f32x4(f32x4.shuffle(x, x, 2, 3, 2, 3)));
  if (beta != 0) {
    const old = v128.load(c);
    const vb = f64x2.splat(beta);
    lo = f64x2.add(lo, f64x2.mul(vb, f64x2.promote_low_f32x4(old)));
    hi = f64x2.add(hi, f64x2.mul(vb, f64x2.promote_low_f32x4(f32x4.shuffle(old, old, 2, 3, 2, 3))));
  }
  v128.store(c, f32x4.shuffle(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5));
}

/** One row of a full tile through the float64 epilogue (alpha != 1 or beta not in {0, 1}). */
function epilogueRow(c: usize, x0: v128, x1: v128, alpha: f64, beta: f64): void {
  epilogue(c, x0, alpha, beta);
  epilogue(c + 16, x1, alpha, beta);
}

/**
 * The MR x NR micro-kernel: acc = (A panel) * (B panel) over kc depths, then
 * C[0..mr, 0..nr] = alpha * acc + beta * C. Edge tiles (mr < MR or nr < NR) go through `tile`.
 * Depth p of the A panel is the MR floats at ap + p * aStep, of the B panel the NR floats at bp + p * bStep:
 * packed panels (aStep 16, bStep 32) or the matrices in place (a row of B, a row of a transposed A).
 * Per depth: 2 B loads, 4 A broadcasts, 8 mul + 8 add into 8 accumulators: 14 live v128 values, which
 * fits the 15 SIMD registers V8 allocates on x64. Deliberately not unrolled: V8 then hoists the loads of
 * both steps and spills accumulators (measured: ~25% slower).
 */
function microKernel(
  kc: i32,
  ap: usize,
  aStep: usize,
  bp: usize,
  bStep: usize,
  c: usize,
  ldcBytes: usize,
  mr: i32,
  nr: i32,
  alpha: f64,
  beta: f64,
  tile: usize,
): void {
  let c00 = f32x4.splat(0),
    c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0),
    c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0),
    c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0),
    c31 = f32x4.splat(0);
  const bEnd = bp + <usize>kc * bStep;
  while (bp < bEnd) {
    const b0 = v128.load(bp);
    const b1 = v128.load(bp, 16);
    let a = v128.load32_splat(ap);
    c00 = madd(a, b0, c00);
    c01 = madd(a, b1, c01);
    a = v128.load32_splat(ap, 4);
    c10 = madd(a, b0, c10);
    c11 = madd(a, b1, c11);
    a = v128.load32_splat(ap, 8);
    c20 = madd(a, b0, c20);
    c21 = madd(a, b1, c21);
    a = v128.load32_splat(ap, 12);
    c30 = madd(a, b0, c30);
    c31 = madd(a, b1, c31);
    ap += aStep;
    bp += bStep;
  }
  if (mr == MR && nr == NR) {
    // The two common cases written out here: a call per row cost ~5% of the dense layers' products and
    // ~15% of those with k = 32 (a short depth loop per tile).
    const c1 = c + ldcBytes,
      c2 = c1 + ldcBytes,
      c3 = c2 + ldcBytes;
    if (alpha == 1 && beta == 0) {
      v128.store(c, c00);
      v128.store(c, c01, 16);
      v128.store(c1, c10);
      v128.store(c1, c11, 16);
      v128.store(c2, c20);
      v128.store(c2, c21, 16);
      v128.store(c3, c30);
      v128.store(c3, c31, 16);
    } else if (alpha == 1 && beta == 1) {
      // float32 a + b is exactly the float64 sum rounded to float32, so this equals the epilogue.
      v128.store(c, f32x4.add(v128.load(c), c00));
      v128.store(c, f32x4.add(v128.load(c, 16), c01), 16);
      v128.store(c1, f32x4.add(v128.load(c1), c10));
      v128.store(c1, f32x4.add(v128.load(c1, 16), c11), 16);
      v128.store(c2, f32x4.add(v128.load(c2), c20));
      v128.store(c2, f32x4.add(v128.load(c2, 16), c21), 16);
      v128.store(c3, f32x4.add(v128.load(c3), c30));
      v128.store(c3, f32x4.add(v128.load(c3, 16), c31), 16);
    } else {
      epilogueRow(c, c00, c01, alpha, beta);
      epilogueRow(c1, c10, c11, alpha, beta);
      epilogueRow(c2, c20, c21, alpha, beta);
      epilogueRow(c3, c30, c31, alpha, beta);
    }
    return;
  }
  v128.store(tile, c00);
  v128.store(tile, c01, 16);
  v128.store(tile, c10, 32);
  v128.store(tile, c11, 48);
  v128.store(tile, c20, 64);
  v128.store(tile, c21, 80);
  v128.store(tile, c30, 96);
  v128.store(tile, c31, 112);
  for (let r = 0; r < mr; r++) {
    const row = c + ldcBytes * <usize>r;
    const t = tile + ((<usize>(r * NR)) << 2);
    for (let j = 0; j < nr; j++) {
      const cp = row + ((<usize>j) << 2);
      let v = alpha * <f64>f32.load(t + ((<usize>j) << 2));
      if (beta != 0) v = v + beta * <f64>f32.load(cp);
      f32.store(cp, <f32>v);
    }
  }
}

/** C = beta * C over an m x n block with leading dimension ldc (beta = 0 writes zeros). */
function scaleC(m: i32, n: i32, beta: f64, c: usize, ldc: i32): void {
  if (beta == 1) return;
  for (let i = 0; i < m; i++) {
    const row = at(c, i, ldc, 0);
    if (beta == 0) {
      memory.fill(row, 0, (<usize>n) << 2);
    } else {
      for (let j = 0; j < n; j++) {
        const cp = row + ((<usize>j) << 2);
        f32.store(cp, <f32>(<f64>f32.load(cp) * beta));
      }
    }
  }
}

/**
 * C = alpha * op(A) * op(B) + beta * C. op(A) is m x k, op(B) k x n, C m x n, all row-major with
 * leading dimensions lda, ldb, ldc (elements). `work` points at gemmWorkBytes() bytes of scratch.
 */
export function gemm(
  transA: i32,
  transB: i32,
  m: i32,
  n: i32,
  k: i32,
  alpha: f64,
  a: usize,
  lda: i32,
  b: usize,
  ldb: i32,
  beta: f64,
  c: usize,
  ldc: i32,
  work: usize,
): void {
  if (m <= 0 || n <= 0) return;
  if (alpha == 0 || k <= 0) {
    scaleC(m, n, beta, c, ldc);
    return;
  }
  const ap = (work + 63) & ~(<usize>63);
  const bp = ap + AP_BYTES;
  const tile = bp + BP_BYTES;
  const ldcBytes = (<usize>ldc) << 2;
  // Equal depth blocks (784 -> 4 x 196 rather than 256 + 256 + 256 + 16).
  const kBlocks = (k + KC - 1) / KC;
  const kcMax = (k + kBlocks - 1) / kBlocks;
  // A row of op(B) is contiguous when B is not transposed, and so is a depth of op(A) when A is: the
  // micro-kernel then reads them in place and only the edge panel (fewer than NR columns / MR rows) is
  // packed, which saves packing all of B (a whole weight matrix per call in the dense layers' products).
  const bInPlace = transB == 0;
  const aInPlace = transA != 0;
  const ldbBytes = (<usize>ldb) << 2;
  const ldaBytes = (<usize>lda) << 2;
  for (let jc = 0; jc < n; jc += NC) {
    const nc = min(NC, n - jc);
    const ncFull = bInPlace ? nc - (nc % NR) : 0; // columns read in place
    for (let pc = 0; pc < k; pc += kcMax) {
      const kc = min(kcMax, k - pc);
      if (ncFull < nc) packB(transB != 0, b, ldb, pc, kc, jc + ncFull, nc - ncFull, bp + ((<usize>(ncFull * kc)) << 2));
      const betaBlock = pc == 0 ? beta : 1.0; // later depth blocks accumulate into C
      for (let ic = 0; ic < m; ic += MC) {
        const mc = min(MC, m - ic);
        const mcFull = aInPlace ? mc - (mc % MR) : 0; // rows read in place
        if (mcFull < mc)
          packA(transA != 0, a, lda, ic + mcFull, mc - mcFull, pc, kc, ap + ((<usize>(mcFull * kc)) << 2));
        for (let jr = 0; jr < nc; jr += NR) {
          const nr = min(NR, nc - jr);
          const bDirect = jr < ncFull;
          const bPanel = bDirect ? at(b, pc, ldb, jc + jr) : bp + ((<usize>(jr * kc)) << 2);
          const bStep: usize = bDirect ? ldbBytes : 32;
          for (let ir = 0; ir < mc; ir += MR) {
            const mr = min(MR, mc - ir);
            const aDirect = ir < mcFull;
            const aPanel = aDirect ? at(a, pc, lda, ic + ir) : ap + ((<usize>(ir * kc)) << 2);
            const aStep: usize = aDirect ? ldaBytes : 16;
            microKernel(
              kc,
              aPanel,
              aStep,
              bPanel,
              bStep,
              at(c, ic + ir, ldc, jc + jr),
              ldcBytes,
              mr,
              nr,
              alpha,
              betaBlock,
              tile,
            );
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Elementwise kernels. `len`, `m`, `n` are element counts; pointers are byte addresses.

/** c[i, j] += bias[j] for an m x n row-major c; then ReLU (x < 0 ? 0 : x, NaN kept) when relu != 0. */
export function biasAct(c: usize, bias: usize, m: i32, n: i32, relu: i32): void {
  const zero = f32x4.splat(0);
  for (let i = 0; i < m; i++) {
    const row = at(c, i, n, 0);
    let j = 0;
    if (relu != 0) {
      for (; j + 4 <= n; j += 4) {
        const o = (<usize>j) << 2;
        const x = f32x4.add(v128.load(row + o), v128.load(bias + o));
        v128.store(row + o, v128.andnot(x, f32x4.lt(x, zero)));
      }
      for (; j < n; j++) {
        const o = (<usize>j) << 2;
        const x = f32.load(row + o) + f32.load(bias + o);
        f32.store(row + o, x < 0 ? <f32>0 : x);
      }
    } else {
      for (; j + 4 <= n; j += 4) {
        const o = (<usize>j) << 2;
        v128.store(row + o, f32x4.add(v128.load(row + o), v128.load(bias + o)));
      }
      for (; j < n; j++) {
        const o = (<usize>j) << 2;
        f32.store(row + o, f32.load(row + o) + f32.load(bias + o));
      }
    }
  }
}

/** delta[i] = 0 where act[i] <= 0, for i < len. */
export function reluBackward(delta: usize, act: usize, len: i32): void {
  const zero = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const o = (<usize>i) << 2;
    v128.store(delta + o, v128.andnot(v128.load(delta + o), f32x4.le(v128.load(act + o), zero)));
  }
  for (; i < len; i++) {
    const o = (<usize>i) << 2;
    if (f32.load(act + o) <= 0) f32.store(delta + o, 0);
  }
}

/**
 * out[j] (+)= sum over the m rows of a (m x n), in row order with float32 running sums. init != 0
 * starts from zero; init = 0 adds to out (the JS side uses that to sum a long matrix in row blocks).
 */
export function colSum(a: usize, m: i32, n: i32, out: usize, init: i32): void {
  if (init != 0) memory.fill(out, 0, (<usize>n) << 2);
  for (let i = 0; i < m; i++) {
    const row = at(a, i, n, 0);
    let j = 0;
    for (; j + 4 <= n; j += 4) {
      const o = (<usize>j) << 2;
      v128.store(out + o, f32x4.add(v128.load(out + o), v128.load(row + o)));
    }
    for (; j < n; j++) {
      const o = (<usize>j) << 2;
      f32.store(out + o, f32.load(out + o) + f32.load(row + o));
    }
  }
}

let correctOut: i32 = 0;

/** The `correct` count of the last softmaxXent call (correctIn plus this call's correct rows). */
export function softmaxCorrect(): i32 {
  return correctOut;
}

/**
 * Softmax cross-entropy over m rows of n logits with labels (i32, already range-checked by the JS
 * side). Writes (softmax - onehot) * scale into delta (which may be logits itself), returns
 * lossIn + the row losses (added in row order, like the JS loop) and leaves correctIn + the
 * correct rows in softmaxCorrect(). Float64 exp/log as in the JS kernel.
 */
export function softmaxXent(
  logits: usize,
  labels: usize,
  m: i32,
  n: i32,
  scale: f64,
  delta: usize,
  lossIn: f64,
  correctIn: i32,
): f64 {
  let loss = lossIn;
  let correct = correctIn;
  for (let i = 0; i < m; i++) {
    const x = at(logits, i, n, 0);
    const d = at(delta, i, n, 0);
    const label = i32.load(labels + ((<usize>i) << 2));
    let max = f32.load(x);
    let arg = 0;
    for (let j = 1; j < n; j++) {
      const v = f32.load(x + ((<usize>j) << 2));
      if (v > max) {
        // strict: the first maximum wins ties
        max = v;
        arg = j;
      }
    }
    if (arg == label) correct++;
    const xLabel = <f64>f32.load(x + ((<usize>label) << 2)); // read before delta (may alias logits) is written
    const maxD = <f64>max;
    let sum: f64 = 0;
    for (let j = 0; j < n; j++) {
      const o = (<usize>j) << 2;
      const e = Math.exp(<f64>f32.load(x + o) - maxD);
      f32.store(d + o, <f32>e);
      sum += e;
    }
    loss += Math.log(sum) + (maxD - xLabel);
    const inv = scale / sum;
    for (let j = 0; j < n; j++) {
      const o = (<usize>j) << 2;
      f32.store(d + o, <f32>(<f64>f32.load(d + o) * inv));
    }
    const dl = d + ((<usize>label) << 2);
    f32.store(dl, <f32>(<f64>f32.load(dl) - scale));
  }
  correctOut = correct;
  return loss;
}

/** The high two lanes of an f32x4 as f64x2. */
function promoteHigh(x: v128): v128 {
  return f64x2.promote_low_f32x4(f32x4.shuffle(x, x, 2, 3, 2, 3));
}

/** Two f64x2 (lanes 0-1, 2-3) rounded to one f32x4. */
function demote2(lo: v128, hi: v128): v128 {
  return f32x4.shuffle(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5);
}

/**
 * Adam step over len elements (see kernels.ts); bc1 = 1 - beta1^step and bc2 = 1 - beta2^step come
 * from the JS side so that Math.pow is the caller's. Same operation order as the JS loop, including
 * reading w only after m and v are stored.
 */
export function adam(
  w: usize,
  g: usize,
  m: usize,
  v: usize,
  len: i32,
  lr: f64,
  beta1: f64,
  beta2: f64,
  eps: f64,
  bc1: f64,
  bc2: f64,
): void {
  const ob1 = 1 - beta1,
    ob2 = 1 - beta2;
  const vlr = f64x2.splat(lr),
    vb1 = f64x2.splat(beta1),
    vb2 = f64x2.splat(beta2),
    veps = f64x2.splat(eps);
  const vbc1 = f64x2.splat(bc1),
    vbc2 = f64x2.splat(bc2),
    vob1 = f64x2.splat(ob1),
    vob2 = f64x2.splat(ob2);
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const o = (<usize>i) << 2;
    const g4 = v128.load(g + o),
      m4 = v128.load(m + o),
      v4 = v128.load(v + o);
    const gLo = f64x2.promote_low_f32x4(g4),
      gHi = promoteHigh(g4);
    // mi = fround(b1 m + ob1 g); vi = fround(b2 v + ob2 g g)
    const m32 = demote2(
      f64x2.add(f64x2.mul(vb1, f64x2.promote_low_f32x4(m4)), f64x2.mul(vob1, gLo)),
      f64x2.add(f64x2.mul(vb1, promoteHigh(m4)), f64x2.mul(vob1, gHi)),
    );
    const v32 = demote2(
      f64x2.add(f64x2.mul(vb2, f64x2.promote_low_f32x4(v4)), f64x2.mul(f64x2.mul(vob2, gLo), gLo)),
      f64x2.add(f64x2.mul(vb2, promoteHigh(v4)), f64x2.mul(f64x2.mul(vob2, gHi), gHi)),
    );
    v128.store(m + o, m32);
    v128.store(v + o, v32);
    // w - lr * (mi / bc1) / (sqrt(vi / bc2) + eps)
    const uLo = f64x2.div(
      f64x2.mul(vlr, f64x2.div(f64x2.promote_low_f32x4(m32), vbc1)),
      f64x2.add(f64x2.sqrt(f64x2.div(f64x2.promote_low_f32x4(v32), vbc2)), veps),
    );
    const uHi = f64x2.div(
      f64x2.mul(vlr, f64x2.div(promoteHigh(m32), vbc1)),
      f64x2.add(f64x2.sqrt(f64x2.div(promoteHigh(v32), vbc2)), veps),
    );
    const w4 = v128.load(w + o);
    v128.store(w + o, demote2(f64x2.sub(f64x2.promote_low_f32x4(w4), uLo), f64x2.sub(promoteHigh(w4), uHi)));
  }
  for (; i < len; i++) {
    const o = (<usize>i) << 2;
    const gi = <f64>f32.load(g + o);
    const mi = <f32>(beta1 * <f64>f32.load(m + o) + ob1 * gi);
    const vi = <f32>(beta2 * <f64>f32.load(v + o) + ob2 * gi * gi);
    f32.store(m + o, mi);
    f32.store(v + o, vi);
    f32.store(w + o, <f32>(<f64>f32.load(w + o) - (lr * (<f64>mi / bc1)) / (Math.sqrt(<f64>vi / bc2) + eps)));
  }
}

/** SGD step over len elements: with mu > 0, vel = fround(mu vel + g) and w -= lr vel; else w -= lr g. */
export function sgd(w: usize, g: usize, len: i32, lr: f64, mu: f64, vel: usize): void {
  const vlr = f64x2.splat(lr);
  let i = 0;
  if (mu > 0) {
    const vmu = f64x2.splat(mu);
    for (; i + 4 <= len; i += 4) {
      const o = (<usize>i) << 2;
      const g4 = v128.load(g + o),
        v4 = v128.load(vel + o);
      const v32 = demote2(
        f64x2.add(f64x2.mul(vmu, f64x2.promote_low_f32x4(v4)), f64x2.promote_low_f32x4(g4)),
        f64x2.add(f64x2.mul(vmu, promoteHigh(v4)), promoteHigh(g4)),
      );
      v128.store(vel + o, v32);
      const w4 = v128.load(w + o); // after vel is stored, as in the JS loop
      v128.store(
        w + o,
        demote2(
          f64x2.sub(f64x2.promote_low_f32x4(w4), f64x2.mul(vlr, f64x2.promote_low_f32x4(v32))),
          f64x2.sub(promoteHigh(w4), f64x2.mul(vlr, promoteHigh(v32))),
        ),
      );
    }
    for (; i < len; i++) {
      const o = (<usize>i) << 2;
      const vi = <f32>(mu * <f64>f32.load(vel + o) + <f64>f32.load(g + o));
      f32.store(vel + o, vi);
      f32.store(w + o, <f32>(<f64>f32.load(w + o) - lr * <f64>vi));
    }
  } else {
    for (; i + 4 <= len; i += 4) {
      const o = (<usize>i) << 2;
      const w4 = v128.load(w + o),
        g4 = v128.load(g + o);
      v128.store(
        w + o,
        demote2(
          f64x2.sub(f64x2.promote_low_f32x4(w4), f64x2.mul(vlr, f64x2.promote_low_f32x4(g4))),
          f64x2.sub(promoteHigh(w4), f64x2.mul(vlr, promoteHigh(g4))),
        ),
      );
    }
    for (; i < len; i++) {
      const o = (<usize>i) << 2;
      f32.store(w + o, <f32>(<f64>f32.load(w + o) - lr * <f64>f32.load(g + o)));
    }
  }
}

/** 1 in the relaxed-SIMD build (the gemm's multiply-add may be fused), 0 in the plain SIMD build. */
export function relaxedSimd(): i32 {
  return ASC_FEATURE_RELAXED_SIMD ? 1 : 0;
}
