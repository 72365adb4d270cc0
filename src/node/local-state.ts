/**
 * What a node keeps between rounds for strategies with node-side state (core/control-variates.ts): SCAFFOLD's
 * control variate c_i, FedDyn's linear term g_i, FedPer's and FedRep's personal head, FedBN's BatchNormalization
 * layers (kept as a head of non-adjacent slots) and Ditto's personal model, one per virtual node this host serves (the worker pool
 * pins a node to one worker, so its state stays in one place). Both start at zero, as in the papers. Kept in
 * memory: a restarted process starts its nodes from zero again.
 */
import { feddynNodeUpdate, feddynShift, scaffoldNodeUpdate, scaffoldShift } from '../core/control-variates.js';
import { headSlots, takeHead, withHead } from '../core/personal-head.js';
import { batchNormSlots } from '../core/batchnorm-slots.js';
import type { TensorSlot } from '../core/params.js';
import type { TrainConfig } from '../model/trainer.js';

export class NodeLocalState {
  private readonly controls = new Map<number, Float32Array>();
  private readonly linear = new Map<number, Float32Array>();
  /** FedPer: each node's head and the slots it fills (the head's size is fixed by the first round). */
  private readonly heads = new Map<number, { head: Float32Array; slots: TensorSlot[] }>();
  /** Ditto: each node's personal model. */
  private readonly models = new Map<number, Float32Array>();

  constructor(private readonly layout: readonly TensorSlot[]) {}

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
    if (config.localState === 'fedbn') return batchNormSlots(this.layout);
    return headSlots(this.layout, config.headLayers ?? 1);
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

/** FedPer and FedRep keep a personal head, FedBN its BatchNormalization layers: the same mechanism. */
export function personalHead(config: TrainConfig): boolean {
  return config.localState === 'fedper' || config.localState === 'fedrep' || config.localState === 'fedbn';
}
