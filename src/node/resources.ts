/** What a node reports about itself in its hello (browser-safe: shared by the agent and the coordinator). */
export interface NodeResources {
  /** The device's cores (availableParallelism); how many train is in `platform` (' threads=k' when k > 1). */
  cores?: number;
  memoryMb?: number;
  /** Training speed of a probe model on this node's training threads (all k of them: `edgefed node --threads`). */
  samplesPerSecond?: number;
  bandwidthMbps?: number;
  powerClass?: string;
  examples?: number;
  /** Runtime, kernels and training threads, e.g. 'node-v20.19.5 native-openblas/SkylakeX threads=2' (<= 64). */
  platform?: string;
  /** Training examples per class, shared only when the node opts in (`edgefed node --share-labels`). */
  labelCounts?: number[];
}
