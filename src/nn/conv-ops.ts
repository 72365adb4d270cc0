/**
 * The data-movement halves of the convolution and pooling layers (the arithmetic goes through
 * Kernels.gemm): im2col / col2im for Conv2D and max pooling forward / backward, as tight loops over
 * flat NHWC buffers. BROWSER-SAFE: imports nothing; nothing here allocates.
 *
 * Conventions (Keras/tfjs, channels last, stride 1 for convolutions):
 * - an image batch is m x h x w x c, row-major (NHWC);
 * - padding 'same' pads k - 1 in total, floor((k - 1) / 2) before (top/left) and the rest after, as
 *   TensorFlow does; 'valid' pads nothing (out = in - k + 1);
 * - the column matrix has one row per output pixel (b, oh, ow) (rows = m * outH * outW) and
 *   kh * kw * c columns ordered (i, j, ci), which is the row order of the tfjs kernel [kh, kw, cin, cout]
 *   read as a (kh * kw * cin) x cout matrix, so cols x kernel is the convolution, already in NHWC.
 * - max pooling has pool = stride and drops the trailing rows/columns that do not fill a window
 *   (floor), as Keras' 'valid' pooling does.
 */

export interface ConvGeom {
  h: number;
  w: number;
  c: number;
  kh: number;
  kw: number;
  outH: number;
  outW: number;
  padTop: number;
  padLeft: number;
}

/** The geometry of a stride-1 convolution with a k x k kernel over h x w x c inputs. */
export function convGeom(h: number, w: number, c: number, k: number, padding: 'same' | 'valid'): ConvGeom {
  if (padding === 'same') {
    return { h, w, c, kh: k, kw: k, outH: h, outW: w, padTop: (k - 1) >> 1, padLeft: (k - 1) >> 1 };
  }
  return { h, w, c, kh: k, kw: k, outH: h - k + 1, outW: w - k + 1, padTop: 0, padLeft: 0 };
}

/**
 * Writes the column matrix of the m images in x (m x h x w x c, from element 0) into cols
 * ((m * outH * outW) x (kh * kw * c), from element 0); padded positions are 0.
 */
export function im2col(g: ConvGeom, x: Float32Array, m: number, cols: Float32Array): void {
  const h = g.h,
    w = g.w,
    c = g.c,
    kh = g.kh,
    kw = g.kw,
    outH = g.outH,
    outW = g.outW,
    padTop = g.padTop,
    padLeft = g.padLeft;
  const seg = kw * c; // one kernel row: kw pixels of c channels, contiguous in x where inside the image
  const img = h * w * c;
  let p = 0;
  for (let b = 0; b < m; b++) {
    const xb = b * img;
    for (let oh = 0; oh < outH; oh++) {
      for (let ow = 0; ow < outW; ow++) {
        const iw0 = ow - padLeft;
        // [a0, a1): the part of each kernel row that falls inside the image (columns padded left / right)
        const a0 = iw0 < 0 ? -iw0 * c : 0;
        const a1 = iw0 + kw > w ? (w - iw0) * c : seg;
        for (let i = 0; i < kh; i++) {
          const ih = oh + i - padTop;
          if (ih < 0 || ih >= h) {
            for (let t = 0; t < seg; t++) cols[p + t] = 0;
          } else {
            const s = xb + (ih * w + iw0) * c;
            for (let t = 0; t < a0; t++) cols[p + t] = 0;
            for (let t = a0; t < a1; t++) cols[p + t] = x[s + t];
            for (let t = a1; t < seg; t++) cols[p + t] = 0;
          }
          p += seg;
        }
      }
    }
  }
}

/**
 * The adjoint of im2col: dx (m x h x w x c, overwritten) = the sum, over every column entry that
 * im2col copied from a pixel, of that entry of dcols. Padded entries are dropped.
 */
export function col2im(g: ConvGeom, dcols: Float32Array, m: number, dx: Float32Array): void {
  const h = g.h,
    w = g.w,
    c = g.c,
    kh = g.kh,
    kw = g.kw,
    outH = g.outH,
    outW = g.outW,
    padTop = g.padTop,
    padLeft = g.padLeft;
  const seg = kw * c;
  const img = h * w * c;
  dx.fill(0, 0, m * img);
  let p = 0;
  for (let b = 0; b < m; b++) {
    const xb = b * img;
    for (let oh = 0; oh < outH; oh++) {
      for (let ow = 0; ow < outW; ow++) {
        const iw0 = ow - padLeft;
        const a0 = iw0 < 0 ? -iw0 * c : 0;
        const a1 = iw0 + kw > w ? (w - iw0) * c : seg;
        for (let i = 0; i < kh; i++) {
          const ih = oh + i - padTop;
          if (ih >= 0 && ih < h) {
            const s = xb + (ih * w + iw0) * c;
            for (let t = a0; t < a1; t++) dx[s + t] += dcols[p + t];
          }
          p += seg;
        }
      }
    }
  }
}

export interface PoolGeom {
  h: number;
  w: number;
  c: number;
  pool: number;
  outH: number;
  outW: number;
}

export function poolGeom(h: number, w: number, c: number, pool: number): PoolGeom {
  return { h, w, c, pool, outH: Math.floor(h / pool), outW: Math.floor(w / pool) };
}

/**
 * Max pooling (pool = stride, floor) of the m images in x into out (m x outH x outW x c); argmax
 * receives, for every output, the index in x of the input it took: the first maximum in the window's
 * row-major order (a later equal value does not replace it), as tfjs's CPU backend picks.
 */
export function maxPoolForward(g: PoolGeom, x: Float32Array, m: number, out: Float32Array, argmax: Int32Array): void {
  const h = g.h,
    w = g.w,
    c = g.c,
    pool = g.pool,
    outH = g.outH,
    outW = g.outW;
  const img = h * w * c;
  let o = 0;
  for (let b = 0; b < m; b++) {
    const xb = b * img;
    for (let oh = 0; oh < outH; oh++) {
      for (let ow = 0; ow < outW; ow++) {
        const corner = xb + (oh * pool * w + ow * pool) * c;
        for (let ch = 0; ch < c; ch++) {
          out[o + ch] = x[corner + ch];
          argmax[o + ch] = corner + ch;
        }
        for (let i = 0; i < pool; i++) {
          for (let j = i === 0 ? 1 : 0; j < pool; j++) {
            const base = corner + (i * w + j) * c;
            for (let ch = 0; ch < c; ch++) {
              const v = x[base + ch];
              if (v > out[o + ch]) {
                out[o + ch] = v;
                argmax[o + ch] = base + ch;
              }
            }
          }
        }
        o += c;
      }
    }
  }
}

/** dx (m x h x w x c, overwritten) gets each output gradient at its argmax; every other input gets 0. */
export function maxPoolBackward(
  g: PoolGeom,
  dout: Float32Array,
  argmax: Int32Array,
  m: number,
  dx: Float32Array,
): void {
  dx.fill(0, 0, m * g.h * g.w * g.c);
  const n = m * g.outH * g.outW * g.c;
  for (let o = 0; o < n; o++) dx[argmax[o]] += dout[o];
}
