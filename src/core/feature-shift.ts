/**
 * Feature-shift non-IID data (the setting FedBN targets, Li et al. 2021): every node sees the same task, but its
 * images come through its own camera: a contrast, a brightness offset and a rotation drawn per node from a
 * seeded stream. Spec: `feature-shift:contrast=C,brightness=B,rotate=DEG` (every key optional, default 0): node
 * i's contrast factor is uniform in [1 - C, 1 + C], its brightness offset in [-B, B], its rotation in
 * [-DEG, DEG] degrees. An image (pixels in [0, 1], h x w x c, channels last) is rotated about its centre
 * (bilinear, zero outside), then x' = clamp(contrast * (x - 0.5) + 0.5 + brightness, 0, 1).
 * Pure: no I/O; the same seed gives the same nodes' transforms.
 */
import type { Rng } from './rng.js';

export interface FeatureShiftSpec {
  contrast: number;
  brightness: number;
  rotate: number;
}

export interface NodeShift {
  contrast: number;
  brightness: number;
  /** Degrees; positive turns the image clockwise as displayed (row 0 at the top). */
  angle: number;
}

export const FEATURE_SHIFT_SYNTAX = 'feature-shift:contrast=C,brightness=B,rotate=DEG';

/** Parses `feature-shift:...`; throws naming the bad part. */
export function parseFeatureShift(text: string): FeatureShiftSpec {
  const fail = (why: string): never => {
    throw new Error(`feature shift '${text}': ${why} (expected ${FEATURE_SHIFT_SYNTAX}, every key optional)`);
  };
  const [kind, args = ''] = text.split(/:(.*)/s, 2);
  if (kind !== 'feature-shift') fail(`starts with '${kind}', not 'feature-shift'`);
  const spec: FeatureShiftSpec = { contrast: 0, brightness: 0, rotate: 0 };
  const limits: Record<keyof FeatureShiftSpec, number> = { contrast: 1, brightness: 1, rotate: 180 };
  for (const part of args.split(',').filter((p) => p.trim() !== '')) {
    const [key, value] = part.split('=').map((s) => s.trim());
    if (!(key in limits)) fail(`unknown key '${key}'`);
    const v = value === undefined || value === '' ? NaN : Number(value);
    const k = key as keyof FeatureShiftSpec;
    if (!(v >= 0 && v <= limits[k])) fail(`${key} must be a number from 0 to ${limits[k]}, got '${value ?? ''}'`);
    spec[k] = v;
  }
  return spec;
}

/** The transforms of `nodes` nodes, in node order, from `rng` (fork it for this purpose). */
export function nodeShifts(spec: FeatureShiftSpec, nodes: number, rng: Rng): NodeShift[] {
  return Array.from({ length: nodes }, () => ({
    contrast: 1 + rng.uniform(-spec.contrast, spec.contrast),
    brightness: rng.uniform(-spec.brightness, spec.brightness),
    angle: rng.uniform(-spec.rotate, spec.rotate),
  }));
}

/** The n images of x (each h x w x c) through the node's transform, as a new array. */
export function shiftImages(x: Float32Array, n: number, h: number, w: number, c: number, s: NodeShift): Float32Array {
  const out = new Float32Array(n * h * w * c);
  const rad = (s.angle * Math.PI) / 180;
  const cos = Math.cos(rad),
    sin = Math.sin(rad);
  const cy = (h - 1) / 2,
    cx = (w - 1) / 2;
  const img = h * w * c;
  const at = (b: number, i: number, j: number, ch: number) =>
    i < 0 || i >= h || j < 0 || j >= w ? 0 : x[b * img + (i * w + j) * c + ch];
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        // the source of output pixel (i, j): rotate back by the angle about the centre
        const dy = i - cy,
          dx = j - cx;
        const sy = cy + cos * dy - sin * dx,
          sx = cx + sin * dy + cos * dx;
        const y0 = Math.floor(sy),
          x0 = Math.floor(sx);
        const fy = sy - y0,
          fx = sx - x0;
        for (let ch = 0; ch < c; ch++) {
          const v =
            (1 - fy) * ((1 - fx) * at(b, y0, x0, ch) + fx * at(b, y0, x0 + 1, ch)) +
            fy * ((1 - fx) * at(b, y0 + 1, x0, ch) + fx * at(b, y0 + 1, x0 + 1, ch));
          const t = s.contrast * (v - 0.5) + 0.5 + s.brightness;
          out[b * img + (i * w + j) * c + ch] = t < 0 ? 0 : t > 1 ? 1 : t;
        }
      }
    }
  }
  return out;
}
