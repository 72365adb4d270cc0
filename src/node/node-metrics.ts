/** The node's Prometheus metrics (prom-client, its own Registry): served at GET /metrics on the serving port. */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { peekHeader } from '../core/wire.js';
import type { ServedDecision } from '../predict/policy.js';

export class NodeMetrics {
  readonly registry = new Registry();
  readonly predictions = this.counter('edgefed_node_predictions_total', 'Samples answered, by decision', [
    'decision',
  ] as const);
  readonly escalations = this.counter(
    'edgefed_node_escalations_total',
    "Samples sent to the coordinator's escalation model",
  );
  readonly escalationFailures = this.counter(
    'edgefed_node_escalation_failures_total',
    'Samples whose escalation failed (answered abstain)',
  );
  readonly rejected = this.counter('edgefed_node_predict_rejected_total', 'Predict requests rejected, by error code', [
    'code',
  ] as const);
  readonly modelVersion = this.gauge('edgefed_node_model_version', 'Global model version in use (0 before the first)');
  readonly modelSwitches = this.counter(
    'edgefed_node_model_switches_total',
    'Times a newer model version was swapped in',
  );
  readonly modelBytes = this.counter('edgefed_node_model_download_bytes_total', 'Bytes of model versions downloaded');
  readonly roundsTrained = this.counter(
    'edgefed_node_rounds_trained_total',
    'Training requests answered (one per round the node took part in)',
  );
  readonly localEpsilon = this.gauge(
    'edgefed_node_local_dp_epsilon',
    'Local DP: epsilon this node has spent (at its delta), over every run',
  );
  readonly frameBytes = this.counter(
    'edgefed_node_frame_bytes_total',
    'Round frame bytes exchanged with the coordinator',
    ['direction'] as const,
  );

  private counter<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []) {
    return new Counter<L>({ name, help, labelNames, registers: [this.registry] });
  }

  private gauge(name: string, help: string) {
    return new Gauge({ name, help, registers: [this.registry] });
  }

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
