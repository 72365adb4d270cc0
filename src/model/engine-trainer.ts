/** LocalTrainer on the dense engine: flat buffers through native or JS kernels, no tensors. */
import type { Dataset } from '../data/types.js';
import { featureSize } from '../data/types.js';
import { DenseNet, type DenseNetSpec } from '../nn/dense.js';
import type { Kernels } from '../nn/kernels.js';
import { FlatOptimizer } from '../nn/optimizer.js';
import { Rng } from '../core/rng.js';
import type { EvalOutcome, GradientOutcome, LocalTrainer, TrainConfig, TrainOutcome } from './trainer.js';
import { validateBatchSize, validateTrainConfig } from './trainer.js';

const EVAL_BATCH = 512;

export class EngineTrainer implements LocalTrainer {
  readonly kind = 'engine' as const;
  private readonly net: DenseNet;
  private xBuf = new Float32Array(0);
  private yInt = new Int32Array(0);
  private yFloat = new Float32Array(0);

  constructor(spec: DenseNetSpec, private readonly kernels: Kernels) {
    this.net = new DenseNet(spec, kernels);
  }

  private checkData(data: Dataset, weights: Float32Array): void {
    if (featureSize(data) !== this.net.spec.inputSize) {
      throw new Error(`data ${data.source} has ${featureSize(data)} features per example, the model takes ${this.net.spec.inputSize}`);
    }
    if (weights.length !== this.net.numParams) throw new Error(`weights have ${weights.length} values, the model needs ${this.net.numParams}`);
    if (data.n === 0) throw new Error(`data ${data.source} is empty`);
  }

  /** Copies the rows order[start..start+m) into the batch buffers. */
  private gather(data: Dataset, order: Int32Array | null, start: number, m: number): [Float32Array, Int32Array | Float32Array] {
    const f = featureSize(data);
    if (this.xBuf.length < m * f) this.xBuf = new Float32Array(m * f);
    if (order === null) {
      const y = data.y.subarray(start, start + m);
      return [data.x.subarray(start * f, (start + m) * f), y];
    }
    const yBuf = data.y instanceof Int32Array ? (this.yInt.length >= m ? this.yInt : (this.yInt = new Int32Array(m)))
      : (this.yFloat.length >= m ? this.yFloat : (this.yFloat = new Float32Array(m)));
    for (let i = 0; i < m; i++) {
      const r = order[start + i];
      this.xBuf.set(data.x.subarray(r * f, (r + 1) * f), i * f);
      yBuf[i] = data.y[r];
    }
    return [this.xBuf.subarray(0, m * f), yBuf.subarray(0, m)];
  }

  async train(global: Float32Array, data: Dataset, cfg: TrainConfig): Promise<TrainOutcome> {
    validateTrainConfig(cfg);
    this.checkData(data, global);
    const w = new Float32Array(global);
    const g = new Float32Array(w.length);
    const opt = new FlatOptimizer(cfg.optimizer, this.kernels, w.length);
    const rng = new Rng(cfg.seed);
    const maxSteps = cfg.maxSteps ?? Infinity;
    let steps = 0;
    let loss = 0;
    let correct = 0;
    let seen = 0;
    for (let e = 0; e < cfg.epochs && steps < maxSteps; e++) {
      const order = rng.permutation(data.n);
      loss = correct = seen = 0; // metrics report the last epoch, as Keras' history does
      for (let s = 0; s < data.n && steps < maxSteps; s += cfg.batchSize) {
        const m = Math.min(cfg.batchSize, data.n - s);
        const [xb, yb] = this.gather(data, order, s, m);
        const r = this.net.gradient(w, xb, yb, m, g);
        if (cfg.proxMu > 0) {
          // FedProx: gradient of (mu/2)||w - w_global||^2
          for (let i = 0; i < w.length; i++) g[i] += cfg.proxMu * (w[i] - global[i]);
        }
        opt.step(w, g);
        steps++;
        loss += r.loss;
        correct += r.correct;
        seen += m;
      }
    }
    return { weights: w, numExamples: data.n, steps, metrics: { loss: loss / seen, accuracy: correct / seen } };
  }

  async gradient(global: Float32Array, data: Dataset, batchSize: number): Promise<GradientOutcome> {
    this.checkData(data, global);
    validateBatchSize(batchSize); // a batch size of 0 would never advance
    const g = new Float32Array(global.length);
    const sum = new Float64Array(global.length);
    let loss = 0;
    let correct = 0;
    for (let s = 0; s < data.n; s += batchSize) {
      const m = Math.min(batchSize, data.n - s);
      const [xb, yb] = this.gather(data, null, s, m);
      const r = this.net.gradient(global, xb, yb, m, g);
      for (let i = 0; i < g.length; i++) sum[i] += g[i] * m; // batch-mean gradient back to a sum
      loss += r.loss;
      correct += r.correct;
    }
    const gradient = new Float32Array(global.length);
    for (let i = 0; i < g.length; i++) gradient[i] = sum[i] / data.n;
    return { gradient, numExamples: data.n, metrics: { loss: loss / data.n, accuracy: correct / data.n } };
  }

  async evaluate(weights: Float32Array, data: Dataset): Promise<EvalOutcome> {
    this.checkData(data, weights);
    let loss = 0;
    let correct = 0;
    for (let s = 0; s < data.n; s += EVAL_BATCH) {
      const m = Math.min(EVAL_BATCH, data.n - s);
      const [xb, yb] = this.gather(data, null, s, m);
      const r = this.net.evaluate(weights, xb, yb, m);
      loss += r.loss;
      correct += r.correct;
    }
    return { loss: loss / data.n, accuracy: correct / data.n, numExamples: data.n };
  }

  async predict(weights: Float32Array, x: Float32Array, n: number): Promise<Float32Array> {
    const f = this.net.spec.inputSize;
    if (x.length !== n * f) throw new Error(`input has ${x.length} values, expected ${n} x ${f}`);
    const out = new Float32Array(n * this.net.outputSize);
    for (let s = 0; s < n; s += EVAL_BATCH) {
      const m = Math.min(EVAL_BATCH, n - s);
      out.set(this.net.predict(weights, x.subarray(s * f, (s + m) * f), m), s * this.net.outputSize);
    }
    return out;
  }

  dispose(): void {}
}
