/**
 * Prometheus metrics of the coordinator (GET /metrics), on a registry of its own (never prom-client's
 * global one, so two coordinators in one process do not mix). Counters follow committed rounds through
 * Store.onChange; gauges are read from the registry and store when scraped; rejections are counted where
 * they happen (server.ts calls rejected()). Label values come from fixed code sets, never from node input.
 */
import { Counter, Gauge, Histogram, Registry as PromRegistry, collectDefaultMetrics } from 'prom-client';
import type { Store, StoreChange } from './store.js';
import type { Registry } from './registry.js';
import { failureKind } from './failure-kind.js';
import { RUN_STATUSES } from './store.js';

export class CoordinatorMetrics {
  readonly registry = new PromRegistry();
  private readonly roundsCompleted: Counter;
  private readonly roundsUnfused: Counter;
  private readonly roundDuration: Histogram;
  private readonly contributions: Counter;
  private readonly nodeFailures: Counter<'kind'>;
  private readonly bytesSent: Counter;
  private readonly bytesReceived: Counter;
  private readonly rejections: Counter<'code'>;
  private readonly unsubscribe: () => void;

  constructor(store: Store, nodes: Registry, liveClients: () => number) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.roundsCompleted = new Counter({ name: 'edgefed_rounds_completed_total', help: 'Rounds committed, over all runs', registers });
    this.roundsUnfused = new Counter({ name: 'edgefed_rounds_unfused_total', help: 'Committed rounds that fused no update (too few valid replies)', registers });
    this.roundDuration = new Histogram({
      name: 'edgefed_round_duration_seconds', help: 'Wall time of a committed round, from sampling to evaluation',
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600], registers,
    });
    this.contributions = new Counter({ name: 'edgefed_node_updates_fused_total', help: 'Node updates fused into a global model', registers });
    this.nodeFailures = new Counter({ name: 'edgefed_node_failures_total', help: 'Selected nodes whose update did not count, by kind (straggler, error)', labelNames: ['kind'], registers });
    this.bytesSent = new Counter({ name: 'edgefed_bytes_sent_total', help: 'Bytes of round frames sent to nodes (committed rounds)', registers });
    this.bytesReceived = new Counter({ name: 'edgefed_bytes_received_total', help: 'Bytes of round frames received from nodes (committed rounds)', registers });
    this.rejections = new Counter({ name: 'edgefed_rejected_total', help: 'Node messages and enrolments refused, by code', labelNames: ['code'], registers });
    new Gauge({ name: 'edgefed_nodes_connected', help: 'Nodes connected now', registers, collect() { this.set(nodes.all().length); } });
    new Gauge({ name: 'edgefed_nodes_enrolled', help: 'Nodes ever enrolled (rows in the node registry)', registers, collect() { this.set(store.listNodes().length); } });
    new Gauge({
      name: 'edgefed_runs', help: 'Runs by status', labelNames: ['status'], registers,
      collect() {
        const counts = new Map<string, number>(RUN_STATUSES.map((s) => [s, 0]));
        for (const r of store.listRuns()) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
        for (const [status, n] of counts) this.set({ status }, n);
      },
    });
    new Gauge({ name: 'edgefed_live_clients', help: 'Dashboards connected to the live feed', registers, collect() { this.set(liveClients()); } });
    for (const kind of ['straggler', 'error']) this.nodeFailures.inc({ kind }, 0);
    this.unsubscribe = store.onChange((c) => this.onStoreChange(c));
  }

  private onStoreChange(c: StoreChange): void {
    if (c.kind !== 'round') return;
    const r = c.record;
    this.roundsCompleted.inc();
    if (r.fused === false) this.roundsUnfused.inc();
    if (typeof r.seconds === 'number' && Number.isFinite(r.seconds) && r.seconds >= 0) this.roundDuration.observe(r.seconds);
    if (Array.isArray(r.contributed)) this.contributions.inc(r.contributed.length);
    if (Array.isArray(r.failures)) for (const f of r.failures as { error?: unknown }[]) this.nodeFailures.inc({ kind: failureKind(String(f.error)) });
    if (typeof r.bytesSent === 'number' && r.bytesSent > 0) this.bytesSent.inc(r.bytesSent);
    if (typeof r.bytesReceived === 'number' && r.bytesReceived > 0) this.bytesReceived.inc(r.bytesReceived);
  }

  /** A node message or enrolment was refused with this code (a fixed server-side code, not node text). */
  rejected(code: string): void {
    this.rejections.inc({ code });
  }

  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  close(): void {
    this.unsubscribe();
  }
}
