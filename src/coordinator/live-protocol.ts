/**
 * The read-only live feed (WebSocket /v1/live) as JSON messages: what the dashboard receives. Pure types
 * so the browser code can import them; the coordinator's store rows are structurally these.
 *
 * On connect the server sends one `snapshot`; then, as they are committed, `run` (created or status
 * changed), `round` (a committed round record), `event` (an appended event) and `nodes` (the whole node
 * table, at most a few times a second, after connects, disconnects and rounds). Clients send nothing.
 */
import type { NodeResources } from '../node/resources.js';

export const LIVE_PROTOCOL = 1;

export interface RunView {
  id: number;
  config: unknown;
  seed: number;
  status: string;
  /** Milliseconds since the epoch. */
  createdAt: number;
  updatedAt: number;
  roundsCompleted: number;
  /** Present only when the last status change gave one. */
  error?: string;
}

/** A node as the store keeps it; R is what the dashboard knows of the resources a node reports. */
export interface NodeRecord<R = Record<string, unknown>> {
  /** Stable id: 0, 1, 2, ... in enrolment order, kept across restarts. */
  id: number;
  name: string;
  resources: R;
  tags: Record<string, string>;
  firstSeen: number;
  lastSeen: number;
  roundsContributed: number;
  bytesSent: number;
  bytesReceived: number;
}

export interface NodeView extends NodeRecord<NodeResources> {
  /** Connected now. */
  online: boolean;
}

/** A committed round record; metrics that were not measured arrive as null (JSON has no NaN). */
export interface RoundView {
  round: number;
  selected: number[];
  contributed: number[];
  failures: { nodeId: number; error: string }[];
  fused: boolean;
  trainLoss: number | null;
  trainAccuracy: number | null;
  federatedLoss: number | null;
  federatedAccuracy: number | null;
  testLoss: number | null;
  testAccuracy: number | null;
  bytesSent: number;
  bytesReceived: number;
  seconds: number;
  /** Personalised runs (FedPer, FedRep, Ditto): the nodes' own models on their held-out data. */
  personalizedAccuracyMean?: number | null;
  personalizedAccuracyP10?: number | null;
  personalizedAccuracyMin?: number | null;
}

export interface EventView {
  id: number;
  /** null: not tied to a run. */
  runId: number | null;
  /** Milliseconds since the epoch. */
  at: number;
  kind: string;
  data: Record<string, unknown>;
}

export type LiveMessage =
  | { type: 'snapshot'; protocol: number; runs: RunView[]; nodes: NodeView[] }
  | { type: 'run'; run: RunView }
  | { type: 'round'; runId: number; record: RoundView }
  | { type: 'event'; event: EventView }
  | { type: 'nodes'; nodes: NodeView[] };
