/** What a node reports about itself in its hello (browser-safe: shared by the agent and the coordinator). */
export interface NodeResources {
  cores?: number;
  memoryMb?: number;
  samplesPerSecond?: number;
  bandwidthMbps?: number;
  powerClass?: string;
  examples?: number;
  platform?: string;
  /** Training examples per class, shared only when the node opts in (`edgefed node --share-labels`). */
  labelCounts?: number[];
}
