/**
 * What a serving node needs of a model version, whatever runs it: the float engine (served-model.ts) or
 * integer inference (int8-served-model.ts). A loader turns a downloaded global version into one.
 */
import type { ModelSpec } from '../model/spec.js';
import type { ModelOutput } from './served-model.js';

export interface ServingModel {
  readonly version: number | string;
  readonly sha256: string;
  readonly featureSize: number;
  /** 'int8' when answers come from integer inference; absent for the float model. */
  readonly precision?: 'int8';
  predict(x: Float32Array, n: number): Promise<ModelOutput[]>;
  retire(): void;
}

export type ModelLoader = (
  version: number | string,
  spec: ModelSpec,
  weights: Float32Array,
  sha256: string,
) => Promise<ServingModel>;
