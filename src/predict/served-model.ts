/**
 * One model version loaded for serving. Requests take the model they started with (a new version swaps
 * in between requests); a retired version's trainer is disposed once its last request finishes.
 */
import { makeTrainer } from '../model/make-trainer.js';
import { tensorSpecs, type ModelSpec } from '../model/spec.js';
import type { LocalTrainer } from '../model/trainer.js';
import { decide } from './decide.js';

/** What a model says about one sample: a class with its probability, or a regression value. */
export type ModelOutput = { class: number; confidence: number } | { value: number[] };

export class ServedModel {
  private users = 0;
  private retired = false;
  readonly featureSize: number;
  /** Classes of a softmax model; 0 for a regression (MSE) model. */
  readonly numClasses: number;
  readonly outputSize: number;

  private constructor(
    readonly version: number | string,
    readonly spec: ModelSpec,
    readonly weights: Float32Array,
    readonly sha256: string,
    private readonly trainer: LocalTrainer,
  ) {
    this.featureSize = spec.inputShape.reduce((a, b) => a * b, 1);
    const tensors = spec.tensors ?? tensorSpecs(spec);
    this.outputSize = tensors[tensors.length - 1].shape[0];
    this.numClasses = spec.loss === 'mse' ? 0 : this.outputSize;
  }

  static async load(
    version: number | string,
    spec: ModelSpec,
    weights: Float32Array,
    sha256: string,
  ): Promise<ServedModel> {
    return new ServedModel(version, spec, weights, sha256, await makeTrainer(spec));
  }

  async predict(x: Float32Array, n: number): Promise<ModelOutput[]> {
    if (this.retired) throw new Error(`model version ${this.version} is retired`);
    this.users++;
    try {
      const out = await this.trainer.predict(this.weights, x, n);
      if (this.numClasses === 0)
        return Array.from({ length: n }, (_, i) => ({
          value: Array.from(out.subarray(i * this.outputSize, (i + 1) * this.outputSize)),
        }));
      return decide(out, this.numClasses, 0).map((p) => ({ class: p.class, confidence: p.confidence }));
    } finally {
      this.users--;
      if (this.retired && this.users === 0) this.trainer.dispose();
    }
  }

  /** No new requests; disposed when the ones in flight are done. */
  retire(): void {
    if (this.retired) return;
    this.retired = true;
    if (this.users === 0) this.trainer.dispose();
  }
}
