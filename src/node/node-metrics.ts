/** The node's Prometheus metrics (prom-client, its own Registry): served at GET /metrics on the serving port. */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { peekHeader } from '../core/wire.js';
import type { ServedDecision } from '../predict/policy.js';

export class NodeMetrics {
  readonly registry = new Registry();
  readonly predictions = new Counter({
    name: 'edgefed_node_predictions_total',
    help: 'Samples answered, by decision',
    labelNames: ['decision'] as const,
    registers: [this.registry],
  });
  readonly escalations = new Counter({
    name: 'edgefed_node_escalations_total',
    help: "Samples sent to the coordinator's escalation model",
    registers: [this.registry],
  });
  readonly escalationFailures = new Counter({
    name: 'edgefed_node_escalation_failures_total',
    help: 'Samples whose escalation failed (answered abstain)',
    registers: [this.registry],
  });
  readonly rejected = new Counter({
    name: 'edgefed_node_predict_rejected_total',
    help: 'Predict requests rejected, by error code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly modelVersion = new Gauge({
    name: 'edgefed_node_model_version',
    help: 'Global model version in use (0 before the first)',
    registers: [this.registry],
  });
  readonly modelSwitches = new Counter({
    name: 'edgefed_node_model_switches_total',
    help: 'Times a newer model version was swapped in',
    registers: [this.registry],
  });
  readonly modelBytes = new Counter({
    name: 'edgefed_node_model_download_bytes_total',
    help: 'Bytes of model versions downloaded',
    registers: [this.registry],
  });
  readonly roundsTrained = new Counter({
    name: 'edgefed_node_rounds_trained_total',
    help: 'Training requests answered (one per round the node took part in)',
    registers: [this.registry],
  });
  readonly localEpsilon = new Gauge({
    name: 'edgefed_node_local_dp_epsilon',
    help: 'Local DP: epsilon this node has spent (at its delta), over every run',
    registers: [this.registry],
  });
  readonly frameBytes = new Counter({
    name: 'edgefed_node_frame_bytes_total',
    help: 'Round frame bytes exchanged with the coordinator',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'edgefed_node_' });
    this.modelVersion.set(0);
    for (const d of ['accept', 'abstain', 'escalated'] as const) this.predictions.inc({ decision: d }, 0);
  }

  counted(decisions: readonly ServedDecision[]): void {
    for (const d of decisions) this.predictions.inc({ decision: d });
  }

  /** The agent's hook: one request frame answered with one reply frame. */
  onFrame = (request: Uint8Array, reply: Uint8Array): void => {
    this.frameBytes.inc({ direction: 'received' }, request.byteLength);
    this.frameBytes.inc({ direction: 'sent' }, reply.byteLength);
    try {
      if (peekHeader(request).type === 'train') this.roundsTrained.inc();
    } catch {
      // an unreadable request was answered with an error frame; it trained nothing
    }
  };
}
