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
  private readonly roundsCompleted: Counter<'run'>;
  private readonly roundsUnfused: Counter<'run'>;
  private readonly roundDuration: Histogram<'run'>;
  private readonly contributions: Counter<'run'>;
  private readonly nodeFailures: Counter<'run' | 'kind'>;
  private readonly sentBytes: Counter<'run'>;
  private readonly receivedBytes: Counter<'run'>;
  private readonly testAccuracy: Gauge<'run'>;
  private readonly testLoss: Gauge<'run'>;
  private readonly rejections: Counter<'code'>;
  private readonly disconnects: Counter<'cause'>;
  private readonly offThread: Counter;
  private readonly unsubscribe: () => void;

  constructor(store: Store, nodes: Registry, liveClients: () => number) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    const run = ['run'] as const;
    this.roundsCompleted = new Counter({
      name: 'edgefed_rounds_completed_total',
      help: 'Rounds committed, by run',
      labelNames: run,
      registers,
    });
    this.roundsUnfused = new Counter({
      name: 'edgefed_rounds_unfused_total',
      help: 'Committed rounds that fused no update (too few valid replies), by run',
      labelNames: run,
      registers,
    });
    this.roundDuration = new Histogram({
      name: 'edgefed_round_duration_seconds',
      help: 'Wall time of a committed round, from sampling to evaluation, by run',
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      labelNames: run,
      registers,
    });
    this.contributions = new Counter({
      name: 'edgefed_node_updates_fused_total',
      help: 'Node updates fused into a global model, by run',
      labelNames: run,
      registers,
    });
    this.nodeFailures = new Counter({
      name: 'edgefed_node_failures_total',
      help: 'Selected nodes whose update did not count, by run and kind (straggler, error)',
      labelNames: ['run', 'kind'],
      registers,
    });
    this.sentBytes = new Counter({
      name: 'edgefed_sent_bytes_total',
      help: 'Bytes of round frames sent to nodes (committed rounds), by run',
      labelNames: run,
      registers,
    });
    this.receivedBytes = new Counter({
      name: 'edgefed_received_bytes_total',
      help: 'Bytes of round frames received from nodes (committed rounds), by run',
      labelNames: run,
      registers,
    });
    this.testAccuracy = new Gauge({
      name: 'edgefed_run_test_accuracy',
      help: 'Test accuracy of the latest committed round, by run (central evaluation)',
      labelNames: run,
      registers,
    });
    this.testLoss = new Gauge({
      name: 'edgefed_run_test_loss',
      help: 'Test loss of the latest committed round, by run (central evaluation)',
      labelNames: run,
      registers,
    });
    this.rejections = new Counter({
      name: 'edgefed_rejected_total',
      help: 'Node messages and enrolments refused, by code',
      labelNames: ['code'],
      registers,
    });
    this.disconnects = new Counter({
      name: 'edgefed_node_disconnects_total',
      help: 'Node connections ended, by cause (disconnects.ts)',
      labelNames: ['cause'],
      registers,
    });
    this.offThread = new Counter({
      name: 'edgefed_frames_verified_off_thread_total',
      help: 'Node frames whose signature a verify-pool thread checked (verify-pool.ts)',
      registers,
    });
    new Gauge({
      name: 'edgefed_nodes_connected',
      help: 'Nodes connected now',
      registers,
      collect() {
        this.set(nodes.all().length);
      },
    });
    new Gauge({
      name: 'edgefed_nodes_enrolled',
      help: 'Nodes ever enrolled (rows in the node registry)',
      registers,
      collect() {
        this.set(store.listNodes().length);
      },
    });
    new Gauge({
      name: 'edgefed_runs',
      help: 'Runs by status',
      labelNames: ['status'],
      registers,
      collect() {
        const counts = new Map<string, number>(RUN_STATUSES.map((s) => [s, 0]));
        for (const r of store.listRuns()) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
        for (const [status, n] of counts) this.set({ status }, n);
      },
    });
    new Gauge({
      name: 'edgefed_live_clients',
      help: 'Dashboards connected to the live feed',
      registers,
      collect() {
        this.set(liveClients());
      },
    });
    // After a restart the gauges start from what the store already holds; counters count from this start.
    for (const info of store.listRuns()) {
      const last = store.roundRecords(info.id).at(-1);
      if (last) this.setLatest(String(info.id), last);
    }
    this.unsubscribe = store.onChange((c) => this.onStoreChange(c));
  }

  private setLatest(run: string, r: Record<string, unknown>): void {
    if (typeof r.testAccuracy === 'number' && Number.isFinite(r.testAccuracy))
      this.testAccuracy.set({ run }, r.testAccuracy);
    if (typeof r.testLoss === 'number' && Number.isFinite(r.testLoss)) this.testLoss.set({ run }, r.testLoss);
  }

  private onStoreChange(change: StoreChange): void {
    if (change.kind === 'run') {
      // A new run shows zeros at once instead of no series (rate() and alerts need the series to exist).
      const run = String(change.run.id);
      for (const counter of [
        this.roundsCompleted,
        this.roundsUnfused,
        this.contributions,
        this.sentBytes,
        this.receivedBytes,
      ])
        counter.inc({ run }, 0);
      for (const kind of ['straggler', 'error']) this.nodeFailures.inc({ run, kind }, 0);
      return;
    }
    if (change.kind !== 'round') return;
    const r = change.record;
    const run = String(change.runId);
    this.roundsCompleted.inc({ run });
    if (r.fused === false) this.roundsUnfused.inc({ run });
    if (typeof r.seconds === 'number' && Number.isFinite(r.seconds) && r.seconds >= 0)
      this.roundDuration.observe({ run }, r.seconds);
    if (Array.isArray(r.contributed)) this.contributions.inc({ run }, r.contributed.length);
    if (Array.isArray(r.failures))
      for (const f of r.failures as { error?: unknown }[])
        this.nodeFailures.inc({ run, kind: failureKind(String(f.error)) });
    if (typeof r.bytesSent === 'number' && r.bytesSent > 0) this.sentBytes.inc({ run }, r.bytesSent);
    if (typeof r.bytesReceived === 'number' && r.bytesReceived > 0) this.receivedBytes.inc({ run }, r.bytesReceived);
    this.setLatest(run, r);
  }

  /** A node message or enrolment was refused with this code (a fixed server-side code, not node text). */
  rejected(code: string): void {
    this.rejections.inc({ code });
  }

  /** A node connection ended; `cause` is a fixed label from disconnects.ts. */
  disconnected(cause: string): void {
    this.disconnects.inc({ cause });
  }

  /** A frame's signature was checked in a verify-pool thread. */
  verifiedOffThread(): void {
    this.offThread.inc();
  }

  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  close(): void {
    this.unsubscribe();
  }
}
