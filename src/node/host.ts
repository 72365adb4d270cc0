/**
 * The node side of a round: decodes a request frame, trains or evaluates on the node's own data, and
 * answers with a frame. One host may serve several virtual nodes (a simulation worker) or one (an agent).
 *
 * Attack simulation: a host may be told that some of its nodes are Byzantine. Those
 * train as usual and then send what the attack says instead of their honest update (robust.ts defines
 * each attack), so the coordinator only ever sees what a real attacker would send. label-flip trains
 * on labels y -> C - 1 - y; gaussian noise is seeded from the round's node seed, so runs are
 * reproducible whatever worker serves the node. Byzantine nodes still evaluate honestly.
 */
import type { Dataset } from '../data/types.js';
import type { FeatureStandardization } from '../net/node-protocol.js';
import type { TensorSlot } from '../core/params.js';
import { Rng } from '../core/rng.js';
import { attackUpdate, flipLabels, type AttackKind } from '../core/robust.js';
import type { LocalTrainer } from '../model/trainer.js';
import { decodeMessage, encodeError, encodeEvalReply, type TrainReply } from '../engine/messages.js';
import { UpdateCompressor } from '../core/compress-update.js';
import { encodeUpdateReply } from './update-reply.js';
import type { TrainConfig } from '../model/trainer.js';
import { validateTrainConfig } from '../model/trainer.js';
import { peekHeader } from '../core/wire.js';
import { isSecAggFrameType } from '../core/secagg/codec.js';
import { SecureNodeSessions, type SecureNodeOptions } from './secure-session.js';
import type { LocalPrivacy } from './local-privacy.js';
import { NodeLocalState, type NodeStateStore } from './local-state.js';
import { answerAnalyticsFrame } from './analytics-answer.js';
import { ANALYTICS_REQUEST } from '../engine/analytics-messages.js';

export interface LocalData {
  train: Dataset;
  validation: Dataset;
  /** The node's rows before scaling (CSV), for analytics; absent = train and validation are raw. */
  raw?: Dataset;
  /** CSV rows: the same split scaled with a run's statistics (the federation's) in place of the node's own. */
  scaledWith?: (stats: FeatureStandardization) => LocalData;
}

/** Which nodes attack and how (plain data, so it can cross into worker threads). */
export interface NodeAttack {
  kind: AttackKind;
  /** Strength s of sign-flip, gaussian (sigma) and scale; ignored by label-flip. */
  scale: number;
  /** Ids of the Byzantine nodes. */
  nodes: readonly number[];
}

/** What an analytics request summarises: a node's rows before scaling (validation rows included). */
export function analyticsRows(local: LocalData | undefined): Dataset[] | undefined {
  return local && (local.raw ? [local.raw] : [local.train, local.validation]);
}

export class NodeHost {
  private readonly byzantine: ReadonlySet<number>;
  private readonly flipped = new Map<number, Dataset>();
  private readonly secure: SecureNodeSessions;
  /** Keeps each node's error-feedback residual between rounds (the pool pins a node to one worker for this). */
  private readonly compressor: UpdateCompressor;
  /** SCAFFOLD's and FedDyn's per-node state between rounds. */
  private readonly localState: NodeLocalState;

  constructor(
    private readonly layout: readonly TensorSlot[],
    private readonly trainer: LocalTrainer,
    private readonly data: ReadonlyMap<number, LocalData>,
    private readonly attack?: NodeAttack,
    secure?: SecureNodeOptions,
    /** Local DP: every update is clipped and noised here, before it leaves (masked or not). */
    private readonly privacy?: LocalPrivacy,
    /** A deployed node: where its SCAFFOLD / FedDyn / personal state outlives the process. */
    stateStore?: NodeStateStore,
  ) {
    this.byzantine = new Set(attack?.nodes ?? []);
    this.secure = new SecureNodeSessions(secure);
    this.compressor = new UpdateCompressor(layout);
    this.localState = new NodeLocalState(layout, stateStore);
  }

  async handle(frame: Uint8Array): Promise<Uint8Array> {
    let round = -1;
    let nodeId = -1;
    try {
      const type = peekHeader(frame).type;
      if (typeof type === 'string' && isSecAggFrameType(type)) return this.secureStep(frame);
      if (type === ANALYTICS_REQUEST) return answerAnalyticsFrame(frame, (id) => analyticsRows(this.data.get(id)));
      const msg = decodeMessage(this.layout, frame);
      if (msg.type !== 'train' && msg.type !== 'evaluate')
        throw new Error(`a node does not accept '${msg.type}' messages`);
      ({ round, nodeId } = msg.req);
      const local = this.data.get(nodeId);
      if (!local) throw new Error(`node ${nodeId} is not hosted here`);
      if (msg.type === 'evaluate') {
        const held = local.validation.n > 0 ? local.validation : local.train;
        const r = await this.trainer.evaluate(msg.req.weights, held);
        this.localState.resume(nodeId);
        // A node with a personal head (FedPer) also reports its own model's metrics on the same split.
        const own = this.localState.personal(nodeId, msg.req.weights);
        const personal = own && (await this.trainer.evaluate(own, held));
        return encodeEvalReply({
          round,
          nodeId,
          ...r,
          ...(personal ? { personal: { loss: personal.loss, accuracy: personal.accuracy } } : {}),
        });
      }
      const { config, mode, weights } = msg.req;
      const attack = this.attack && this.byzantine.has(nodeId) ? this.attack : undefined;
      const train = attack?.kind === 'label-flip' ? this.flippedTrain(nodeId, local.train) : local.train;
      if (mode === 'gradient') {
        // A secure round must never be answered with a plain update.
        if (msg.req.secagg !== undefined)
          throw new Error('secure aggregation takes weights-mode rounds, not gradient mode');
        if (this.privacy)
          throw new Error('local DP noises model updates: gradient-mode strategies (fedsgd) are refused by this node');
        if (config.localState !== undefined)
          throw new Error(`local state '${config.localState}' takes weights-mode rounds, not gradient mode`);
        const g = await this.trainer.gradient(weights, train, Math.max(config.batchSize, 256));
        const vector = attack
          ? this.poison(attack, g.gradient, new Float32Array(g.gradient.length), config.seed)
          : g.gradient;
        return this.reply(
          { round, nodeId, numExamples: g.numExamples, steps: 1, metrics: g.metrics, vector },
          config,
          weights,
          true,
        );
      }
      validateTrainConfig(config);
      if (msg.req.secagg !== undefined && config.localState !== undefined) {
        throw new Error(`local state '${config.localState}' does not combine with secure aggregation`);
      }
      const { control } = msg.req;
      this.localState.resume(nodeId, config.localState, round);
      const shift = this.localState.shift(nodeId, config, control, weights.length);
      const start = this.localState.startWeights(nodeId, config, weights);
      const r =
        config.localState === 'fedrep'
          ? await this.fedRep(start, train, config)
          : await this.trainer.train(start, train, config, shift);
      const controlDelta = this.localState.after(nodeId, config, control, weights, r.weights, r.steps);
      if (config.localState === 'ditto') await this.dittoPersonal(nodeId, weights, train, config);
      this.localState.persist(nodeId, config, round);
      const trained = this.localState.outgoing(config, r.weights, weights);
      const honest = this.privacy ? this.privacy.apply(nodeId, config.seed, weights, trained) : trained;
      const vector = attack ? this.poison(attack, honest, weights, config.seed) : honest;
      // Secure aggregation: the update stays on the node; the reply carries public keys only.
      if (msg.req.secagg !== undefined)
        return this.secure.start(round, nodeId, msg.req.secagg, weights, vector, r.numExamples, r.metrics);
      const extra = controlDelta ? { controlDelta } : {};
      return this.reply(
        { round, nodeId, numExamples: r.numExamples, steps: r.steps, metrics: r.metrics, vector, ...extra },
        config,
        weights,
        false,
      );
    } catch (e) {
      return encodeError(round, nodeId, (e as Error).message);
    }
  }

  /** Ditto (Li et al. 2021): the node's personal model, trained on its data with a pull of lambda toward the global. */
  private async dittoPersonal(
    nodeId: number,
    global: Float32Array,
    train: Dataset,
    config: TrainConfig,
  ): Promise<void> {
    const { start, shift } = this.localState.dittoStart(nodeId, config, global);
    const personalConfig = {
      ...config,
      proxMu: config.personalMu ?? 0,
      seed: new Rng(config.seed).fork('ditto').nextU32(),
    };
    this.localState.keepPersonalModel(nodeId, (await this.trainer.train(start, train, personalConfig, shift)).weights);
  }

  /** FedRep (Collins et al. 2021): the head alone for headEpochs (body frozen), then the body (head frozen). */
  private async fedRep(start: Float32Array, train: Dataset, config: TrainConfig) {
    const head = this.localState.headOf(config);
    const headSet = new Set(head.map((s) => s.name));
    const body = this.layout.filter((s) => !headSet.has(s.name));
    const first = await this.trainer.train(
      start,
      train,
      { ...config, epochs: config.headEpochs ?? 1, seed: new Rng(config.seed).fork('head').nextU32() },
      undefined,
      body,
    );
    return this.trainer.train(first.weights, train, config, undefined, head);
  }

  private secureStep(frame: Uint8Array): Uint8Array {
    let round = -1;
    let nodeId = -1;
    try {
      const h = peekHeader(frame);
      if (Number.isInteger(h.round) && Number.isInteger(h.node))
        [round, nodeId] = [h.round as number, h.node as number];
      return this.secure.handle(frame);
    } catch (e) {
      return encodeError(round, nodeId, (e as Error).message);
    }
  }

  private reply(r: TrainReply, config: TrainConfig, global: Float32Array, gradient: boolean): Uint8Array {
    return encodeUpdateReply(this.layout, this.compressor, r, config, global, gradient);
  }

  /** The vector a Byzantine node sends in place of `honest` (label-flip already poisoned the data). */
  private poison(attack: NodeAttack, honest: Float32Array, reference: Float32Array, seed: number): Float32Array {
    if (attack.kind === 'label-flip') return honest;
    return attackUpdate(attack.kind, honest, reference, attack.scale, new Rng(seed).fork('attack'));
  }

  private flippedTrain(nodeId: number, train: Dataset): Dataset {
    let d = this.flipped.get(nodeId);
    if (!d) {
      if (!(train.y instanceof Int32Array))
        throw new Error(`label-flip attack: ${train.source} has regression targets, not class labels`);
      d = { ...train, y: flipLabels(train.y, train.numClasses) };
      this.flipped.set(nodeId, d);
    }
    return d;
  }
}
