/**
 * LocalTrainer on TensorFlow.js, for models the dense engine does not run (convolutions, a user's layers).
 * Every step runs inside tf.tidy and the model and optimizer are disposed, so a round leaks no tensors.
 */
import type { Dataset } from '../data/types.js';
import { featureSize } from '../data/types.js';
import { Rng } from '../core/rng.js';
import type { ModelSpec } from './spec.js';
import { buildTfjsModel, getModelWeights, setModelWeights, tf } from './tfjs.js';
import type { EvalOutcome, GradientOutcome, LocalTrainer, TrainConfig, TrainOutcome } from './trainer.js';
import { validateBatchSize, validateTrainConfig } from './trainer.js';
import type { OptimizerConfig } from '../nn/optimizer.js';

const EVAL_BATCH = 256;

function makeOptimizer(optimizer: OptimizerConfig): tf.Optimizer {
  if (optimizer.name === 'adam')
    return tf.train.adam(optimizer.lr, optimizer.beta1 ?? 0.9, optimizer.beta2 ?? 0.999, optimizer.epsilon ?? 1e-7);
  if (optimizer.name === 'momentum') return tf.train.momentum(optimizer.lr, optimizer.momentum ?? 0.9);
  return tf.train.sgd(optimizer.lr);
}

export class TfjsTrainer implements LocalTrainer {
  readonly kind = 'tfjs' as const;
  private readonly classify: boolean;

  private constructor(
    private readonly spec: ModelSpec,
    private readonly model: tf.LayersModel,
  ) {
    this.classify = spec.loss === 'sparse_categorical_crossentropy';
  }

  static async create(spec: ModelSpec): Promise<TfjsTrainer> {
    return new TfjsTrainer(spec, await buildTfjsModel(spec));
  }

  private batch(data: Dataset, rows: ArrayLike<number>): [tf.Tensor, tf.Tensor] {
    const f = featureSize(data);
    const x = new Float32Array(rows.length * f);
    const y = this.classify ? new Int32Array(rows.length) : new Float32Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      x.set(data.x.subarray(rows[i] * f, (rows[i] + 1) * f), i * f);
      y[i] = data.y[rows[i]];
    }
    return [
      tf.tensor(x, [rows.length, ...this.spec.inputShape]),
      this.classify ? tf.tensor1d(y as Int32Array, 'int32') : tf.tensor2d(y as Float32Array, [rows.length, 1]),
    ];
  }

  /** Mean loss over the batch; Keras clips probabilities to [1e-7, 1] for cross-entropy, and so do we. */
  private loss(pred: tf.Tensor, y: tf.Tensor): tf.Scalar {
    if (!this.classify) return tf.mean(tf.squaredDifference(pred, y)) as tf.Scalar;
    const p = tf.sum(tf.mul(pred, tf.oneHot(y as tf.Tensor1D, pred.shape[1]!)), -1);
    return tf.neg(tf.mean(tf.log(tf.clipByValue(p, 1e-7, 1)))) as tf.Scalar;
  }

  private correct(pred: tf.Tensor, y: tf.Tensor): number {
    if (!this.classify) return 0;
    return tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(pred, -1), y), 'int32')).dataSync()[0]);
  }

  async train(
    global: Float32Array,
    data: Dataset,
    cfg: TrainConfig,
    shift?: Float32Array,
    frozen?: readonly unknown[],
  ): Promise<TrainOutcome> {
    validateTrainConfig(cfg);
    if (frozen && frozen.length > 0)
      throw new Error('FedRep freezes layers on the engine trainer only; this model trains on tfjs');
    if (shift)
      throw new Error(
        'SCAFFOLD and FedDyn correct the local gradient on the engine trainer only; this model trains on tfjs',
      );
    setModelWeights(this.model, global);
    const vars = this.model.trainableWeights.map((w) => w.read() as tf.Variable);
    const anchors = cfg.proxMu > 0 ? vars.map((v) => tf.clone(v)) : [];
    const opt = makeOptimizer(cfg.optimizer);
    const rng = new Rng(cfg.seed);
    const maxSteps = cfg.maxSteps ?? Infinity;
    let steps = 0;
    let loss = 0;
    let correct = 0;
    let seen = 0;
    try {
      for (let e = 0; e < cfg.epochs && steps < maxSteps; e++) {
        const order = rng.permutation(data.n);
        loss = correct = seen = 0;
        for (let s = 0; s < data.n && steps < maxSteps; s += cfg.batchSize) {
          const rows = order.subarray(s, Math.min(s + cfg.batchSize, data.n));
          const [batchLoss, batchCorrect] = tf.tidy(() => {
            const [x, y] = this.batch(data, rows);
            // The prediction is read inside the loss function: tensors it does not return are disposed
            // when it ends. The reported loss is the data loss (without the FedProx term), as the engine's.
            let baseLoss = 0;
            let batchCorrect = 0;
            const { grads } = tf.variableGrads(() => {
              const pred = this.model.apply(x, { training: true }) as tf.Tensor;
              const base = this.loss(pred, y);
              baseLoss = base.dataSync()[0];
              batchCorrect = this.correct(pred, y);
              if (anchors.length === 0) return base;
              const prox = tf.addN(vars.map((v, i) => tf.sum(tf.squaredDifference(v, anchors[i]))));
              return tf.add(base, tf.mul(cfg.proxMu / 2, prox)) as tf.Scalar;
            }, vars);
            opt.applyGradients(grads);
            return [baseLoss, batchCorrect];
          });
          steps++;
          loss += batchLoss * rows.length;
          correct += batchCorrect;
          seen += rows.length;
        }
      }
      return {
        weights: getModelWeights(this.model),
        numExamples: data.n,
        steps,
        metrics: { loss: loss / seen, accuracy: correct / seen },
      };
    } finally {
      opt.dispose();
      // tfjs 4.22's MomentumOptimizer.dispose does not call SGDOptimizer.dispose, leaking the learning
      // rate scalar every round; disposing it again is a no-op once tfjs fixes that.
      if (cfg.optimizer.name === 'momentum') tf.SGDOptimizer.prototype.dispose.call(opt);
      tf.dispose(anchors);
    }
  }

  async gradient(global: Float32Array, data: Dataset, batchSize: number): Promise<GradientOutcome> {
    validateBatchSize(batchSize); // a batch size of 0 would never advance
    setModelWeights(this.model, global);
    const vars = this.model.trainableWeights.map((w) => w.read() as tf.Variable);
    const sums = vars.map((v) => new Float64Array(v.size));
    let loss = 0;
    let correct = 0;
    for (let s = 0; s < data.n; s += batchSize) {
      const rows = Array.from({ length: Math.min(batchSize, data.n - s) }, (_, i) => s + i);
      tf.tidy(() => {
        const [x, y] = this.batch(data, rows);
        const { value, grads } = tf.variableGrads(() => {
          const pred = this.model.apply(x) as tf.Tensor;
          correct += this.correct(pred, y); // here: pred is disposed when this function returns
          return this.loss(pred, y);
        }, vars);
        vars.forEach((v, i) => {
          const g = grads[v.name].dataSync();
          for (let j = 0; j < g.length; j++) sums[i][j] += g[j] * rows.length;
        });
        loss += value.dataSync()[0] * rows.length;
      });
    }
    // Non-trainable weights (moving statistics) follow the trainable ones and have a zero gradient.
    const gradient = new Float32Array(
      this.model.weights.reduce((a, w) => a + w.shape.reduce((x, y) => x! * y!, 1)!, 0),
    );
    let offset = 0;
    for (const s of sums) {
      for (let j = 0; j < s.length; j++) gradient[offset + j] = s[j] / data.n;
      offset += s.length;
    }
    return { gradient, numExamples: data.n, metrics: { loss: loss / data.n, accuracy: correct / data.n } };
  }

  async evaluate(weights: Float32Array, data: Dataset): Promise<EvalOutcome> {
    setModelWeights(this.model, weights);
    let loss = 0;
    let correct = 0;
    for (let s = 0; s < data.n; s += EVAL_BATCH) {
      const rows = Array.from({ length: Math.min(EVAL_BATCH, data.n - s) }, (_, i) => s + i);
      tf.tidy(() => {
        const [x, y] = this.batch(data, rows);
        const pred = this.model.predict(x) as tf.Tensor;
        loss += this.loss(pred, y).dataSync()[0] * rows.length;
        correct += this.correct(pred, y);
      });
    }
    return { loss: loss / data.n, accuracy: correct / data.n, numExamples: data.n };
  }

  async predict(weights: Float32Array, x: Float32Array, n: number): Promise<Float32Array> {
    setModelWeights(this.model, weights);
    return tf
      .tidy(
        () => (this.model.predict(tf.tensor(x, [n, ...this.spec.inputShape])) as tf.Tensor).dataSync() as Float32Array,
      )
      .slice();
  }

  dispose(): void {
    this.model.dispose();
  }
}
