/** What a run records per round, shared by the engines and the secure and virtual-time round helpers. */
import type { DpNoiseSource } from './dp-noise.js';

export interface NodeFailure {
  nodeId: number;
  error: string;
}

export interface RoundRecord {
  round: number;
  selected: number[];
  contributed: number[];
  /** numExamples of each contributor, in the order of `contributed` (what FedAvg weighted them by). */
  examples: number[];
  failures: NodeFailure[];
  fused: boolean;
  trainLoss: number;
  trainAccuracy: number;
  federatedLoss: number;
  federatedAccuracy: number;
  testLoss: number;
  testAccuracy: number;
  bytesSent: number;
  bytesReceived: number;
  seconds: number;
  /** DP-FedAvg: (epsilon, delta) spent so far, by the RDP accountant over every round's own sampling rate. */
  epsilon?: number;
  delta?: number;
  /** DP-FedAvg: this round's sampling rate as accounted (0 when the round released nothing). */
  samplingRate?: number;
  /** DP-FedAvg: where the noise came from ('csprng': nobody can regenerate it; 'seeded': the run seed can). */
  noiseSource?: DpNoiseSource;
  /** DP-FedAvg: the clip norm the next round uses (moves each round with clip=adaptive). */
  clipNorm?: number;
  /** With a virtual clock: simulated seconds since the run began, at the end of this round. */
  simTime?: number;
  /**
   * FedPer: over the evaluated nodes, the accuracy of each node's personalised model (global body, its own head)
   * on its held-out split: unweighted mean, 10th percentile (nearest rank) and minimum.
   */
  personalizedAccuracyMean?: number;
  personalizedAccuracyP10?: number;
  personalizedAccuracyMin?: number;
  /** Asynchronous (FedBuff) fusions: each fused update's staleness, in the order of contributed. */
  staleness?: number[];
}

export interface RunResult {
  rounds: RoundRecord[];
  weights: Float32Array;
  reachedTarget: boolean;
}
