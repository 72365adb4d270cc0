/**
 * What a node keeps between rounds for strategies with node-side state (core/control-variates.ts): SCAFFOLD's
 * control variate c_i and FedDyn's linear term g_i, one per virtual node this host serves (the worker pool
 * pins a node to one worker, so its state stays in one place). Both start at zero, as in the papers. Kept in
 * memory: a restarted process starts its nodes from zero again.
 */
import { feddynNodeUpdate, feddynShift, scaffoldNodeUpdate, scaffoldShift } from '../core/control-variates.js';
import type { TrainConfig } from '../model/trainer.js';

export class NodeLocalState {
  private readonly controls = new Map<number, Float32Array>();
  private readonly linear = new Map<number, Float32Array>();

  /** Checks the request's state fields agree, and returns the gradient shift for this round (none without state). */
  shift(nodeId: number, config: TrainConfig, control: Float32Array | undefined, size: number): Float32Array | undefined {
    if (config.localState === 'scaffold') {
      if (!control) throw new Error('a SCAFFOLD train request must carry the server control variate');
      if (config.compression !== undefined && config.compression.kind !== 'none') {
        throw new Error('SCAFFOLD sends its control delta uncompressed; the run asks for compressed updates');
      }
      return scaffoldShift(control, this.stateOf(this.controls, nodeId, size));
    }
    if (control) throw new Error(`a control variate came with a train request whose local state is '${config.localState ?? 'none'}', not 'scaffold'`);
    if (config.localState === 'feddyn') {
      if (!(config.proxMu > 0)) throw new Error('FedDyn needs alpha > 0 (sent as proxMu)');
      return feddynShift(this.stateOf(this.linear, nodeId, size));
    }
    return undefined;
  }

  /** Updates the node's state after training from `global` to `local`; returns SCAFFOLD's control delta to upload. */
  after(nodeId: number, config: TrainConfig, control: Float32Array | undefined, global: Float32Array, local: Float32Array, steps: number): Float32Array | undefined {
    if (config.localState === 'scaffold') {
      const { delta, next } = scaffoldNodeUpdate(this.stateOf(this.controls, nodeId, global.length), control!, global, local, steps, config.optimizer.lr);
      this.controls.set(nodeId, next);
      return delta;
    }
    if (config.localState === 'feddyn') {
      this.linear.set(nodeId, feddynNodeUpdate(this.stateOf(this.linear, nodeId, global.length), config.proxMu, global, local));
    }
    return undefined;
  }

  private stateOf(states: Map<number, Float32Array>, nodeId: number, size: number): Float32Array {
    const s = states.get(nodeId);
    if (s && s.length !== size) throw new Error(`node ${nodeId} kept state for a model of ${s.length} values, this one has ${size}`);
    return s ?? new Float32Array(size);
  }
}
