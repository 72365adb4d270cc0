/**
 * A node host's local DP: applies localDpWeights to every update its nodes send, and keeps one privacy ledger
 * per node (each update is released to the coordinator whole, so every round costs the node q = 1: no
 * amplification by subsampling, since the coordinator knows whom it asked). The noise source is the host's
 * own choice, never the coordinator's: the CSPRNG on a deployed node, the node's round seed in simulation.
 */
import { localDpWeights, type LocalDpSpec } from '../core/local-dp.js';
import { dpWords, type DpNoiseSource } from '../engine/dp-noise.js';
import { PrivacyLedger } from '../engine/privacy-ledger.js';

export class LocalPrivacy {
  private readonly ledgers = new Map<number, PrivacyLedger>();

  /** `onSpent` hears each node's epsilon after every update (a deployed node logs it and exports it). */
  constructor(
    readonly spec: LocalDpSpec,
    readonly source: DpNoiseSource,
    private readonly onSpent?: (nodeId: number, epsilon: number) => void,
  ) {}

  /** The weights node `nodeId` sends for this round (its round seed keys seeded noise), charged to its ledger. */
  apply(nodeId: number, roundSeed: number, global: Float32Array, local: Float32Array): Float32Array {
    const out = localDpWeights(global, local, this.spec, dpWords(this.source, roundSeed, 'local-dp'));
    this.ledger(nodeId).recordRound(1);
    this.onSpent?.(nodeId, this.epsilon(nodeId));
    return out;
  }

  /** Epsilon node `nodeId` has spent so far at the spec's delta (0 before its first update). */
  epsilon(nodeId: number): number {
    return this.ledger(nodeId).spent().epsilon;
  }

  private ledger(nodeId: number): PrivacyLedger {
    let l = this.ledgers.get(nodeId);
    if (!l) this.ledgers.set(nodeId, (l = new PrivacyLedger(this.spec.noise, this.spec.delta)));
    return l;
  }
}
