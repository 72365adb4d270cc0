/**
 * What a node keeps between rounds for strategies with node-side state (core/control-variates.ts): SCAFFOLD's
 * control variate c_i, FedDyn's linear term g_i, FedPer's and FedRep's personal head, FedBN's BatchNormalization
 * layers (kept as a head of non-adjacent slots) and Ditto's personal model, one per virtual node this host serves
 * (the worker pool pins a node to one worker, so its state stays in one place). Both start at zero, as in the papers. Kept in
 * memory; with a NodeStateStore (a deployed node: node/state-file.ts) it is also saved after every update and
 * read back when the process restarts, so a node resumes a run with the state it had.
 */
import { feddynNodeUpdate, feddynShift, scaffoldNodeUpdate, scaffoldShift } from '../core/control-variates.js';
import { headSlots, takeHead, withHead } from '../core/personal-head.js';
import { batchNormSlots } from '../core/batchnorm-slots.js';
import type { TensorSlot } from '../core/params.js';
import type { LocalStateKind, TrainConfig } from '../model/trainer.js';

/** What one node keeps between rounds, as a store saves it (only the fields its strategy uses are set). */
export interface NodeStateSnapshot {
  kind: LocalStateKind;
  /** The round of the last update that changed it. */
  round: number;
  /** SCAFFOLD's control variate c_i. */
  control?: Float32Array;
  /** FedDyn's linear term g_i. */
  linear?: Float32Array;
  /** FedPer / FedRep / FedBN: the kept slots' values (takeHead order); FedPer/FedRep: how many layers the head spans. */
  head?: Float32Array;
  headLayers?: number;
  /** Ditto's personal model. */
  personal?: Float32Array;
}

/** Where a node's state survives its process: loaded once, saved after each update. */
export interface NodeStateStore {
  /** The kept state, or undefined (none, or unusable: the store has said why). */
  load(): NodeStateSnapshot | undefined;
  save(snapshot: NodeStateSnapshot): void;
  warn(message: string): void;
}

export class NodeLocalState {
  private readonly controls = new Map<number, Float32Array>();
  private readonly linear = new Map<number, Float32Array>();
  /** FedPer: each node's head and the slots it fills (the head's size is fixed by the first round). */
  private readonly heads = new Map<number, { head: Float32Array; slots: TensorSlot[] }>();
  /** Ditto: each node's personal model. */
  private readonly models = new Map<number, Float32Array>();

  /** With a store: whether it was read yet, and the kind of state it held. */
  private loaded = false;
  private resumedKind: LocalStateKind | undefined;
  private resumedRound = -1;

  constructor(
    private readonly layout: readonly TensorSlot[],
    private readonly store?: NodeStateStore,
  ) {}

  /**
   * Reads the store's state into `nodeId` the first time (a deployed host serves one node). A train request whose
   * strategy keeps another kind of state, or that comes before the kept state's round (a reused run id: the
   * coordinator's database was reset), drops it with a warning instead of using it.
   */
  resume(nodeId: number, kind?: LocalStateKind, round?: number): void {
    if (!this.store) return;
    if (!this.loaded) {
      this.loaded = true;
      const s = this.store.load();
      if (s) this.restore(nodeId, s);
    }
    if (this.resumedKind === undefined) return;
    const why =
      kind !== undefined && kind !== this.resumedKind
        ? `the kept node state is '${this.resumedKind}' state, this run's strategy keeps '${kind}'`
        : round !== undefined && round < this.resumedRound
          ? `the kept node state is from round ${this.resumedRound}, the coordinator asks for round ${round} ` +
            "(the run id was reused: was the coordinator's database reset?)"
          : undefined;
    if (!why) return;
    this.store.warn(`${why}: starting fresh`);
    for (const m of [this.controls, this.linear, this.heads, this.models]) m.delete(nodeId);
    this.resumedKind = undefined;
  }

  /** Saves `nodeId`'s state after the update of `round` (a failed save warns: the update still goes out). */
  persist(nodeId: number, config: TrainConfig, round: number): void {
    const kind = config.localState;
    if (!this.store || kind === undefined) return;
    const head = this.heads.get(nodeId);
    const snapshot: NodeStateSnapshot = {
      kind,
      round,
      ...(this.controls.has(nodeId) ? { control: this.controls.get(nodeId) } : {}),
      ...(this.linear.has(nodeId) ? { linear: this.linear.get(nodeId) } : {}),
      ...(head ? { head: head.head, headLayers: config.headLayers ?? 1 } : {}),
      ...(this.models.has(nodeId) ? { personal: this.models.get(nodeId) } : {}),
    };
    try {
      this.store.save(snapshot);
      this.resumedKind = kind;
      this.resumedRound = round;
    } catch (e) {
      this.store.warn(`could not save the node state after round ${round}: ${(e as Error).message}`);
    }
  }

  private restore(nodeId: number, s: NodeStateSnapshot): void {
    const size = this.layout.reduce((a, slot) => a + slot.size, 0);
    const fits = (v: Float32Array | undefined, n: number) => v === undefined || v.length === n;
    let slots: TensorSlot[] | undefined;
    try {
      slots = s.head ? keptSlots(this.layout, s.kind, s.headLayers) : undefined;
    } catch (e) {
      return this.store!.warn(
        `the kept personal head does not fit this model (${(e as Error).message}): starting fresh`,
      );
    }
    const headSize = slots?.reduce((a, slot) => a + slot.size, 0) ?? 0;
    if (!fits(s.control, size) || !fits(s.linear, size) || !fits(s.personal, size) || !fits(s.head, headSize))
      return this.store!.warn(`the kept node state does not fit a model of ${size} values: starting fresh`);
    if (s.control) this.controls.set(nodeId, s.control);
    if (s.linear) this.linear.set(nodeId, s.linear);
    if (s.head && slots) this.heads.set(nodeId, { head: s.head, slots });
    if (s.personal) this.models.set(nodeId, s.personal);
    this.resumedKind = s.kind;
    this.resumedRound = s.round;
  }

  /** The weights a node trains from: the global model, with its own head once it has one (FedPer). */
  startWeights(nodeId: number, config: TrainConfig, global: Float32Array): Float32Array {
    if (!personalHead(config)) return global;
    const own = this.heads.get(nodeId);
    const slots = this.headOf(config);
    if (own && own.slots.length !== slots.length)
      throw new Error(`node ${nodeId} keeps a head of ${own.slots.length} tensors, the run asks for ${slots.length}`);
    return own ? withHead(global, own.head, own.slots) : global;
  }

  /** What leaves the node: the trained model, with the head's slots set back to the global's (FedPer keeps it). */
  outgoing(config: TrainConfig, local: Float32Array, global: Float32Array): Float32Array {
    if (!personalHead(config)) return local;
    const slots = this.headOf(config);
    return withHead(local, takeHead(global, slots), slots);
  }

  /** The slots the node keeps (FedBN: its BatchNormalization layers); FedRep trains them alone, then freezes them. */
  headOf(config: TrainConfig): TensorSlot[] {
    return keptSlots(this.layout, config.localState, config.headLayers);
  }

  /**
   * Ditto: where the node's personal model starts this round (the global model the first time) and the gradient
   * shift that makes the trainer's proximal term, anchored at that start, pull toward the global model instead:
   * mu (w - x) = mu (w - v) + mu (v - x).
   */
  dittoStart(nodeId: number, config: TrainConfig, global: Float32Array): { start: Float32Array; shift: Float32Array } {
    const v = this.models.get(nodeId) ?? global;
    const mu = config.personalMu ?? 0;
    return { start: v, shift: v.map((value, j) => mu * (value - global[j])) };
  }

  keepPersonalModel(nodeId: number, model: Float32Array): void {
    this.models.set(nodeId, model);
  }

  /** The node's personalised model for `global` (its own head, or Ditto's model), or undefined when it has none. */
  personal(nodeId: number, global: Float32Array): Float32Array | undefined {
    const model = this.models.get(nodeId);
    if (model) return model;
    const own = this.heads.get(nodeId);
    return own && withHead(global, own.head, own.slots);
  }

  /** Checks the request's state fields agree, and returns the gradient shift for this round (none without state). */
  shift(
    nodeId: number,
    config: TrainConfig,
    control: Float32Array | undefined,
    size: number,
  ): Float32Array | undefined {
    if (config.localState === 'scaffold') {
      if (!control) throw new Error('a SCAFFOLD train request must carry the server control variate');
      if (config.compression !== undefined && config.compression.kind !== 'none') {
        throw new Error('SCAFFOLD sends its control delta uncompressed; the run asks for compressed updates');
      }
      return scaffoldShift(control, this.stateOf(this.controls, nodeId, size));
    }
    if (control)
      throw new Error(
        `a control variate came with a train request whose local state is '${config.localState ?? 'none'}', not 'scaffold'`,
      );
    if (config.localState === 'feddyn') {
      if (!(config.proxMu > 0)) throw new Error('FedDyn needs alpha > 0 (sent as proxMu)');
      return feddynShift(this.stateOf(this.linear, nodeId, size));
    }
    return undefined;
  }

  /** Updates the node's state after training from `global` to `local`; returns SCAFFOLD's control delta to upload. */
  after(
    nodeId: number,
    config: TrainConfig,
    control: Float32Array | undefined,
    global: Float32Array,
    local: Float32Array,
    steps: number,
  ): Float32Array | undefined {
    if (config.localState === 'scaffold') {
      const { delta, next } = scaffoldNodeUpdate(
        this.stateOf(this.controls, nodeId, global.length),
        control!,
        global,
        local,
        steps,
        config.optimizer.lr,
      );
      this.controls.set(nodeId, next);
      return delta;
    }
    if (personalHead(config)) {
      const slots = this.headOf(config);
      this.heads.set(nodeId, { head: takeHead(local, slots), slots });
    }
    if (config.localState === 'feddyn') {
      this.linear.set(
        nodeId,
        feddynNodeUpdate(this.stateOf(this.linear, nodeId, global.length), config.proxMu, global, local),
      );
    }
    return undefined;
  }

  private stateOf(states: Map<number, Float32Array>, nodeId: number, size: number): Float32Array {
    const s = states.get(nodeId);
    if (s && s.length !== size)
      throw new Error(`node ${nodeId} kept state for a model of ${s.length} values, this one has ${size}`);
    return s ?? new Float32Array(size);
  }
}

/** The slots a node keeps for itself: FedBN its BatchNormalization layers, FedPer/FedRep the last headLayers. */
export function keptSlots(
  layout: readonly TensorSlot[],
  kind: LocalStateKind | undefined,
  headLayers = 1,
): TensorSlot[] {
  return kind === 'fedbn' ? batchNormSlots(layout) : headSlots(layout, headLayers);
}

/** The personalised model a kept state gives on top of `global` (Ditto's own model, or the global with its head). */
export function personalModelOf(
  s: NodeStateSnapshot,
  layout: readonly TensorSlot[],
  global: Float32Array,
): Float32Array | undefined {
  if (s.personal) return s.personal.length === global.length ? s.personal : undefined;
  return s.head && withHead(global, s.head, keptSlots(layout, s.kind, s.headLayers));
}

/** FedPer and FedRep keep a personal head, FedBN its BatchNormalization layers: the same mechanism. */
export function personalHead(config: TrainConfig): boolean {
  return config.localState === 'fedper' || config.localState === 'fedrep' || config.localState === 'fedbn';
}
