/**
 * A global model version served from int8 (`edgefed node --serve-quantized`): quantised on arrival with
 * calibration on the node's own data, then answered by integer inference (core/int8-net.ts) in plain
 * TypeScript, without tfjs or the float kernels.
 */
import { Int8Runner, type Int8Net } from '../core/int8-net.js';
import type { Dataset } from '../data/types.js';
import { quantizeModel } from '../model/quantize-model.js';
import { decide } from './decide.js';
import type { ModelOutput } from './served-model.js';
import type { ModelLoader, ServingModel } from './serving-model.js';

export class Int8ServedModel implements ServingModel {
  readonly precision = 'int8' as const;
  readonly featureSize: number;
  readonly numClasses: number;
  private readonly runner: Int8Runner;
  private retired = false;

  constructor(
    readonly version: number | string,
    readonly sha256: string,
    net: Int8Net,
    classify: boolean,
    /** Samples the activation ranges were measured on. */
    readonly calibrationSamples: number,
  ) {
    this.runner = new Int8Runner(net);
    this.featureSize = net.inputShape.reduce((a, b) => a * b, 1);
    this.numClasses = classify ? net.outputSize : 0;
  }

  async predict(x: Float32Array, n: number): Promise<ModelOutput[]> {
    if (this.retired) throw new Error(`model version ${this.version} is retired`);
    const out = this.runner.predict(x, n);
    if (this.numClasses > 0)
      return decide(out, this.numClasses, 0).map((p) => ({ class: p.class, confidence: p.confidence }));
    const size = this.runner.net.outputSize;
    return Array.from({ length: n }, (_, i) => ({ value: Array.from(out.subarray(i * size, (i + 1) * size)) }));
  }

  retire(): void {
    this.retired = true; // plain typed arrays: nothing to dispose
  }
}

/** A loader that quantises each downloaded version, calibrating on `calibration` (the node's training data). */
export function int8Loader(calibration: Dataset, limit?: number): ModelLoader {
  return async (version, spec, weights, sha256) => {
    const { net, samples } = quantizeModel(spec, weights, calibration, limit);
    return new Int8ServedModel(version, sha256, net, spec.loss !== 'mse', samples);
  };
}
