/**
 * Runs federations on the coordinator: each run is a RoundEngine over the network transport, with every
 * round committed to the store (weights, strategy state, metrics, traffic) before the next one starts.
 * A restarted coordinator resumes each unfinished run from its last committed round.
 *
 * Shutdown (SIGTERM, SIGINT) is not a stop: runs stay 'running' (or 'paused') in the store so a restart
 * resumes them. The round in progress may finish and commit within a grace period; past it, the round is
 * abandoned uncommitted (never fused from the partial set a shutdown leaves). Only an explicit stop ends a
 * run, and that stop is in the store before setControl returns.
 */
import { shown } from '../core/shown.js';
import type { Logger } from 'pino';
import type { Dataset } from '../data/types.js';
import { Rng } from '../core/rng.js';
import { makeLayout } from '../core/params.js';
import { builtinModel, initialWeights, tensorSpecs, type ModelSpec } from '../model/spec.js';
import { makeTrainer } from '../model/make-trainer.js';
import { DEFAULT_LR } from '../nn/optimizer.js';
import { parseStrategy, Strategy } from '../engine/strategy.js';
import type { RoundRecord } from '../engine/round-engine.js';
import { engineFor, engineSpecOf } from '../engine/engine-for.js';
import { asyncRoundSize } from './async-config.js';
import { configureForRun, NetworkTransport } from './network-transport.js';
import { peekHeader } from '../core/wire.js';
import type { Registry } from './registry.js';
import type { Store } from './store.js';
import { parseRunConfig, type RunConfig } from './config.js';
import { DatasetCatalog } from './datasets.js';
import { applyStandardize } from '../data/split.js';
import { RunStandardizations, type RunStandardization } from './run-standardization.js';
import { federatedStatistics } from './standardize-pass.js';
import { newLateNodes, standardizationCoverage, type ContributionRecord } from './standardization-coverage.js';

type Control = 'run' | 'pause' | 'stop';

/** Ends a run's execution without changing its status: the coordinator is shutting down. */
export class ShutdownAbort extends Error {
  constructor(message = 'the coordinator is shutting down') {
    super(message);
    this.name = 'ShutdownAbort';
  }
}

export interface ActiveRun {
  id: number;
  config: RunConfig;
  spec: ModelSpec;
  transport: NetworkTransport;
  done: Promise<void>;
  /** A federated-standardised run: the committed statistics (set before round 1, or read back on resume). */
  standardization?: RunStandardization;
  /** Nodes that trained in the run without their rows in its statistics (already reported by an event). */
  lateNodes?: Set<number>;
}

export function runModelSpec(config: RunConfig, test: Dataset): ModelSpec {
  const base = builtinModel(config.model, test.featureShape, test.numClasses);
  const name = config.optimizer ?? base.optimizer.name;
  const lr =
    config.lr ??
    (config.optimizer && config.optimizer !== base.optimizer.name ? DEFAULT_LR[config.optimizer] : base.optimizer.lr);
  return { ...base, optimizer: { name, lr } };
}

export class RunManager {
  private readonly control = new Map<number, Control>();
  private readonly active = new Map<number, ActiveRun>();
  /** Aborted when shutdown begins: ends waits for nodes and pauses at once. */
  private readonly halt = new AbortController();
  /** Set when the grace period ran out: no further round is committed. */
  private abandoned = false;

  constructor(
    private readonly store: Store,
    private readonly registry: Registry,
    private readonly log: Logger,
    private readonly onRoundCommitted?: (runId: number, record: RoundRecord) => void,
    private readonly auth = true,
    readonly datasets = new DatasetCatalog(),
  ) {}

  private standardizationTable?: RunStandardizations;
  /** The committed statistics of federated-standardised runs (opened on first use). */
  get standardizations(): RunStandardizations {
    this.standardizationTable ??= new RunStandardizations(this.store);
    return this.standardizationTable;
  }

  get(runId: number): ActiveRun | undefined {
    return this.active.get(runId);
  }

  activeRuns(): ActiveRun[] {
    return [...this.active.values()];
  }

  get shuttingDown(): boolean {
    return this.halt.signal.aborted;
  }

  /** Pause, resume or stop a run; the new status is committed before this returns (a stop survives a crash). */
  setControl(runId: number, c: Control): void {
    this.store.setRunStatus(runId, c === 'pause' ? 'paused' : c === 'stop' ? 'stopped' : 'running');
    this.control.set(runId, c);
  }

  /**
   * Stops taking work: waits end now, each run ends after its current round. Resolves true when every run
   * ended within graceMs; otherwise the rounds still in progress are abandoned uncommitted and it resolves
   * false (the caller then closes the node connections, which ends those rounds' requests).
   */
  async shutdown(graceMs: number): Promise<boolean> {
    this.halt.abort();
    const all = Promise.all(this.activeRuns().map((r) => r.done));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const inTime = await Promise.race([
      all.then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), graceMs))),
    ]);
    clearTimeout(timer);
    if (!inTime) {
      this.abandoned = true;
      this.log.warn(
        { runs: this.activeRuns().map((r) => r.id), graceMs },
        'shutdown: abandoning the round in progress uncommitted',
      );
    }
    return inTime;
  }

  /** A frame no request waits for: a straggler's answer after its deadline (even after its run ended). */
  late(runId: number, nodeId: number, frame: Uint8Array): void {
    const active = this.active.get(runId);
    if (active) return active.transport.late(nodeId, frame);
    let header: Record<string, unknown> = {};
    try {
      header = peekHeader(frame);
    } catch {
      // recorded below as unreadable
    }
    if (this.store.getRun(runId)) this.recordLate(runId, nodeId, header);
  }

  private recordLate(runId: number, nodeId: number, header: Record<string, unknown>): void {
    const atRound = (this.store.getRun(runId)?.roundsCompleted ?? 0) + 1;
    if (Number.isInteger(header.round))
      this.store.recordEvent(runId, 'late_update', {
        nodeId,
        forRound: header.round,
        atRound,
        type: shown(header.type),
      });
    else
      this.store.recordEvent(runId, 'rejected', {
        nodeId,
        atRound,
        message: 'unreadable frame with no request waiting',
      });
    this.log.info({ runId, nodeId, forRound: header.round }, 'late update recorded, not fused');
  }

  /** Resumes every run that was running or paused when the coordinator stopped. */
  resumeAll(): void {
    for (const r of this.store.listRuns()) {
      if (r.status !== 'running' && r.status !== 'paused' && r.status !== 'created') continue;
      try {
        this.start(r.id);
      } catch {
        // marked failed with its reason by start(); the other runs go on
      }
    }
  }

  start(runId: number): ActiveRun {
    const existing = this.active.get(runId);
    if (existing) return existing;
    if (this.shuttingDown)
      throw new ShutdownAbort(`run ${runId} not started: the coordinator is shutting down (a restart starts it)`);
    const row = this.store.getRun(runId);
    if (!row) throw new Error(`run ${runId} does not exist`);
    let config: RunConfig, test: Dataset, spec: ModelSpec;
    try {
      config = parseRunConfig(row.config);
      // Federated statistics scale the raw rows: the coordinator's test set too, once they are known.
      test =
        config.standardize === 'federated'
          ? this.datasets.rawTestSet(config.evalDataset, config.limitTest)
          : this.datasets.testSet(config.evalDataset, config.limitTest);
      spec = runModelSpec(config, test);
    } catch (e) {
      // One run that cannot be set up (its dataset gone or unregistered, say) must not stop the others.
      const reason = `run setup failed: ${(e as Error).message}`;
      this.log.error({ runId, err: reason }, 'run failed');
      this.store.setRunStatus(runId, 'failed', reason);
      throw new Error(reason);
    }
    const transport = new NetworkTransport({
      registry: this.registry,
      selection: config.selection,
      timeoutMs: config.roundTimeoutMs,
      runId,
      allowUnbound: !this.auth,
      configure: configureForRun(runId, spec, () => run.standardization),
      onLate: (nodeId, header) => this.recordLate(runId, nodeId, header),
    });
    if (!this.control.has(runId)) this.control.set(runId, row.status === 'paused' ? 'pause' : 'run');
    const run: ActiveRun = {
      id: runId,
      config,
      spec,
      transport,
      done: Promise.resolve(),
      standardization: config.standardize === 'federated' ? this.standardizations.get(runId) : undefined,
    };
    run.done = this.execute(run, test)
      .catch((e: Error) => {
        if (e instanceof ShutdownAbort || this.abandoned) {
          this.log.info({ runId, reason: e.message }, 'run left for a restart to resume');
          return;
        }
        this.log.error({ runId, err: e.message }, 'run failed');
        this.store.setRunStatus(runId, 'failed', e.message);
      })
      .finally(() => this.active.delete(runId));
    this.active.set(runId, run);
    return run;
  }

  /**
   * The run's federated statistics: those committed (a restart reuses them), or a pass over the nodes eligible
   * once minNodes are, committed before any node is configured with them. Undefined: the run was stopped.
   */
  private async federatedStandardization(run: ActiveRun, columns: string[]): Promise<RunStandardization | undefined> {
    const { id: runId, config } = run;
    const committed = this.standardizations.get(runId);
    if (committed) return committed;
    for (;;) {
      if (this.shuttingDown) throw new ShutdownAbort('shutdown before the statistics pass');
      if (this.control.get(runId) === 'stop') return undefined;
      const ready = await this.registry.waitFor(
        config.selection,
        config.minNodes,
        config.waitForNodesMs,
        this.halt.signal,
      );
      if (ready) break;
      this.log.info({ runId, minNodes: config.minNodes }, 'statistics pass waits for nodes');
    }
    const stats = await federatedStatistics({
      registry: this.registry,
      selection: config.selection,
      timeoutMs: config.roundTimeoutMs,
      allowUnbound: !this.auth,
      columns,
      secure: config.secagg !== undefined,
    });
    // Committed before use: a restarted coordinator reuses these, never re-asks another set of nodes.
    const kept = this.standardizations.commit(runId, stats);
    this.store.recordEvent(runId, 'standardization', { count: kept.count, nodes: kept.nodes, columns: kept.columns });
    this.log.info({ runId, rows: kept.count, nodes: kept.nodes }, 'federated statistics committed');
    return kept;
  }

  /** An event (and a warning) the round a node first trains without its rows in the run's statistics. */
  private noteLateNodes(run: ActiveRun, record: ContributionRecord): void {
    const stats = run.standardization;
    if (!stats || !run.lateNodes) return;
    const late = newLateNodes(stats, record, run.lateNodes);
    if (late.length === 0) return;
    const nodes = late.map((n) => ({ ...n, name: this.registry.get(n.nodeId)?.name ?? null }));
    const statistics = { rows: stats.count, nodes: stats.nodes };
    this.store.recordEvent(run.id, 'standardization_late_nodes', { round: record.round, nodes, statistics });
    this.log.warn(
      { runId: run.id, round: record.round, nodes: late.map((n) => n.nodeId), statistics },
      "nodes joined after the statistics pass: they train with the run's statistics, their rows are not in them",
    );
  }

  private async execute(run: ActiveRun, rawOrScaledTest: Dataset): Promise<void> {
    const { id: runId, config, spec, transport } = run;
    let test = rawOrScaledTest;
    if (config.standardize === 'federated') {
      const stats = await this.federatedStandardization(run, test.columns!);
      if (!stats) return this.log.info({ runId }, 'run stopped before its statistics pass');
      run.standardization = stats;
      const before = this.store.roundRecords<ContributionRecord>(runId);
      run.lateNodes = new Set(standardizationCoverage(stats, before).joinedLater.map((n) => n.nodeId));
      test = applyStandardize(test, stats);
    }
    const layout = makeLayout(tensorSpecs(spec));
    const checkpoint = this.store.lastCheckpoint(runId);
    const initial = checkpoint?.weights ?? initialWeights(tensorSpecs(spec), new Rng(config.seed).fork('init'));
    const strategy = new Strategy(parseStrategy(config.strategy), checkpoint?.strategyState, checkpoint?.extra);
    const evaluator = await makeTrainer(spec);
    const startRound = (checkpoint?.round ?? 0) + 1;
    if (this.control.get(runId) !== 'pause') this.store.setRunStatus(runId, 'running');
    this.log.info({ runId, startRound, rounds: config.rounds }, checkpoint ? 'resuming run' : 'starting run');
    let lastTraffic = transport.traffic();
    const sizedWork = config.workSeconds !== undefined && strategy.capabilities.sizedWork;
    try {
      const engine = engineFor(
        // Deployed DP noise and sampling come from the CSPRNG: the run seed (shown to readers) cannot regenerate them.
        engineSpecOf(
          { ...config, dpNoise: 'csprng' },
          { strategy, optimizer: spec.optimizer, minNodes: config.minNodes, roundSize: asyncRoundSize(config) },
        ),
        {
          layout,
          transport,
          initial,
          startRound,
          maxStepsFor: sizedWork
            ? (nodeId) => {
                const speed = this.registry.get(nodeId)?.resources.samplesPerSecond;
                return speed ? Math.max(1, Math.floor((speed * config.workSeconds!) / config.batchSize)) : undefined;
              }
            : undefined,
          control: () => (this.shuttingDown ? 'stop' : (this.control.get(runId) ?? 'run')),
          waitForNodes: async (min) => {
            await this.registry.waitFor(config.selection, min, config.waitForNodesMs, this.halt.signal);
            if (this.shuttingDown) throw new ShutdownAbort('shutdown while waiting for nodes');
          },
          centralEval: (w) => evaluator.evaluate(w, test),
          onRound: (record, global, strat) => {
            if (this.abandoned)
              throw new ShutdownAbort(`round ${record.round} abandoned uncommitted: the coordinator is shutting down`);
            const now = transport.traffic();
            const nodes = new Set([...record.selected]);
            // A set, not contributed.includes: 10,000 lookups in a 10,000-long list blocked the loop for a while.
            const contributed = new Set(record.contributed);
            const traffic = [...nodes].map((nodeId) => {
              const a = now.byNode.get(nodeId) ?? { sent: 0, received: 0 };
              const b = lastTraffic.byNode.get(nodeId) ?? { sent: 0, received: 0 };
              return {
                nodeId,
                sent: a.sent - b.sent,
                received: a.received - b.received,
                contributed: contributed.has(nodeId),
              };
            });
            lastTraffic = now;
            // Committed before the next round starts: a crash loses at most the round in progress.
            this.store.commitRound(
              runId,
              record.round,
              record,
              { weights: global, strategyState: strat.state(), extra: strat.extraState() },
              traffic,
            );
            for (const f of record.failures)
              this.store.recordEvent(runId, 'node_failure', { round: record.round, ...f });
            this.noteLateNodes(run, record);
            this.log.info(
              {
                runId,
                round: record.round,
                acc: record.testAccuracy,
                contributed: record.contributed.length,
                failures: record.failures.length,
              },
              'round committed',
            );
            this.onRoundCommitted?.(runId, record);
          },
        },
      );
      const result = await engine.run();
      const stopped = this.control.get(runId) === 'stop';
      const allRounds = (this.store.getRun(runId)?.roundsCompleted ?? 0) >= config.rounds;
      if (this.shuttingDown && !stopped && !allRounds && !result.reachedTarget) {
        this.log.info({ runId, rounds: result.rounds.length }, 'shutdown: run left running for a restart to resume');
        return;
      }
      this.store.setRunStatus(runId, stopped ? 'stopped' : 'completed');
      this.log.info(
        { runId, rounds: result.rounds.length, reachedTarget: result.reachedTarget },
        stopped ? 'run stopped' : 'run completed',
      );
    } finally {
      evaluator.dispose();
    }
  }
}
