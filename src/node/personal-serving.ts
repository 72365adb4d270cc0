/**
 * Which model answers a node's predictions in a personalised run: the node's own model (the served global body
 * with its FedPer / FedRep head, or Ditto's personal model) once it holds personal state for the served run, the
 * global model before that (and in runs without personal state). Each answer says which: `model: { kind, version,
 * sha256 }`, the version being the global version it was built on. The personalised model is loaded once per
 * distinct weights (by sha256) and retired when it changes, as the follower does with global versions.
 */
import { makeLayout, type TensorSlot } from '../core/params.js';
import { weightsSha256 } from '../model/hash.js';
import { tensorSpecs } from '../model/spec.js';
import type { LocalStateKind } from '../model/trainer.js';
import { ServedModel } from '../predict/served-model.js';
import type { PersonalModel } from './state-file.js';

/** Where serving finds the node's personal model for a run (node/state-file.ts NodeStateDir). */
export interface PersonalModelSource {
  personal(runId: number, layout: readonly TensorSlot[], global: Float32Array): PersonalModel | undefined;
}

/** What a prediction response says about the model that answered. */
export interface AnsweringModel {
  kind: 'personalised' | 'global';
  /** The global model version (the personalised model is built on it). */
  version: number | string;
  /** sha256 of the answering weights (float32 little-endian bytes). */
  sha256: string;
  /** Personalised only: the strategy's kind of state and the round of the node's last update to it. */
  personal?: { state: LocalStateKind; round: number };
}

export class PersonalServing {
  private loaded: { model: ServedModel; info: AnsweringModel } | null = null;
  private loading: Promise<unknown> = Promise.resolve();

  constructor(private readonly source: PersonalModelSource) {}

  /** The model to answer with, given the global model being served for run `runId`. */
  async pick(global: ServedModel, runId: number | null): Promise<{ model: ServedModel; info: AnsweringModel }> {
    const plain = { model: global, info: { kind: 'global' as const, version: global.version, sha256: global.sha256 } };
    if (runId === null) return plain;
    const layout = makeLayout(global.spec.tensors ?? tensorSpecs(global.spec));
    const own = this.source.personal(runId, layout, global.weights);
    if (!own) return plain;
    const sha256 = weightsSha256(own.weights);
    const info: AnsweringModel = {
      kind: 'personalised',
      version: global.version,
      sha256,
      personal: { state: own.kind, round: own.round },
    };
    // One load at a time, so concurrent requests for the same new weights share it.
    const next = this.loading.then(async () => {
      const cur = this.loaded;
      if (cur && cur.info.sha256 === sha256 && cur.info.version === global.version) return cur;
      const model = await ServedModel.load(global.version, global.spec, own.weights, sha256);
      this.loaded = { model, info };
      cur?.model.retire();
      return this.loaded;
    });
    this.loading = next.catch(() => undefined);
    return next;
  }

  close(): void {
    this.loaded?.model.retire();
    this.loaded = null;
  }
}
