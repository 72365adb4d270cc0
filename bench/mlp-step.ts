/**
 * Profile of one training step of the seed MLP (784-128-10, batch 32) kernel by kernel, for the native and
 * WASM kernels, so it shows where a kernel set spends its time. WASM runs twice: with every buffer inside
 * wasm memory (zero copy, as the engine lays it out) and with plain arrays (each call copies through scratch).
 *
 * Run:  node --import tsx bench/mlp-step.ts [--steps 2000]
 * Prints microseconds per call (median of 5 rounds) and per step, process CPU time, no files written.
 */
import { parseArgs } from 'node:util';
import type { Kernels } from '../src/nn/kernels.js';
import type { WasmKernels } from '../src/nn/kernels-wasm.js';
import { loadWasmKernelsNode } from '../src/nn/kernels-wasm-node.js';
import { loadNativeKernels } from '../src/nn/kernels-native.js';
import { Rng } from '../src/core/rng.js';
import { printEnvironment } from './support/results-io.js';

const { values } = parseArgs({ options: { steps: { type: 'string', default: '2000' } } });
const steps = Number(values.steps);
if (!Number.isInteger(steps) || steps < 1)
  throw new Error(`--steps: expected a whole number >= 1, got '${values.steps}'`);

const M = 32,
  IN = 784,
  H = 128,
  OUT = 10;
const P = IN * H + H + H * OUT + OUT;

type Alloc = (n: number) => Float32Array;

function buffers(alloc: Alloc, allocInt: (n: number) => Int32Array) {
  const rng = new Rng(7);
  const fill = (a: Float32Array, s: number): Float32Array => {
    for (let i = 0; i < a.length; i++) a[i] = (rng.next() * 2 - 1) * s;
    return a;
  };
  const y = allocInt(M);
  for (let i = 0; i < M; i++) y[i] = i % OUT;
  return {
    x: fill(alloc(M * IN), 1),
    y,
    w: fill(alloc(P), 0.05),
    g: alloc(P),
    m: alloc(P),
    v: alloc(P),
    a1: alloc(M * H),
    a2: alloc(M * OUT),
    d1: alloc(M * H),
    d2: alloc(M * OUT),
  };
}

function profile(label: string, k: Kernels, alloc: Alloc, allocInt: (n: number) => Int32Array): void {
  const b = buffers(alloc, allocInt);
  const w0 = b.w.subarray(0, IN * H),
    b0 = b.w.subarray(IN * H, IN * H + H);
  const w1 = b.w.subarray(IN * H + H, IN * H + H + H * OUT),
    b1 = b.w.subarray(IN * H + H + H * OUT);
  const g0 = b.g.subarray(0, IN * H),
    gb0 = b.g.subarray(IN * H, IN * H + H);
  const g1 = b.g.subarray(IN * H + H, IN * H + H + H * OUT),
    gb1 = b.g.subarray(IN * H + H + H * OUT);
  let step = 0;
  const parts: [string, () => void][] = [
    ['gemm NN 32x784 @ 784x128', () => k.gemm(false, false, M, H, IN, 1, b.x, w0, 0, b.a1)],
    ['biasAct relu 32x128', () => k.biasAct(b.a1, b0, M, H, true)],
    ['gemm NN 32x128 @ 128x10', () => k.gemm(false, false, M, OUT, H, 1, b.a1, w1, 0, b.a2)],
    ['biasAct 32x10', () => k.biasAct(b.a2, b1, M, OUT, false)],
    ['softmaxXent 32x10', () => k.softmaxXent(b.a2, b.y, M, OUT, 1 / M, b.d2)],
    ['gemm TN 128x32 @ 32x10', () => k.gemm(true, false, H, OUT, M, 1, b.a1, b.d2, 0, g1)],
    ['colSum 32x10', () => k.colSum(b.d2, M, OUT, gb1)],
    ['gemm NT 32x10 @ 10x128', () => k.gemm(false, true, M, H, OUT, 1, b.d2, w1, 0, b.d1)],
    ['reluBackward 32x128', () => k.reluBackward(b.d1, b.a1)],
    ['gemm TN 784x32 @ 32x128', () => k.gemm(true, false, IN, H, M, 1, b.x, b.d1, 0, g0)],
    ['colSum 32x128', () => k.colSum(b.d1, M, H, gb0)],
    ['sgd 101,770', () => k.sgd(b.w, b.g, 1e-9, 0, null)],
    ['adam 101,770', () => k.adam(b.w, b.g, b.m, b.v, 1e-9, 0.9, 0.999, 1e-7, ++step)],
  ];
  const n = Math.max(1, Math.floor(steps / 5));
  const med: number[] = [];
  for (const [, f] of parts) {
    for (let i = 0; i < 50; i++) f();
    const rounds: number[] = [];
    for (let r = 0; r < 5; r++) {
      const c0 = process.cpuUsage();
      for (let i = 0; i < n; i++) f();
      const c = process.cpuUsage(c0);
      rounds.push((c.user + c.system) / n);
    }
    rounds.sort((x, y) => x - y);
    med.push(rounds[2]);
  }
  const total = (skip: string): number => med.reduce((s, t, i) => (parts[i][0].startsWith(skip) ? s : s + t), 0);
  console.log(`\n${label} (CPU microseconds per call, median of 5 x ${n} calls)`);
  parts.forEach(([name], i) => console.log(`  ${name.padEnd(28)} ${med[i].toFixed(2).padStart(8)}`));
  const gemmFlops = 2 * M * IN * H * 2 + 2 * M * H * OUT * 3;
  const gemmUs = med.filter((_, i) => parts[i][0].startsWith('gemm')).reduce((s, t) => s + t, 0);
  console.log(
    `  step with SGD  ${total('adam').toFixed(1)} us = ${((M / total('adam')) * 1e6).toFixed(0)} samples/CPU-s;` +
      ` with Adam ${total('sgd').toFixed(1)} us = ${((M / total('sgd')) * 1e6).toFixed(0)} samples/CPU-s; gemm ${(gemmFlops / gemmUs / 1e3).toFixed(1)} GFLOP/s`,
  );
}

printEnvironment('mlp-step');
const native = loadNativeKernels();
if (native)
  profile(
    'native (OpenBLAS)',
    native,
    (n) => new Float32Array(n),
    (n) => new Int32Array(n),
  );
const wasm: WasmKernels | null = await loadWasmKernelsNode();
if (!wasm) throw new Error('wasm kernels not built: npm run build:wasm');
profile(
  'wasm, buffers in wasm memory (zero copy)',
  wasm,
  (n) => wasm.alloc(n),
  (n) => wasm.allocInt(n),
);
profile(
  'wasm, plain arrays (copied through scratch)',
  wasm,
  (n) => new Float32Array(n),
  (n) => new Int32Array(n),
);
